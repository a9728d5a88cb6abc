"""Train/validation split by dedup id, stratified by source, seeded.

Every copy of an id (upsampling repeats rows) lands on the same side, so no instruction is
in both splits. Each source gives the same share of its distinct ids to validation;
a row count is shared out over sources in proportion to their size (largest remainder).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

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


def assign_split(table: pa.Table, quota: int, seed: int) -> pa.Array:
    """'train' or 'validation' per row: the `quota` ids with the lowest draws are validation."""
    codes, unique = pd.factorize(table.column("id").to_numpy(zero_copy_only=False))
    order = np.argsort(uniforms(seed, list(unique), "split"), kind="stable")
    chosen = np.zeros(len(unique), dtype=bool)
    chosen[order[:quota]] = True
    return pa.array(np.where(chosen[codes], "validation", "train"))
