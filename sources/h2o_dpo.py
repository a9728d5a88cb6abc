"""H2O LLM Studio DPO data: system/question/chosen/rejected rows, chained by id/parent_id.

LLM Studio's default DPO dataset is Intel/orca_dpo_pairs, saved as `train.pq` with
system_column "system", prompt_column "question", answer_column "chosen" and
rejected_answer_column "rejected"; that is the default upstream here. With `id` and
`parent_id` columns, rows chain into conversations as LLM Studio's DPO does (only whole
conversations, ending at a row that is no one's parent): earlier rounds are question and
chosen answer, the first round's system prompt is the conversation's, and the last row's
answers are the pair. Not in bagel (it reads this data through `orca_dpo_pairs`).
"""

import math

from composer.turns import turn, with_system

name = "h2o_dpo"
kind = "dpo"
hub = "Intel/orca_dpo_pairs"
confidence = 2
license = "apache-2.0"
columns = ("question", "chosen", "rejected")
optional_columns = ("system", "id", "parent_id")
batch_size = None  # a conversation's rows may be anywhere in the file


def _is_id(value) -> bool:
    return (
        value is not None
        and value != "None"
        and not (isinstance(value, float) and not math.isfinite(value))
    )


def _chains(batch: dict[str, list], n: int) -> list[tuple[int, list[int] | None]]:
    """(last row, the rows of its whole conversation first round first, or None where the
    parent_id chain loops), for every conversation; rows caught in a loop come as None."""
    if "id" not in batch or "parent_id" not in batch:
        return [(i, [i]) for i in range(n)]
    row_of = {batch["id"][i]: i for i in range(n)}
    parent = {i: row_of[p] for i, p in enumerate(batch["parent_id"]) if _is_id(p) and p in row_of}
    chains, reached = [], set()
    for end in sorted(set(range(n)) - set(parent.values())):
        chain = [end]
        while chain and chain[0] in parent:
            chain = None if parent[chain[0]] in chain else [parent[chain[0]], *chain]
        chains.append((end, chain))
        reached.update(chain or [end])
    return chains + [(i, None) for i in range(n) if i not in reached]


def convert(batch: dict[str, list]) -> dict[str, list]:
    n = len(batch["question"])
    systems = batch.get("system") or [None] * n
    out = {"conversations": [], "chosen": [], "rejected": [], "row": [], "meta": [], "error": []}
    for end, chain in _chains(batch, n):
        turns = []
        for i in chain or []:
            turns += [turn("human", batch["question"][i]), turn("gpt", batch["chosen"][i])]
        out["conversations"].append(with_system(systems[chain[0]], turns[:-1]) if chain else None)
        out["chosen"].append(batch["chosen"][end])
        out["rejected"].append(batch["rejected"][end])
        out["row"].append(end)
        out["meta"].append(
            {"ids": [batch["id"][i] for i in chain]} if chain and "id" in batch else {}
        )
        out["error"].append(None if chain else "its parent_id chain loops")
    return out
