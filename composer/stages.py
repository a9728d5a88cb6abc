"""The build's cached stages: what each one's key is made of, and how its result is stored.

| stage           | one entry per       | key: the hash of                                        |
|-----------------|---------------------|---------------------------------------------------------|
| `source`        | source              | its lock entry (files' sha256 or hub commit, plugin code,|
|                 |                     | joined inputs), its manifest keys, the global filters,  |
|                 |                     | dedup key, seed, scorer/tokenizer code, composer code   |
| `benchmarks`    | manifest            | the lock's decontamination entry (model, benchmarks)    |
| `near`          | manifest            | the records exact dedup kept, by rank (confidence, then |
|                 |                     | manifest order), `dedup.near`, dedup key, seed, code    |
| `decontaminate` | source              | the source's key, the ids dedup kept, the benchmarks    |
| `render`        | source              | its final records (split included), templates, formats, |
|                 |                     | system prompt policies, turns, seed                     |
| `output`        | manifest            | the whole lock (every input above, templates, packages) |

So a changed template re-renders and recomputes nothing else; a changed local file
recomputes its source, then the stages after it (dedup decides across sources), with the
other sources' records, decontamination and rendered rows read from the cache wherever
their records came out the same.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from composer.cache import StageCache, digest
from composer.codehash import code_sha
from composer.convert import Converted, Rejection, convert_source
from composer.dedup import priority
from composer.manifest import Filters, Manifest, NearDedup
from composer.plugins import Plugin
from composer.report import histogram

# A source's keys that later stages read (dedup, packing, sampling, the split, rendering):
# changing them (`sample`, say, the key most often tuned) does not convert a source again.
LATER_KEYS = {
    "confidence",
    "sample",
    "weight",
    "stratify",
    "max_validation",
    "packing",
    "system_prompt",
    "opt_in",
}
RECORDS = "records.arrow"
STATE = "state.json"
ROWS = "rows.arrow"


def source_key(manifest: Manifest, index: int, lock_inputs: dict[str, Any]) -> str:
    source = manifest.sources[index]
    return digest(
        "source",
        code_sha(),
        lock_inputs["packages"],
        lock_inputs["code"],
        lock_inputs["sources"][source.name],
        source.model_dump(mode="json", by_alias=True, exclude=LATER_KEYS),
        # Records keep upstream file paths (meta.file) and rejections name them.
        str(manifest.base_dir.resolve()),
        manifest.seed,
        manifest.dedup.model_dump(mode="json"),
        manifest.filters.model_dump(mode="json") if manifest.filters else None,
    )


def pinned(entry: Any) -> bool:
    """Whether every upstream in a lock (or a part of one) is pinned: local files with
    their sha256, or a hub dataset with the commit it resolved to. A hub dataset read
    offline at no known commit is not, and no stage that depends on it is cached."""
    if isinstance(entry, dict):
        if "hub" in entry and "files" not in entry:
            return bool(entry.get("resolved"))
        return all(pinned(v) for v in entry.values())
    if isinstance(entry, list):
        return all(pinned(v) for v in entry)
    return True


def output_key(manifest: Manifest, lock_inputs: dict[str, Any]) -> str:
    """Everything a build's bytes depend on is in its lock; composer's own code is not, nor
    the manifest's folder (a message about a file may name it)."""
    return digest("output", code_sha(), lock_inputs, str(manifest.base_dir.resolve()))


def render_key(
    manifest: Manifest, index: int, kind: str, records_sha: str, lock_inputs: dict[str, Any]
) -> str:
    """A source's rendered rows depend on its final records (split column included: their
    `table_sha`, taken where they are) and on how the formats render them: templates,
    coverage, system prompt policies, turns, seed."""
    source = manifest.sources[index]
    return digest(
        "render",
        code_sha(),
        lock_inputs["packages"],
        lock_inputs["templates"],
        [f.model_dump(mode="json") for f in manifest.formats],
        manifest.system_prompt.model_dump(mode="json"),
        source.system_prompt.model_dump(mode="json") if source.system_prompt else None,
        manifest.render.model_dump(mode="json"),
        manifest.seed,
        kind,
        records_sha,
    )


def scan_keys(
    manifest: Manifest, lock_inputs: dict[str, Any], kept: dict[str, pa.Table]
) -> dict[str, str]:
    """Keys of the benchmark index (under "", when every benchmark is pinned) and of each
    source's scan: the benchmarks' key and the sha256 of the records it scans."""
    index = digest(
        "benchmarks", code_sha(), lock_inputs["packages"], lock_inputs["decontamination"]
    )
    if not pinned(lock_inputs["decontamination"]["benchmarks"]):
        return {}
    keys = {"": index}
    for source in manifest.sources:
        keys[source.name] = digest("decontaminate", index, table_sha(kept[source.name]))
    return keys


def near_key(
    manifest: Manifest,
    lock_inputs: dict[str, Any],
    converted: list[Converted],
    shas: dict[str, str],
    spec: NearDedup,
) -> str:
    """Near dedup's key: what it compares (each source's records after exact dedup, by the
    `table_sha` of each in `shas`, in the rank near dedup keeps the first of), how
    (`dedup.near`, the dedup key, the seed of its permutations, the embedding model's
    weights for `method: embedding`) and the code."""
    ranked = priority(converted)
    model = None
    if spec.method == "embedding":
        from composer.embeddings import DEFAULT_MODEL, model_id

        model = model_id(DEFAULT_MODEL)
    return digest(
        "near",
        code_sha(),
        lock_inputs["packages"],
        spec.model_dump(mode="json"),
        manifest.dedup.key,
        manifest.seed,
        model,
        [(c.source.name, c.plugin.kind, shas[c.source.name]) for c in ranked],
    )


