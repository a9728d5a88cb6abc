"""Orca DPO pairs, as relabelled by argilla (distilabel): clear preferences only, as bagel.

Bagel (`orca_dpo_pairs.py`, priority 2) moved from Intel/orca_dpo_pairs to argilla's
relabelling and keeps a pair when it is not a tie, the chosen answer scores at least 8
(`min_score`), the prompt is not in GSM8K's train set, the chosen answer is no refusal
(`composer.kit.has_refusal`, case-insensitive, unlike bagel's) and the answers differ.
The system prompt is kept (bagel drops it). Intel's original set reads too: `hub:
Intel/orca_dpo_pairs` with `columns: {input: question}`; only the refusal and same-answer
filters apply there. Bagel takes every pair that passes: no `sample:`.
"""

from composer.kit import has_refusal
from composer.sources._dpo_pairs import pairs

name = "orca_dpo_pairs"
kind = "dpo"
hub = "argilla/distilabel-intel-orca-dpo-pairs"
confidence = 2
license = "apache-2.0"
columns = ("input", "chosen", "rejected")
optional_columns = ("system", "status", "chosen_score", "in_gsm8k_train")


def convert(batch: dict[str, list], min_score: float = 8.0) -> dict[str, list]:
    n = len(batch["input"])
    status = batch.get("status", [None] * n)
    scores = batch.get("chosen_score")
    in_gsm8k = batch.get("in_gsm8k_train") or [False] * n
    keep = [
        status[i] != "tie"
        and (scores is None or (scores[i] is not None and scores[i] >= min_score))
        and not in_gsm8k[i]
        and not has_refusal(batch["chosen"][i])
        for i in range(n)
    ]
    out = pairs(batch, prompt="input", keep=keep)
    for meta, row in zip(out["meta"], out["row"]):
        meta.update({"status": status[row], "chosen_score": scores[row] if scores else None})
    return out
