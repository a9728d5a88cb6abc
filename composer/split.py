"""Train/validation/test split by dedup id, stratified by source, seeded.

Every copy of an id (upsampling repeats rows) lands on the same side, and so does an id
found in sources of different kinds, so no instruction is in two splits. Each source gives
the same share of its distinct ids to a split; a row count is shared out over sources in
proportion to their size (largest remainder), and a source's `max_validation` caps its
share, the rest going to the sources with room. Test ids are drawn first, validation ids
from the rest.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from composer.draws import uniforms


def _shares(exact: dict[str, float], target: int) -> dict[str, int]:
    """Whole numbers summing to `target`, each the floor of its exact share, the leftovers
    to the largest remainders (ties by name)."""
    quota = {name: int(v) for name, v in exact.items()}
    by_remainder = sorted(exact, key=lambda name: (-(exact[name] - quota[name]), name))
    for name in by_remainder[: target - sum(quota.values())]:
        quota[name] += 1
    return quota


def validation_quota(
    sizes: dict[str, int], validation: float | int, caps: dict[str, int | None] | None = None
) -> dict[str, int]:
    """How many distinct ids each source gives to a split: proportional to its size, at most
    its cap; what a capped source cannot give goes to the others, in proportion."""
    total = sum(sizes.values())
    if not total or not validation:
        return dict.fromkeys(sizes, 0)
    target = round(validation * total) if isinstance(validation, float) else min(validation, total)
    given = caps or {}
    caps = {
        name: size if given.get(name) is None else min(size, given[name])
        for name, size in sizes.items()
    }
    quota = dict.fromkeys(sizes, 0)
    open_ = {name for name in sizes if caps[name] > 0}
    while target > sum(quota.values()) and open_:
        left = target - sum(quota.values())
        weight = sum(sizes[n] for n in open_)
        share = _shares({n: left * sizes[n] / weight for n in sorted(open_)}, left)
        full = {n for n in open_ if quota[n] + share[n] >= caps[n]}
        for name in open_:
            quota[name] = min(caps[name], quota[name] + share[name])
        if not full:
            break
        open_ -= full
    return quota


def chosen_ids(table: pa.Table, quota: int, seed: int, purpose: str, skip: pa.Array) -> np.ndarray:
    """The `quota` distinct ids of `table` (other than `skip`) with the lowest draws."""
    unique = pd.unique(table.column("id").to_numpy(zero_copy_only=False))
    if len(skip):
        unique = unique[~pc.is_in(pa.array(unique), value_set=skip).to_numpy(zero_copy_only=False)]
    order = np.argsort(uniforms(seed, list(unique), purpose), kind="stable")
    return unique[order[:quota]]


def split_sources(
    tables: dict[str, pa.Table],
    validation: float | int,
    seed: int,
    test: float | int = 0,
    max_validation: dict[str, int | None] | None = None,
) -> dict[str, pa.Table]:
    """Each source's records with a `split` column: 'train', 'validation' or 'test'.

    An id chosen for a split in one source is in that split everywhere: the same
    instruction in an SFT source and a DPO source never lands on two sides.
    """
    sizes = {name: len(pc.unique(t.column("id"))) for name, t in tables.items()}
    picked = {}
    for split, share, caps in (("test", test, None), ("validation", validation, max_validation)):
        quota = validation_quota(sizes, share, caps)
        skip = pa.array(np.concatenate(list(picked.values())) if picked else [], pa.string())
        purpose = "split" if split == "validation" else split  # validation's draws as before
        ids = [chosen_ids(t, quota[name], seed, purpose, skip) for name, t in tables.items()]
        picked[split] = np.concatenate(ids) if ids else np.array([], object)
    test_ids = pa.array(picked["test"], pa.string())
    validation_ids = pa.array(picked["validation"], pa.string())
    out = {}
    for name, t in tables.items():
        column = pc.if_else(
            pc.is_in(t.column("id"), value_set=test_ids),
            "test",
            pc.if_else(pc.is_in(t.column("id"), value_set=validation_ids), "validation", "train"),
        )
        out[name] = t.append_column("split", column)
    return out
