"""DROP: discrete reasoning over a passage (counting, sorting, arithmetic), answered briefly.

Bagel (`drop.py`, priority 2) reads the train split, joins the passage and the question
with a newline, in that order or (on an unseeded coin, half the time) the question first,
answers with the answer spans joined by ", " and adds a system prompt asking for brief
answers. Here the coin is seeded per question (`question_first`, 0.5 as bagel), and a
question without an answer span (DROP's number and date answers are not spans) is
rejected, where bagel trains on an empty answer. Bagel keeps every question: no `sample:`.
"""

from composer.kit import coin
from composer.turns import turn

name = "drop"
kind = "sft"
hub = "ucinlp/drop"
confidence = 2
license = "cc-by-sa-4.0"
columns = ("passage", "question", "answers_spans")
optional_columns = ("query_id", "section_id")

SYSTEM = "You are a helpful assistant who answers as briefly as possible."


def check_options(question_first: float = 0.5) -> list[tuple[str, str]]:
    if not 0 <= question_first <= 1:
        return [("question_first", f"must be between 0 and 1, got {question_first}")]
    return []


def convert(batch: dict[str, list], question_first: float = 0.5, seed: int = 0) -> dict[str, list]:
    n = len(batch["question"])
    ids = batch.get("query_id") or [None] * n
    keys = [f"{p}\n{q}" for p, q in zip(batch["passage"], batch["question"])]
    flips = coin(seed, keys, name, "question_first", p=question_first)
    out: dict[str, list] = {"conversations": [], "error": [], "meta": []}
    for passage, question, spans, flip, query_id in zip(
        batch["passage"], batch["question"], batch["answers_spans"], flips, ids
    ):
        answer = ", ".join(s for s in ((spans or {}).get("spans") or []) if s)
        out["meta"].append({"query_id": query_id})
        if not answer or not passage or not question:
            out["conversations"].append(None)
            out["error"].append(
                "no answer span" if passage and question else "no passage or question"
            )
            continue
        prompt = "\n".join([question, passage] if flip else [passage, question])
        out["conversations"].append(
            [turn("system", SYSTEM), turn("human", prompt), turn("gpt", answer)]
        )
        out["error"].append(None)
    return out
