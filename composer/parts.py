"""Hash parts of record ids: the shuffle that lets dedup and the split run where the records are.

An id's part is fixed by the id alone (a draw of its bits), so every copy of an id, in
every source, lands in the same part: the task of a part sees all of them and decides for
those ids what a process holding every id would decide (composer.dedup.first_wins_held,
composer.split.split_held). Each source is cut into its parts on the worker that holds it
(`partition`), and the driver of a Ray build handles references and counts, never an id.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from composer.draws import draw_bits

MAX_PARTS = 64


def count_for(engine: Any) -> int:
    """How many parts a shuffle on `engine` makes: two a worker (a part's task is small and
    the workers stay busy), at least two, at most MAX_PARTS. The result does not depend on
    it."""
    return max(2, min(MAX_PARTS, 2 * int(getattr(engine, "workers", 1) or 1)))


def part_of(ids: pa.Array, parts: int) -> np.ndarray:
    """Each uuid's part, in [0, parts)."""
    return (draw_bits(0, ids, "part") * np.uint64(parts) >> np.uint64(53)).astype(np.int64)


def partition(table: pa.Table, parts: int, distinct: bool) -> tuple[list[pa.Table], int]:
    """`table`'s ids in `parts` tables, with where each is in the table (`row`, ascending
    in each part): every row's id, or with `distinct` each id once, where it first appears
    (its rank among the table's distinct ids, in order of first appearance). Returns the
    parts and how many ids they hold."""
    ids = table.column("id")
    ids = pc.unique(ids) if distinct else ids.combine_chunks()
    where = part_of(ids, parts)
    order = np.argsort(where, kind="stable")
    bounds = np.searchsorted(where[order], np.arange(parts + 1))
    tables = [
        pa.table({"id": ids.take(rows), "row": rows})
        for rows in (order[bounds[p] : bounds[p + 1]] for p in range(parts))
    ]
    return tables, len(ids)
