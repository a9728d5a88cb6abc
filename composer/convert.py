"""Turn a source's upstream rows into records: map columns, run the plugin, validate.

Rows that fail are collected as `Rejection`s with a short reason (counted in the report)
and a detail saying where and what; with `on_invalid: fail` the first one stops the build.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from composer.errors import InputError, did_you_mean
from composer.manifest import Manifest, Source
from composer.plugins import Plugin
from composer.readers import Upstream, read_hub, read_local, repeats_warning, resolve_files
from composer.records import HUMAN_SIDE, SCHEMA, dumps_meta, make_id, record_problem


@dataclass
class Rejection:
    where: str
    reason: str
    detail: str
    row: dict[str, Any] | None = None
    index: int | None = None  # the upstream row's 0-based index (records' meta.row)


@dataclass
class Converted:
    """One source after conversion (and its filters): its records, how many upstream rows
    it read, and what the filters dropped."""

    source: Source
    plugin: Plugin
    confidence: float
    order: int
    records: pa.Table
    rows_read: int
    rejections: list[Rejection] = field(default_factory=list)
    revision: str | None = None
    made: int = 0  # records the plugin made, before the filters
    linked: int = 0  # rows that became turns inside other rows' records (message trees)
    left_out: int = 0  # rows the plugin took nothing from, by design (not selected, say)
    filtered_by: dict[str, int] = field(default_factory=dict)
    distributions: dict[str, dict] = field(default_factory=dict)  # score histograms
    warnings: list[str] = field(default_factory=list)  # about reading (a file reached twice)
    # Where the rejections stay on a worker (composer.held): `rejections` holds the first few,
    # these the rest of what the report needs, and a reference to their rejected.jsonl lines.
    rejected_total: int | None = None
    reasons: Counter | None = None
    rejected_lines: Any = None

    @property
    def rejected(self) -> int:
        return len(self.rejections) if self.rejected_total is None else self.rejected_total

    @property
    def rejected_by_reason(self) -> Counter:
        if self.reasons is not None:
            return self.reasons
        return Counter(r.reason for r in self.rejections)


def read_upstream(manifest: Manifest, source: Source, plugin: Plugin) -> Upstream:
    split = source.split or plugin.split
    if source.path:
        repeats: list[str] = []
        upstream = read_local(resolve_files(source.path, manifest.base_dir, repeats), split)
        upstream.warnings = repeats_warning(repeats, manifest.base_dir)
        return upstream
    hub = source.hub or plugin.hub
    config = source.config or (plugin.config if not source.hub else None)
    revision = source.revision or (plugin.revision if not source.hub else None)
    data_files = source.data_files or (plugin.data_files if not source.hub else None)
    return read_hub(hub, config, split, revision, data_files, source.trust_remote_code)


def read_inputs(manifest: Manifest, source: Source, plugin: Plugin) -> dict[str, dict]:
    """The plugin's joined upstreams, whole, as column lists: a local `inputs:` path from
    the manifest, else the plugin's hub default."""
    out = {}
    for name, spec in plugin.inputs.items():
        if name in source.inputs:
            upstream = read_local(resolve_files(source.inputs[name], manifest.base_dir), None)
        else:
            upstream = read_hub(
                spec["hub"],
                spec.get("config"),
                spec.get("split", "train"),
                source._input_revisions.get(name) or spec.get("revision"),  # --locked commit
                spec.get("data_files"),
            )
        out[name] = upstream.batch(0, upstream.table.num_rows)
    return out


def column_renames(names: list[str], source: Source, plugin: Plugin, label: str) -> dict[str, str]:
    """Upstream column -> the name the plugin reads, from `columns: {plugin_name: upstream}`.

    Checks up front that every mapped and every required column exists.
    """
    for wanted, upstream in source.columns.items():
        if upstream not in names:
            raise InputError(
                f"{label}: columns.{wanted}: no column {upstream!r} in the data"
                f"{did_you_mean(upstream, names)}; columns: {', '.join(names)}"
            )
    renames = {upstream: wanted for wanted, upstream in source.columns.items()}
    visible = [renames.get(n, n) for n in names if n in renames or n not in renames.values()]
    missing = [c for c in plugin.columns if c not in visible]
    if missing:
        hint = did_you_mean(missing[0], names)
        raise InputError(
            f"{label}: plugin {plugin.name!r} needs column {missing[0]!r}, which the "
            f"data does not have{hint}; columns: {', '.join(names)}. Map it with "
            f"`columns: {{{missing[0]}: <column>}}`"
        )
    return renames


def _renamed(batch: dict[str, list], renames: dict[str, str]) -> dict[str, list]:
    # A column the mapping replaces is dropped, so the mapped one is the one read.
    return {
        renames.get(k, k): v for k, v in batch.items() if k in renames or k not in renames.values()
    }


