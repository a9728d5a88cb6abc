"""Train/validation split by dedup id, stratified by source, seeded.

Every copy of an id (upsampling repeats rows) lands on the same side, and so does an id
found in sources of different kinds, so no instruction is in both splits. Each source gives
the same share of its distinct ids to validation; a row count is shared out over sources in
proportion to their size (largest remainder).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from composer.draws import uniforms


def validation_quota(sizes: dict[str, int], validation: float | int) -> dict[str, int]:
    """How many distinct ids each source gives to validation."""
    total = sum(sizes.values())
    if not total or not validation:
        return dict.fromkeys(sizes, 0)
    target = round(validation * total) if isinstance(validation, float) else min(validation, total)
    exact = {name: target * size / total for name, size in sizes.items()}
    quota = {name: int(v) for name, v in exact.items()}
    by_remainder = sorted(exact, key=lambda name: (-(exact[name] - quota[name]), name))
    for name in by_remainder[: target - sum(quota.values())]:
        quota[name] += 1
    return quota


def validation_ids(table: pa.Table, quota: int, seed: int) -> np.ndarray:
    """The `quota` distinct ids of `table` with the lowest draws."""
    unique = pd.unique(table.column("id").to_numpy(zero_copy_only=False))
    order = np.argsort(uniforms(seed, list(unique), "split"), kind="stable")
    return unique[order[:quota]]


def split_sources(
    tables: dict[str, pa.Table], validation: float | int, seed: int
) -> dict[str, pa.Table]:
    """Each source's records with a `split` column ('train' or 'validation').

    An id chosen for validation in one source is validation everywhere: the same
    instruction in an SFT source and a DPO source never lands on both sides.
    """
    sizes = {name: len(pc.unique(t.column("id"))) for name, t in tables.items()}
    quota = validation_quota(sizes, validation)
    chosen = [validation_ids(t, quota[name], seed) for name, t in tables.items()]
    everywhere = pa.array(np.concatenate(chosen) if chosen else [], type=pa.string())
    return {
        name: t.append_column(
            "split",
            pc.if_else(pc.is_in(t.column("id"), value_set=everywhere), "validation", "train"),
        )
        for name, t in tables.items()
    }
