"""Shared by the prompt/chosen/rejected preference plugins (not a plugin: leading underscore)."""

from composer.turns import turn, with_system


def pairs(batch: dict[str, list], prompt: str = "prompt", keep=None) -> dict[str, list]:
    """One DPO record per row: the row's `system` prompt (when it has one) and its prompt as
    the context. Rows where `keep` is False are left out on purpose; rows whose answers are
    the same text (no preference to learn) are rejected by record validation, with a reason."""
    n = len(batch[prompt])
    systems = batch.get("system") or [None] * n
    ids = batch.get("id") or [None] * n
    out = {"conversations": [], "chosen": [], "rejected": [], "row": [], "meta": []}
    for i in range(n):
        chosen, rejected = batch["chosen"][i], batch["rejected"][i]
        if keep is not None and not keep[i]:
            continue  # equal answers are left to record validation: a rejected row
        out["conversations"].append(with_system(systems[i], [turn("human", batch[prompt][i])]))
        out["chosen"].append(chosen)
        out["rejected"].append(rejected)
        out["row"].append(i)
        out["meta"].append({"id": ids[i]} if ids[i] is not None else {})
    return out
