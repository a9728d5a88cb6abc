"""Per-source sampling after dedup: a count, a fraction, or an upsampling factor; seeded.

Each source draws from its own generator (seed, source name), so changing one source's
sample never changes another's rows. Kept rows stay in their upstream order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from composer.draws import generator
from composer.manifest import Sample


@dataclass
class Sampled:
    table: pa.Table
    requested: int | None  # rows asked for, when more were asked than exist


def sample(table: pa.Table, spec: Sample | None, seed: int, source: str) -> Sampled:
    n = table.num_rows
    if spec is None or n == 0:
        return Sampled(table, spec.count or None if spec else None)
    rng = generator(seed, "sample", source)
    if spec.factor is not None:
        whole, part = divmod(spec.factor, 1)
        extra = np.sort(rng.choice(n, size=round(part * n), replace=False))
        index = np.concatenate([np.tile(np.arange(n), int(whole)), extra])
        return Sampled(table.take(pa.array(np.sort(index, kind="stable"))), None)
    want = spec.count if spec.count is not None else round(spec.fraction * n)
    if want >= n:
        return Sampled(table, want if want > n else None)
    index = np.sort(rng.choice(n, size=want, replace=False))
    return Sampled(table.take(pa.array(index)), None)
