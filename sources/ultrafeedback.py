"""UltraFeedback binarized (cleaned) pairs whose chosen answer scores 8 or more, as bagel.

Bagel (`ultrafeedback.py`, priority 2) reads allenai's cleaned set, split `train_gen`, and
keeps single-exchange pairs whose chosen score is at least 8 (`min_score`), whose chosen
answer is no refusal (`composer.kit.has_refusal`) and whose answers differ (ignoring case
and surrounding space). Bagel takes every pair that passes: no `sample:`.
"""

from composer.kit import has_refusal
from composer.records import same_answer
from composer.turns import text_of, turn

name = "ultrafeedback"
kind = "dpo"
hub = "allenai/ultrafeedback_binarized_cleaned"
split = "train_gen"
confidence = 2
license = "mit"
columns = ("prompt", "chosen", "rejected", "score_chosen")
optional_columns = ("prompt_id", "score_rejected", "source")


def _answer(messages):
    """The assistant's answer ending a message list, or None."""
    last = messages[-1] if isinstance(messages, list) and messages else None
    if isinstance(last, dict) and last.get("role") == "assistant":
        return text_of(last.get("content"))
    return None


def convert(batch: dict[str, list], min_score: float = 8.0) -> dict[str, list]:
    n = len(batch["prompt"])
    ids = batch.get("prompt_id") or [None] * n
    rejected_scores = batch.get("score_rejected") or [None] * n
    out = {"conversations": [], "chosen": [], "rejected": [], "row": [], "meta": []}
    for i in range(n):
        chosen, rejected = _answer(batch["chosen"][i]), _answer(batch["rejected"][i])
        score = batch["score_chosen"][i]
        if (
            score is None
            or score < min_score
            or len(batch["chosen"][i] or []) != 2  # one question, one answer
            or has_refusal(chosen)
            or same_answer(chosen, rejected)
        ):
            continue
        out["conversations"].append([turn("human", batch["prompt"][i])])
        out["chosen"].append(chosen)
        out["rejected"].append(rejected)
        out["row"].append(i)
        out["meta"].append(
            {"prompt_id": ids[i], "score_chosen": score, "score_rejected": rejected_scores[i]}
        )
    return out
