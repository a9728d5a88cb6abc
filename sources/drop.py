"""DROP: discrete reasoning over a passage (counting, sorting, arithmetic), answered briefly.

Bagel (PRIORITY 2) reads the train split, puts the passage and the question on their own
lines in a random order (passage first half the time), answers with the gold spans joined
by ", ", and adds a system prompt asking for brief answers. Same here, with the order
drawn from the manifest's seed per passage and question; a question without an answer
span is rejected (bagel would train on an empty answer).
"""

from composer.kit import coin
from composer.turns import turn

name = "drop"
kind = "sft"
hub = "ucinlp/drop"
confidence = 2
license = "cc-by-sa-4.0"
columns = ("passage", "question", "answers_spans")
SYSTEM = "You are a helpful assistant who answers as briefly as possible."


def convert(batch: dict[str, list], seed: int = 0) -> dict[str, list]:
    keys = [f"{p}\n{q}" for p, q in zip(batch["passage"], batch["question"])]
    question_first = coin(seed, keys, name, "order")
    out: dict[str, list] = {"conversations": [], "error": []}
    for passage, question, spans, flip in zip(
        batch["passage"], batch["question"], batch["answers_spans"], question_first
    ):
        answers = [s for s in (spans or {}).get("spans") or [] if isinstance(s, str) and s]
        ordered = [question, passage] if flip else [passage, question]
        out["conversations"].append(
            [
                turn("system", SYSTEM),
                turn("human", "\n".join(map(str, ordered))),
                turn("gpt", ", ".join(answers)),
            ]
        )
        out["error"].append(None if answers else "no answer span")
    return out