def convert_source(
    manifest: Manifest,
    index: int,
    source: Source,
    plugin: Plugin,
    phase: Callable[[str], None] = lambda step: None,
) -> Converted:
    """The source's rows as records and rejections; `phase` hears each step (for a
    progress bar)."""
    label = f"sources[{index}] ({source.name})"
    phase("read")
    upstream = read_upstream(manifest, source, plugin)
    if source.path:  # records name their file relative to the manifest: the same anywhere
        upstream.files = [
            Path(os.path.relpath(f, manifest.base_dir)).as_posix() for f in upstream.files
        ]
    renames = column_renames(upstream.table.column_names, source, plugin, label)
    rows_read = upstream.table.num_rows + len(upstream.bad_rows)
    options = dict(source.options)
    if plugin.takes_seed:
        options["seed"] = manifest.seed
    if plugin.select is not None:
        upstream = _selected(upstream, renames, plugin, options, label)
    rows = upstream.table.num_rows
    rejections = [Rejection(b.where, "unreadable row", b.detail) for b in upstream.bad_rows]
    columns: dict[str, list] = {name: [] for name in SCHEMA.names}
    linked = 0
    seen = np.zeros(rows, dtype=bool)  # rows that gave a record, a rejection or a turn
    size = plugin.batch_size or max(rows, 1)
    options = plugin.own_options(plugin.convert, options)
    options.update(read_inputs(manifest, source, plugin))
    for start in range(0, rows, size):
        phase(f"convert {start:,}/{rows:,} rows")
        batch = _renamed(upstream.batch(start, size), renames)
        try:
            out = plugin.convert(batch, **options)
        except Exception as exc:  # user data can make a plugin fail any way: find the row
            if plugin.batch_size is None:  # rows depend on each other (a message tree)
                raise InputError(
                    f"{label}: plugin {plugin.name!r} failed: {type(exc).__name__}: {exc}"
                ) from exc
            out = _convert_row_by_row(plugin, batch, options)
        linked += _collect(out, batch, start, source, plugin, upstream, columns, rejections, seen)
    if rejections and source.on_invalid == "fail":
        first = rejections[0]
        raise InputError(
            f"{label}: {first.where}: {first.reason}: {first.detail} "
            f"({len(rejections)} invalid row{'s' if len(rejections) > 1 else ''}; on_invalid: fail)"
        )
    _check_max_invalid(label, source, rejections, rows_read)
    mode = manifest.dedup.key
    columns["id"] = [
        make_id(f"{source.name}\x00{i}" if mode == "none" else dedup_key(plugin.kind, mode, *row))
        for i, row in enumerate(
            zip(columns["conversations"], columns["text"], columns["chosen"], columns["rejected"])
        )
    ]
    records = pa.Table.from_pydict(columns, schema=SCHEMA)
    confidence = plugin.confidence if source.confidence is None else source.confidence
    return Converted(
        source=source,
        plugin=plugin,
        confidence=confidence,
        order=index,
        records=records,
        rows_read=rows_read,
        rejections=rejections,
        revision=upstream.revision,
        linked=linked,
        # Rows a selection skipped, or a plugin passed over on purpose (another model's chat,
        # a category the source does not take): counted, so that every row is accounted for.
        left_out=rows_read - len(upstream.bad_rows) - int(seen.sum()),
        warnings=upstream.warnings,
    )


def _check_max_invalid(
    label: str, source: Source, rejections: list[Rejection], rows_read: int
) -> None:
    """Fail the build when more than `max_invalid` (a share of the rows read) is rejected."""
    limit = source.max_invalid
    if limit is None or not rejections or len(rejections) <= limit * rows_read:
        return
    reasons = Counter(r.reason for r in rejections).most_common()
    first = rejections[0]
    detail = first.detail if len(first.detail) <= 200 else first.detail[:199] + "…"
    raise InputError(
        f"{label}: {len(rejections):,} of {rows_read:,} rows invalid "
        f"({100 * len(rejections) / rows_read:.3g}%), more than max_invalid {100 * limit:g}%: "
        + ", ".join(f"{reason}: {n:,}" for reason, n in reasons)
        + f"; first: {first.where}: {first.reason}: {detail}; fix the data or raise max_invalid"
    )


def _selected(
    upstream: Upstream, renames: dict[str, str], plugin: Plugin, options: dict, label: str
) -> Upstream:
    """The rows the plugin's `select` keeps (a stratified sample, say), chosen from only the
    columns it names, so that millions of rows never become Python objects."""
    names = {renames.get(n, n): n for n in upstream.table.column_names}
    columns = {c: upstream.table.column(names[c]).to_pylist() for c in plugin.select_columns}
    try:
        keep = plugin.select(columns, **plugin.own_options(plugin.select, options))
    except Exception as exc:
        raise InputError(
            f"{label}: plugin {plugin.name!r} failed to select rows: {type(exc).__name__}: {exc}"
        ) from exc
    return upstream.take(sorted(keep))


