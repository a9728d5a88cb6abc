"""Confidence-ranked exact dedup: sources in priority order, the first occurrence of an id wins.

Priority is confidence (highest first), then manifest order. Records of different kinds
(sft, dpo, text) are deduplicated separately. Works on whole columns: one hash
factorisation over all ids, no per-row Python.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from composer.convert import Converted


@dataclass
class DedupResult:
    kept: dict[str, pa.Table]  # source name -> its surviving records
    lost_to: dict[str, Counter]  # source name -> {winning source: rows lost to it}


def priority(sources: list[Converted]) -> list[Converted]:
    return sorted(sources, key=lambda s: (-s.confidence, s.order))


def dedup(sources: list[Converted], progress: bool = False) -> DedupResult:
    from tqdm.auto import tqdm

    kept: dict[str, pa.Table] = {}
    lost_to: dict[str, Counter] = {s.source.name: Counter() for s in sources}
    for kind in tqdm(("sft", "dpo", "text"), desc="dedup", unit="kind", disable=not progress):
        group = [s for s in priority(sources) if s.plugin.kind == kind]
        if not group:
            continue
        ids = np.concatenate([s.records.column("id").to_numpy(zero_copy_only=False) for s in group])
        owner = np.repeat(np.arange(len(group)), [s.records.num_rows for s in group])
        codes, _ = pd.factorize(ids)
        first = np.full(codes.max() + 1 if len(codes) else 0, len(codes), dtype=np.int64)
        np.minimum.at(first, codes, np.arange(len(codes)))
        winner = owner[first[codes]]
        is_first = first[codes] == np.arange(len(codes))
        offset = 0
        for source in group:
            n = source.records.num_rows
            mine = slice(offset, offset + n)
            kept[source.source.name] = source.records.filter(pa.array(is_first[mine]))
            losers = winner[mine][~is_first[mine]]
            for w, count in zip(*np.unique(losers, return_counts=True)):
                lost_to[source.source.name][group[w].source.name] = int(count)
            offset += n
    return DedupResult(kept=kept, lost_to=lost_to)
