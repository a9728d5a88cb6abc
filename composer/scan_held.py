"""Decontamination where the records are: the scan on an engine that holds data (Ray).

`decontaminate.scan_all` brings every source's texts into one process: it finds the distinct
texts of all sources (a text that sources share is scanned once), scans them, and counts
each source's records. On an engine that holds data (composer.held) the same steps run on
the workers, as a hash shuffle, and the driver holds no text:

1. where each source's table is, its checked texts (`source_texts`) are split into `parts`
   by a hash of the text: a text goes to the same part whichever source it is in;
2. a task a part reads that part of every source and finds its distinct texts;
3. the actor pool (`scan_setup`: each actor loads the benchmark index once) scans each
   part's distinct texts, SCAN_TEXTS at a time, reading them from the object store; the
   scans stay there;
4. where each source's table is, its texts are told their scans and its records counted
   (`counted`, SCAN_CHUNK records at a time), as scan_all counts them.

Only each source's SourceScan comes back: its mask of removed records, its counts, stats
and scores, and the audit of its matches. A text's scan depends on that text alone (see
decontaminate.search), and `counted` reads only the scans of a source's texts and which of
them are the same text, so the bytes are scan_all's, whichever texts were scanned together
and however many parts there are.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from composer import decontaminate as _decontaminate
from composer import held
from composer.cache import scratch
from composer.decontaminate import (
    SCAN_CHUNK,
    BenchmarkIndex,
    Detector,
    Scanned,
    Settings,
    SourceScan,
    counted,
    joined,
    scan_setup,
    source_texts,
)
from composer.engines import Engine


def scan_held(
    detector: Detector,
    tables: dict[str, Any],
    kinds: dict[str, str],
    report_only: bool,
    engine: Engine,
    folder: Path | None = None,
    cached: bool = False,
    parts: int | None = None,
) -> dict[str, SourceScan]:
    """scan_all's result for `tables` (references to tables the engine holds), each step
    on the engine's workers (see the module doc), the texts cut in `parts` (by default one
    a worker). On an engine that holds no data the same steps run here (for the tests)."""
    names = list(tables)
    settings = detector.settings
    parts = parts or max(1, engine.workers)
    split = held.each_parts(
        engine,
        split_texts,
        [(tables[name], kinds[name], settings, parts) for name in names],
        parts,
    )
    grouped = held.each_parts(
        engine, distinct_part, [tuple(refs[p] for refs, _ in split) for p in range(parts)], 2
    )
    size = _decontaminate.SCAN_TEXTS  # read as it runs: the tests make it small
    tasks = [
        (texts, start, min(start + size, count))
        for (texts, _), count in grouped
        for start in range(0, count, size)
    ]
    scans = _scanned(engine, detector, tasks, folder, cached)
    items = BenchmarkIndex(detector.benchmark, detector.item_ids, detector.items, None)
    starts = np.cumsum([0] + [count for _, count in grouped]).tolist()
    ids = [refs[1] for refs, _ in grouped]
    common = (report_only, held.keep(engine, items), starts, *ids, *scans)
    found = held.each(
        engine,
        counted_source,
        [(tables[name], kinds[name], settings, name, at, *common) for at, name in enumerate(names)],
    )
    return {name: scan for name, (_, scan) in zip(names, found)}


def _scanned(
    engine: Engine, detector: Detector, tasks: list[tuple], folder: Path | None, cached: bool
) -> list[Any]:
    """Each task's scans (scan_part's): on the actors of an engine that holds data (each
    actor's detector loaded from the benchmark index in `folder`, else in a scratch folder
    under the cache root, which every node reads), kept in the object store; else here."""
    if not tasks:
        return []
    if not held.holds(engine):
        return [scan_part(detector, *task)[0] for task in tasks]
    with scratch("benchmarks") as tmp:
        if folder is None:
            folder = Path(tmp)
            detector.built.save(folder)
        setup = partial(scan_setup, str(folder), detector.settings, cached)
        return [ref for ref, _ in engine.map_held(scan_part, tasks, setup, pool=True)]


def split_texts(
    table: pa.Table, kind: str, settings: Settings, parts: int
) -> tuple[list[pa.Table], int]:
    """A source's checked texts in `parts` tables by a hash of the text (`text`, and `at`:
    the text's place among the source's texts), and how many texts it has."""
    texts = source_texts(table, kind, settings).values
    encoded = pc.dictionary_encode(texts)
    hashes = pd_hash(encoded.dictionary)
    part = (hashes % np.uint64(parts)).astype(np.int64)[encoded.indices.to_numpy()]
    order = np.argsort(part, kind="stable")
    bounds = np.searchsorted(part[order], np.arange(parts + 1))
    out = []
    for p in range(parts):
        at = order[bounds[p] : bounds[p + 1]]
        out.append(pa.table({"text": texts.take(at), "at": at}))
    return out, len(texts)


def pd_hash(values: pa.Array) -> np.ndarray:
    """A 64-bit hash of each string (pandas' siphash, as near dedup's)."""
    import pandas as pd

    return pd.util.hash_array(values.to_numpy(zero_copy_only=False), categorize=False)


def distinct_part(*sources: pa.Table) -> tuple[list[Any], int]:
    """A part of every source (split_texts'), in source order: the part's distinct texts
    (a table), and for each source where its texts are among them ((at, id) arrays), and
    how many there are."""
    values = pa.chunked_array([s.column("text") for s in sources], pa.large_string())
    chunks = pc.dictionary_encode(values).chunks
    empty = pa.array([], pa.large_string())
    distinct = next((c.dictionary for c in chunks), empty)
    indices = np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in chunks] or [[]])
    where, at = [], 0
    for s in sources:
        where.append((s.column("at").to_numpy(), indices[at : at + s.num_rows].astype(np.int64)))
        at += s.num_rows
    return [pa.table({"text": distinct}), where], len(distinct)


def scan_part(detector: Detector, texts: pa.Table, start: int, end: int) -> tuple[Any, None]:
    """The scans of a part's distinct texts from `start` to `end`, on an actor: (each
    text's windows, {text: TextScan} of those that re-scored a pair or matched); the
    embeddings it computed stored for the next build."""
    chunk = texts.column("text").slice(start, end - start).to_pylist()
    scans = detector._scan_texts(chunk)
    if detector.transformer is not None:
        detector.transformer.cache.save()
    return Scanned.compact(scans), None


def counted_source(
    table: pa.Table,
    kind: str,
    settings: Settings,
    name: str,
    at: int,
    report_only: bool,
    items: BenchmarkIndex,
    starts: list[int],
    *found: Any,
) -> tuple[pa.Table, SourceScan]:
    """A source's scan, where its table is: `found` is every part's (at, id) arrays
    (distinct_part's), then the scans of every task (scan_part's), in order; `starts`:
    where each part's distinct texts start among all of them."""
    parts = len(starts) - 1
    source = source_texts(table, kind, settings)
    ids = np.zeros(len(source.values), np.int64)
    for start, where in zip(starts, found[:parts]):
        place, local = where[at]
        ids[place] = start + local
    scanned = Scanned.of_parts(found[parts:], settings.embedding)
    chunks = [
        counted(items, scanned, name, table, source, ids, first, report_only)
        for first in range(0, table.num_rows, SCAN_CHUNK)
    ]
    return table, joined(chunks, len(items.items))