def _convert_row_by_row(plugin: Plugin, batch: dict[str, list], options: dict) -> dict:
    """Convert one row at a time; a row the plugin fails on becomes an `error` row."""
    key = "text" if plugin.kind == "text" else "conversations"
    merged: dict[str, list] = {key: [], "row": [], "error": [], "meta": []}
    for i in range(len(next(iter(batch.values()), []))):
        try:
            out = plugin.convert({k: v[i : i + 1] for k, v in batch.items()}, **options)
        except Exception as exc:
            out = {key: [None], "error": [("plugin error", f"{type(exc).__name__}: {exc}")]}
        n = len(out[key])
        for column in ("chosen", "rejected"):
            if column in out:
                merged.setdefault(column, [None] * len(merged[key])).extend(out[column])
            elif column in merged:
                merged[column].extend([None] * n)
        merged[key].extend(out[key])
        merged["row"].extend(i for _ in range(n))
        merged["error"].extend(out.get("error") or [None] * n)
        merged["meta"].extend(out.get("meta") or [None] * n)
    return merged


def _collect(
    out: dict[str, list],
    batch: dict[str, list],
    start: int,
    source: Source,
    plugin: Plugin,
    upstream: Upstream,
    columns: dict[str, list],
    rejections: list[Rejection],
    seen: np.ndarray,
) -> int:
    """Validate one converted batch and append its valid rows to `columns`, marking in
    `seen` the rows it used; the number of rows the plugin joined into other rows' records
    (its `linked` row list)."""
    key = "text" if plugin.kind == "text" else "conversations"
    n = len(out[key])
    rows = out.get("row") or range(n)
    errors = out.get("error") or [None] * n
    metas = out.get("meta") or [None] * n
    empty = [None] * n
    convs = out.get("conversations") or empty
    chosen, rejected, texts = (out.get(k) or empty for k in ("chosen", "rejected", "text"))
    for i in range(n):
        row = start + rows[i]
        error = errors[i]
        if error:  # a plugin's reason: "why", or (category, why)
            problem = error if isinstance(error, tuple) else ("invalid row", error)
        else:
            problem = record_problem(plugin.kind, convs[i], chosen[i], rejected[i], texts[i])
        if problem:
            upstream_row = {k: v[rows[i]] for k, v in batch.items()}
            rejections.append(
                Rejection(upstream.where(row), *problem, upstream_row, upstream.number(row))
            )
            continue
        several_files = upstream.file_index and len(upstream.files) > 1
        if not metas[i] and not several_files:  # the common case, without json.dumps
            columns["meta"].append(f'{{"row":{upstream.number(row)}}}')
        else:
            meta = {"row": upstream.number(row), **(metas[i] or {})}
            if several_files:
                meta["file"] = upstream.files[upstream.file_index[row]]
            columns["meta"].append(dumps_meta(meta))
        columns["source"].append(source.name)
        columns["kind"].append(plugin.kind)
        columns["conversations"].append(convs[i] if plugin.kind != "text" else None)
        columns["chosen"].append(chosen[i])
        columns["rejected"].append(rejected[i])
        columns["text"].append(texts[i])
    linked = sorted(set(out.get("linked") or ()))
    seen[start + np.asarray([*rows, *linked], dtype=np.int64)] = True
    return len(linked)


# ---------------------------------------------------------------- dedup keys


def dedup_key(
    kind: str,
    mode: str,
    turns: list[dict] | None,
    text: str | None,
    chosen: str | None = None,
    rejected: str | None = None,
) -> str:
    """The text whose uuid5 is a record's id (see DESIGN.md, Records).

    `instruction`: the first human turn (a DPO pair's: all of its context's human turns);
    `user_turns`: all human turns; `conversation`: every turn, and a DPO pair's answers.
    """
    if kind == "text":
        return text
    humans = [t["value"] for t in turns if t["from"] in HUMAN_SIDE]
    if mode == "instruction" and kind == "sft":
        return humans[0]
    if mode in ("instruction", "user_turns"):  # a DPO pair's prompt is its whole context
        return humans[0] if len(humans) == 1 else json.dumps(humans, ensure_ascii=False)
    pairs = [[t["from"], t["value"]] for t in turns]
    if kind == "dpo":
        pairs += [["chosen", chosen], ["rejected", rejected]]
    return json.dumps(pairs, ensure_ascii=False)
