"""Confidence-ranked exact dedup: sources in priority order, the first occurrence of an id wins.

Priority is confidence (highest first), then manifest order. Records of different kinds
(sft, dpo, text) are deduplicated separately. Works on whole columns: one hash
factorisation over all ids, in Arrow, no per-row Python.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from composer import held, parts
from composer.convert import Converted
from composer.engines import Engine


@dataclass
class DedupResult:
    kept: dict[str, pa.Table]  # source name -> its surviving records
    lost_to: dict[str, Counter]  # source name -> {winning source: rows lost to it}


def priority(sources: list[Converted]) -> list[Converted]:
    return sorted(sources, key=lambda s: (-s.confidence, s.order))


def dedup(sources: list[Converted], progress: bool = False) -> DedupResult:
    ids = {s.source.name: s.records.column("id") for s in sources}
    masks, lost_to = first_wins(sources, ids, progress)
    by_name = {s.source.name: s for s in sources}
    kept = {name: by_name[name].records.filter(pa.array(mask)) for name, mask in masks.items()}
    return DedupResult(kept=kept, lost_to=lost_to)


def first_wins(
    sources: list[Converted], ids: dict[str, pa.ChunkedArray], progress: bool = False
) -> tuple[dict[str, np.ndarray], dict[str, Counter]]:
    """Each source's mask of the records it keeps, from its `ids` column alone, and the
    rows it lost to each winner. The masks are in kind order, then priority order. (A Ray
    build decides the same per part of a hash shuffle: `first_wins_held`.)"""
    from tqdm.auto import tqdm

    masks: dict[str, np.ndarray] = {}
    lost_to: dict[str, Counter] = {s.source.name: Counter() for s in sources}
    for kind in tqdm(("sft", "dpo", "text"), desc="dedup", unit="kind", disable=not progress):
        group = [s for s in priority(sources) if s.plugin.kind == kind]
        if not group:
            continue
        columns = [ids[s.source.name] for s in group]
        is_first, winner = _firsts(columns)
        offset = 0
        for source, column in zip(group, columns):
            mine = slice(offset, offset + len(column))
            masks[source.source.name] = is_first[mine]
            losers = winner[mine][~is_first[mine]]
            for w, count in zip(*np.unique(losers, return_counts=True)):
                lost_to[source.source.name][group[w].source.name] = int(count)
            offset += len(column)
    return masks, lost_to


def _firsts(columns: list[pa.ChunkedArray | pa.Array]) -> tuple[np.ndarray, np.ndarray]:
    """Over the columns one after another: whether each id is its first occurrence, and the
    column where that first occurrence is."""
    # Each id's code, in Arrow (no Python string per row): equal ids, equal codes.
    chunks = [chunk for c in columns for chunk in getattr(c, "chunks", [c])]
    flat = pa.chunked_array(chunks, pa.string())
    codes = pc.index_in(flat, value_set=pc.unique(flat)).to_numpy()
    owner = np.repeat(np.arange(len(columns)), [len(c) for c in columns])
    first = np.full(codes.max() + 1 if len(codes) else 0, len(codes), dtype=np.int64)
    np.minimum.at(first, codes, np.arange(len(codes)))
    return first[codes] == np.arange(len(codes)), owner[first[codes]]


def first_wins_held(
    engine: Engine | None, sources: list[Converted], tables: dict[str, Any], progress: bool = False
) -> tuple[dict[str, tuple[Any, int]], dict[str, Counter], dict[str, int]]:
    """`first_wins`, its masks applied to `tables`, as a hash shuffle on the id where the
    engine keeps the tables (composer.parts): each source's ids cut into parts on its
    worker, a task a kind and part keeping the first occurrence of each id over the kind's
    sources in priority order (those of one id are all in its part, in that order), each
    source's dropped rows gathered and filtered out on its worker. The driver handles
    references and counts, never an id. Returns each source's (kept table, rows) in
    `first_wins`' order, the rows each lost to each winner, and each source's rows."""
    from tqdm.auto import tqdm

    count = parts.count_for(engine)
    names = list(tables)
    cut = held.each_parts(
        engine, parts.partition, [(tables[name], count, False) for name in names], count
    )
    pieces = {name: tables_ for name, (tables_, _) in zip(names, cut)}
    records = {name: rows for name, (_, rows) in zip(names, cut)}
    dropped: dict[str, list[Any]] = {}
    lost: dict[str, np.ndarray] = {}
    order: list[Converted] = []
    for kind in tqdm(("sft", "dpo", "text"), desc="dedup", unit="kind", disable=not progress):
        group = [s for s in priority(sources) if s.plugin.kind == kind]
        if not group:
            continue
        order += group
        done = held.each_parts(
            engine,
            _first_wins_part,
            [tuple(pieces[s.source.name][p] for s in group) for p in range(count)],
            len(group),
        )
        for k, source in enumerate(group):
            dropped[source.source.name] = [rows[k] for rows, _ in done]
            lost[source.source.name] = sum(matrix[k] for _, matrix in done)
    kept = held.each_source(
        engine,
        _without,
        {s.source.name: (tables[s.source.name], *dropped[s.source.name]) for s in order},
    )
    lost_to: dict[str, Counter] = {s.source.name: Counter() for s in sources}
    for s in order:
        group = [g for g in order if g.plugin.kind == s.plugin.kind]
        for w in np.flatnonzero(lost[s.source.name]):
            lost_to[s.source.name][group[w].source.name] = int(lost[s.source.name][w])
    return kept, lost_to, records


def _first_wins_part(*pieces: pa.Table) -> tuple[list[pa.Table], np.ndarray]:
    """One part of a kind's sources (in priority order): each source's rows that are not
    the first occurrence of their id, and a matrix of the rows each lost to each winner."""
    is_first, winner = _firsts([piece.column("id") for piece in pieces])
    matrix = np.zeros((len(pieces), len(pieces)), np.int64)
    out, offset = [], 0
    for k, piece in enumerate(pieces):
        mine = slice(offset, offset + piece.num_rows)
        gone = ~is_first[mine]
        out.append(pa.table({"row": piece.column("row").combine_chunks().filter(gone)}))
        np.add.at(matrix[k], winner[mine][gone], 1)
        offset += piece.num_rows
    return out, matrix


def _without(table: pa.Table, *dropped: pa.Table) -> tuple[pa.Table, int]:
    """`table` less the rows `dropped` names (filtered as `first_wins`' mask would be)."""
    mask = np.ones(table.num_rows, bool)
    for rows in dropped:
        mask[rows.column("row").to_numpy()] = False
    kept = table.filter(pa.array(mask))
    return kept, kept.num_rows
