"""H2O LLM Studio's id/parent_id chaining, shared by h2o_sft and h2o_dpo.

LLM Studio joins a row to the rows above it through `parent_id_column`: each row is one
round (a question and its answer), and a conversation is the chain from a root row down.
Broken chains (a loop, a duplicated id, a missing parent, a chain past `max_depth`) are
rejected rows with their reason (composer.trees); LLM Studio raises on some of these and
loops on others.
"""

from __future__ import annotations

from composer.trees import MAX_DEPTH, build_forest, error


def chains(
    batch: dict[str, list],
    n: int,
    every_row: bool = False,
    orphans: str = "reject",
    max_depth: int = MAX_DEPTH,
) -> tuple[list[tuple[int, list[int]]], list[int], dict[int, str]]:
    """(end row, its chain root first) per conversation, the rows linked into longer
    conversations, and the rejected rows with their reasons.

    Without `id` and `parent_id` columns every row is a conversation of its own. A
    conversation ends at a row no one continues (a leaf); `every_row` makes every row the
    end of one, as LLM Studio trains on each round with its history.
    """
    if "id" not in batch or "parent_id" not in batch:
        return [(i, [i]) for i in range(n)], [], {}
    if orphans not in ("reject", "start"):
        raise ValueError(f"orphans must be 'reject' or 'start', not {orphans!r}")
    forest = build_forest(batch["id"], batch["parent_id"], orphans=orphans, max_depth=max_depth)
    usable = [i for i in range(n) if forest.usable(i)]
    ends = usable if every_row else [i for i in usable if not forest.children[i]]
    linked = [] if every_row else [i for i in usable if forest.children[i]]
    rejected = {i: p for i, p in enumerate(forest.problem) if p is not None}
    return [(i, forest.path(i)) for i in ends], linked, rejected


def rejected_rows(out: dict[str, list], rejected: dict[int, str], answers: tuple[str, ...]) -> None:
    """Append the rejected rows to a plugin's output, each with its reason."""
    for i, reason in rejected.items():
        out["conversations"].append(None)
        for column in answers:
            out[column].append(None)
        out["row"].append(i)
        out["meta"].append(None)
        out["error"].append(error(reason))
