"""ROPES: apply a background passage to a new situation and answer a question about it, concisely.

Bagel (PRIORITY 3) reads the train split, puts the background, then the situation and the
question, under one instruction, answers with the first given answer and adds a system
prompt asking for concise answers. Same here; a question without an answer is rejected.
Bagel keeps every question: no manifest `sample:`.
"""

from composer.turns import turn

name = "ropes"
kind = "sft"
hub = "allenai/ropes"
confidence = 3
license = "cc-by-4.0"
columns = ("background", "situation", "question", "answers")

SYSTEM = "You are a helpful assistant that answers questions concisely."
PROMPT = (
    "Read the following background information, then apply the knowledge to the question "
    "that follows."
)


def convert(batch: dict[str, list]) -> dict[str, list]:
    out: dict[str, list] = {"conversations": [], "error": []}
    for background, situation, question, answers in zip(
        batch["background"], batch["situation"], batch["question"], batch["answers"]
    ):
        texts = (answers or {}).get("text") or []
        if not texts:
            out["conversations"].append(None)
            out["error"].append("no answer")
            continue
        prompt = "\n".join(
            [PROMPT, "", "Background:", background, "", "Question:", situation, question]
        )
        out["conversations"].append(
            [turn("system", SYSTEM), turn("human", prompt), turn("gpt", texts[0])]
        )
        out["error"].append(None)
    return out