def table_sha(table: pa.Table) -> str:
    """sha256 of a table's Arrow IPC stream: its schema and every value."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue()).hexdigest()


class RowStore:
    """A `render` entry written batch by batch (rendered rows are too many to hold at once);
    stored when the block ends, nothing when the cache is off, the block fails or the cache
    cannot be written (a warning; the build goes on)."""

    def __init__(self, cache: StageCache, key: str, name: str, schema: pa.Schema):
        self.cache, self.key, self.name, self.schema = cache, key, name, schema
        self._put = None
        self._writer = None

    def __enter__(self) -> RowStore:
        if self.cache.enabled:
            self._guard(self._open)
        return self

    def _open(self) -> None:
        self._put = self.cache.put("render", self.key, self.name)
        folder = self._put.__enter__()
        options = pa.ipc.IpcWriteOptions(compression="zstd")
        self._writer = pa.ipc.new_file(str(folder / ROWS), self.schema, options=options)

    def write(self, table: pa.Table) -> None:
        if self._writer is not None:
            self._guard(self._writer.write_table, table)

    def __exit__(self, *exc_info) -> None:
        if self._put is None:
            return
        if exc_info[0] is not None:
            self._put.__exit__(*exc_info)  # removes the half entry; the error goes on up
            self._put = None
            return
        self._guard(self._writer.close)
        if self._put is not None:
            put, self._put = self._put, None
            try:
                put.__exit__(None, None, None)  # checksums, then the rename into place
            except OSError as exc:
                self.cache.cannot_store("render", self.name, exc)

    def _guard(self, step, *args) -> None:
        """Run a storing step; on OSError give up storing, not the build."""
        try:
            step(*args)
        except OSError as exc:
            self._writer = None
            if self._put is not None:
                self._put.__exit__(type(exc), exc, exc.__traceback__)
                self._put = None
            self.cache.cannot_store("render", self.name, exc)


def read_rows(folder: Path) -> Iterator[pa.Table]:
    """A `render` entry's rows, a batch at a time."""
    with pa.OSFile(str(folder / ROWS)) as f:
        reader = pa.ipc.open_file(f)
        for i in range(reader.num_record_batches):
            yield pa.Table.from_batches([reader.get_batch(i)])


def prepare_source(
    manifest: Manifest,
    index: int,
    plugin: Plugin,
    phase: Callable[[str], None] = lambda step: None,
) -> Converted:
    """A source converted, then filtered by the manifest's and its own filters (`phase`
    hears each step: read, convert, filter)."""
    source = manifest.sources[index]
    c = convert_source(manifest, index, source, plugin, phase)
    c.made = c.records.num_rows
    if manifest.filters is None and source.filters is None:
        return c
    from composer.filters import apply_filters

    spec = (manifest.filters or Filters()).merged(source.filters)
    phase(f"filter {c.made:,} records")
    result = apply_filters(c.records, plugin.kind, spec, manifest.base_dir)
    c.records = c.records.filter(pa.array(result.keep))
    c.filtered_by = result.dropped
    for scorer, values in result.scores.items():  # score histograms with their thresholds
        bounds = result.thresholds.get(scorer, {})
        c.distributions[f"score:{scorer}"] = {
            **histogram(values),
            "min": bounds.get("min"),
            "max": bounds.get("max"),
        }
    return c


def save_source(c: Converted, folder: Path) -> None:
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with (
        pa.OSFile(str(folder / RECORDS), "wb") as sink,
        pa.ipc.new_file(sink, c.records.schema, options=options) as writer,
    ):
        writer.write_table(c.records)
    state = {
        "rows_read": c.rows_read,
        "revision": c.revision,
        "made": c.made,
        "linked": c.linked,
        "left_out": c.left_out,
        "filtered_by": c.filtered_by,
        "distributions": c.distributions,
        "rejections": [vars(r) for r in c.rejections],
        "warnings": c.warnings,
    }
    text = json.dumps(state, ensure_ascii=False, default=str)  # rows as rejected.jsonl has them
    (folder / STATE).write_text(text, encoding="utf-8")


def load_source(folder: Path, manifest: Manifest, index: int, plugin: Plugin) -> Converted:
    source = manifest.sources[index]
    with pa.OSFile(str(folder / RECORDS)) as f:
        records = pa.ipc.open_file(f).read_all()
    state = json.loads((folder / STATE).read_text(encoding="utf-8"))
    return Converted(
        source=source,
        plugin=plugin,
        confidence=plugin.confidence if source.confidence is None else source.confidence,
        order=index,
        records=records,
        rows_read=state["rows_read"],
        rejections=[Rejection(**r) for r in state["rejections"]],
        revision=state["revision"],
        made=state["made"],
        linked=state.get("linked", 0),
        left_out=state.get("left_out", 0),
        filtered_by=state["filtered_by"],
        distributions=state["distributions"],
        warnings=state.get("warnings", []),
    )
