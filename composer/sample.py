"""Per-source sampling after filters, dedup and decontamination; seeded.

A source takes a count, a fraction or an upsampling factor of what is left (`sample`), or
its share of the mixture (`weight`, with `mix.total`): the shares are solved here, on the
rows that are really left, so the final proportions are the ones asked for. Sampling can
be stratified by a meta field (natural_instructions by task): each value keeps its share.

Each source draws from its own generator (seed, source name), so changing one source's
sample never changes another's rows. Kept rows stay in their upstream order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from math import floor

import numpy as np
import pyarrow as pa

from composer.draws import generator
from composer.errors import UserError, did_you_mean
from composer.kit import stratified_sample
from composer.manifest import Sample
from composer.records import meta_field


@dataclass
class Sampled:
    table: pa.Table
    requested: int | None  # rows asked for, when more were asked than exist


def sample(
    table: pa.Table,
    spec: Sample | None,
    seed: int,
    source: str,
    stratify: str | None = None,
    repeat: bool = False,
) -> Sampled:
    """`spec` rows of `table`; a count above the rows there are repeats every row (and a
    seeded share of them once more) when `repeat`, else takes all and records the shortfall."""
    n = table.num_rows
    if spec is None or n == 0:
        return Sampled(table, spec.count or None if spec else None)
    rng = generator(seed, "sample", source)
    if spec.factor is not None or (repeat and spec.count is not None and spec.count > n):
        factor = spec.factor if spec.factor is not None else spec.count / n
        whole, part = divmod(factor, 1)
        size = round(part * n) if spec.factor is not None else spec.count - int(whole) * n
        extra = np.asarray(_choose(table, size, rng, seed, source, stratify), np.int64)
        index = np.concatenate([np.tile(np.arange(n), int(whole)), extra])
        return Sampled(table.take(pa.array(np.sort(index, kind="stable"))), None)
    want = spec.count if spec.count is not None else round(spec.fraction * n)
    if want >= n:
        return Sampled(table, want if want > n else None)
    return Sampled(table.take(pa.array(_choose(table, want, rng, seed, source, stratify))), None)


def _choose(
    table: pa.Table, size: int, rng, seed: int, source: str, stratify: str | None
) -> list[int]:
    """`size` distinct row indices in order: uniform, or keeping each stratum's share."""
    if stratify is None:
        return np.sort(rng.choice(table.num_rows, size=size, replace=False)).tolist()
    strata = meta_field(table, stratify)
    if strata.null_count == len(strata):
        first = json.loads(table.column("meta")[0].as_py())
        raise UserError(
            f"source {source!r}: stratify: no record has a meta field {stratify!r}"
            f"{did_you_mean(stratify, list(first))}; its records' meta has: "
            f"{', '.join(first) or 'nothing'}"
        )
    return stratified_sample(strata.to_pylist(), size, seed, "sample", source)


@dataclass
class Mixture:
    counts: dict[str, int]  # rows each source gives
    requested: dict[str, float]  # each source's share by weight
    total: int  # rows of the mixture (below the requested total when sources fall short)


def solve_mix(
    available: dict[str, int], weights: dict[str, float], total: int, upsample: bool
) -> Mixture:
    """Rows per source so that the shares are the weights'.

    Without upsampling a source cannot give more rows than it has, so the mixture shrinks
    until the scarcest source's share fits: the proportions hold, the total gives way. A
    source with no rows left gives none either way (the report warns).
    """
    exact = {name: Fraction(str(w)) for name, w in weights.items()}
    weight_sum = sum(exact.values())
    share = {name: w / weight_sum for name, w in exact.items()}
    if not upsample:
        total = min([total, *(floor(available[n] / share[n]) for n in share if share[n] > 0)])
    counts = {name: floor(total * share[name]) for name in share}
    by_remainder = sorted(share, key=lambda name: (-(total * share[name] - counts[name]), name))
    for name in by_remainder[: total - sum(counts.values())]:
        counts[name] += 1
    counts = {
        name: 0 if not available[name] else c if upsample else min(c, available[name])
        for name, c in counts.items()
    }
    requested = {name: float(v) for name, v in share.items()}
    return Mixture(counts, requested, sum(counts.values()))
