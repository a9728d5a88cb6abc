"""BoolQ yes/no questions about a Wikipedia passage, answered "true" or "false".

Bagel (PRIORITY 3) reads the train split and asks, after the passage, "True or false -
<question>"; the answer is the lower-cased boolean. Same here; a row whose answer is not a
boolean is rejected. Bagel keeps every question: no manifest `sample:`.
"""

from composer.turns import turn

name = "boolq"
kind = "sft"
hub = "google/boolq"
confidence = 3
license = "cc-by-sa-3.0"
columns = ("question", "answer", "passage")

PROMPT = "Read the passage of text provided below, then answer the question."


def convert(batch: dict[str, list]) -> dict[str, list]:
    out: dict[str, list] = {"conversations": [], "error": []}
    for question, answer, passage in zip(batch["question"], batch["answer"], batch["passage"]):
        if not isinstance(answer, bool):
            out["conversations"].append(None)
            out["error"].append(f"answer {answer!r} is not true or false")
            continue
        prompt = "\n".join([PROMPT, "", passage, "", f"True or false - {question}"])
        out["conversations"].append([turn("human", prompt), turn("gpt", str(answer).lower())])
        out["error"].append(None)
    return out
