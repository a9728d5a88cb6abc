"""The pipeline: load and convert each source, dedup, sample, split, render, write.

`build(manifest)` is the library entry point; the CLI is a thin layer over it. Each stage is
a function in its own module; this one only chains them and keeps the funnel counts.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tqdm.auto import tqdm

from composer import held, lock, stages
from composer.cache import StageCache, copy_entry
from composer.card import write_card
from composer.convert import Converted
from composer.decontaminate import decontaminate
from composer.dedup import dedup, first_wins, first_wins_held, priority
from composer.engines import Engine, check_engine, make_engine
from composer.engines.base import compact
from composer.engines.pool import default_workers
from composer.errors import ManifestError, UserError, did_you_mean
from composer.formats import PromptFormat, available_formats, template_path
from composer.html_report import render_html
from composer.manifest import Manifest, NearDedup, Sample, check, key_path, load_manifest
from composer.near_dedup import NearResult, near_dedup
from composer.near_dedup import store as store_near
from composer.output import RowWriter, atomic_dir, check_target, write_jsonl, write_table
from composer.plugins import registry
from composer.render import SCHEMAS, FormatPlan, render_table
from composer.report import EXAMPLES, Funnel, build_report, histogram, write_report
from composer.sample import sample, solve_mix
from composer.shapes import FOLDER as SHAPE_FOLDER
from composer.shapes import SCHEMAS as SHAPE_SCHEMAS
from composer.shapes import SHAPE_NAME, SHAPES_OF, shape_tables
from composer.split import split_held, split_ids, with_split
from composer.system_prompt import SystemPromptChooser
from composer.token_lengths import TokenLengths
from composer.trainer_configs import write_trainer_configs

RENDER_BATCH = 20_000  # records rendered and written at a time: bounds memory on big builds


@dataclass
class BuildResult:
    output_dir: Path
    report: dict[str, Any]
    cache_use: str = ""  # what the build took from the cache, in a line
    # Wall seconds per stage, and the rows that went into each. Kept out of the output
    # folder, whose bytes never vary; empty when the output came from the cache.
    timings: dict[str, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    engine: str = ""  # what ran the stages' tasks: "local", "pool", "ray"

    @property
    def totals(self) -> dict[str, Any]:
        return self.report["totals"]

    @property
    def stages(self) -> dict[str, dict[str, Any]]:
        """Where the time went: each stage's wall seconds, rows in and rows a second."""
        out = {}
        for stage, seconds in self.timings.items():
            rows = self.rows.get(stage, 0)
            rate = round(rows / seconds) if seconds > 0 else None
            out[stage] = {"seconds": seconds, "rows": rows, "rows_per_s": rate}
        return out

    def slowest(self, count: int = 3) -> list[str]:
        """The stages that took longest, longest first."""
        return sorted(self.timings, key=lambda stage: -self.timings[stage])[:count]


def prepare(manifest: Manifest | str | os.PathLike, seed: int | None = None) -> Manifest:
    """A checked manifest: loaded from a file, or a Manifest built in code and checked here."""
    if not isinstance(manifest, Manifest):
        manifest = load_manifest(manifest)
    else:
        problems = check(manifest)
        if problems:
            raise ManifestError(manifest.path, [f"{key_path(loc)}: {m}" for loc, m in problems])
    return manifest.model_copy(update={"seed": seed}) if seed is not None else manifest


def load_formats(manifest: Manifest) -> list[PromptFormat]:
    """Each format's template, or its tokenizer's chat template (composer.chat_template)."""
    found = available_formats(manifest.template_dirs())
    formats = []
    for spec in manifest.formats:
        if spec.tokenizer is not None:
            from composer.chat_template import ChatTemplateFormat

            folder = manifest.resolve(spec.tokenizer)
            formats.append(
                ChatTemplateFormat.load(spec.name, folder, spec.keep_eos, spec.max_seq_len)
            )
            continue
        template = spec.template or spec.name
        path = template_path(template, found, manifest.base_dir)
        if path is None:
            raise UserError(f"unknown format {template!r}{did_you_mean(template, found)}")
        formats.append(PromptFormat.load(spec.name, path, spec.vars, spec.keep_eos))
    return formats


def format_plans(
    manifest: Manifest, source_index: int, formats: list[PromptFormat]
) -> list[FormatPlan]:
    source = manifest.sources[source_index]
    plans = []
    for spec, fmt in zip(manifest.formats, formats):
        policy = source.system_prompt or spec.system_prompt or manifest.system_prompt
        # A format's own default system prompt (vicuna's, say) stands in for the manifest-wide
        # default, not for one that a source or the format's own entry sets.
        own_default = fmt.default_system if policy is manifest.system_prompt else None
        chooser = SystemPromptChooser.build(policy, manifest.seed, spec.name, own_default)
        plans.append(FormatPlan(fmt, spec.coverage, chooser))
    return plans


def load_sources(
    manifest: Manifest,
    progress: bool = False,
    cache: StageCache | None = None,
    lock_inputs: dict[str, Any] | None = None,
    engine: Engine | None = None,
) -> list[Converted]:
    """Each source converted and filtered, or read from the cache (`lock_inputs` gives the
    file hashes its keys are made of).

    The cache is looked up here, in the driver; the sources it misses are converted on
    `engine`'s workers, a task a source (the manifest and the source's index: a worker
    looks the plugin up in its own registry), when there are two or more and enough input
    to be worth starting them (`_worth_a_pool`), else here, the bar showing each step. The
    driver stores what comes back, in source order."""
    plugins = registry()
    cache = cache or StageCache(enabled=False)
    converted: list[Converted | None] = [None] * len(manifest.sources)
    keys: list[str] = []
    with tqdm(total=len(converted), desc="load", unit="source", disable=not progress) as bar:
        for i, source in enumerate(manifest.sources):
            plugin = plugins[source.plugin_name]
            pinned = cache.enabled and stages.pinned(lock_inputs["sources"][source.name])
            keys.append(stages.source_key(manifest, i, lock_inputs) if pinned else "")
            load = partial(stages.load_source, manifest=manifest, index=i, plugin=plugin)
            converted[i] = cache.find("source", keys[i], source.name, load)
            if converted[i] is not None:
                bar.update()
        misses = [i for i, c in enumerate(converted) if c is None]
        for i in misses:
            source, plugin = manifest.sources[i], plugins[manifest.sources[i].plugin_name]
            if plugin.gated and not source.path:
                print(gated_notice(source.name, source.hub or plugin.hub), file=sys.stderr)
        # A plugin made in code (a test's, a notebook's) is not in a worker's registry.
        shipped = [i for i in misses if not plugins.made_here(manifest.sources[i].plugin_name)]
        if engine is not None and engine.workers > 1 and _worth_a_pool(manifest, shipped):
            bar.set_postfix_str(f"{len(shipped)} sources on {engine.workers} workers")
            for i, c in zip(shipped, engine.map(_load_task, [(manifest, i) for i in shipped])):
                c.plugin = plugins[manifest.sources[i].plugin_name]
                converted[i] = c
        for i in misses:
            source = manifest.sources[i]
            if converted[i] is None:
                bar.set_postfix_str(source.name)
                plugin = plugins[source.plugin_name]
                phase = partial(_show_phase, bar, source.name)
                converted[i] = stages.prepare_source(manifest, i, plugin, phase)
            cache.keep("source", keys[i], source.name, converted[i], stages.save_source)
            bar.update()
    return converted


def _load_held(
    manifest: Manifest,
    progress: bool,
    cache: StageCache,
    lock_inputs: dict[str, Any],
    engine: Engine,
) -> tuple[list[Converted], dict[str, Any]]:
    """`load_sources` on an engine that holds data (Ray): every source is converted (or
    read from its cache entry) on a worker, and stored in the cache there; its records stay
    in the object store (composer.held) and the driver gets the rest of its Converted, the
    records left empty. A plugin made in code (a test's, a notebook's) is not in a worker's
    registry: its source converts here, and its records go to the object store."""
    plugins = registry()
    converted: list[Converted | None] = [None] * len(manifest.sources)
    tables: dict[str, Any] = {}
    tasks: list[tuple] = []
    where: list[int] = []
    with tqdm(total=len(converted), desc="load", unit="source", disable=not progress) as bar:
        for i, source in enumerate(manifest.sources):
            plugin = plugins[source.plugin_name]
            pinned = cache.enabled and stages.pinned(lock_inputs["sources"][source.name])
            key = stages.source_key(manifest, i, lock_inputs) if pinned else ""
            folder = cache.find("source", key, source.name, lambda folder: folder)
            if folder is not None:
                tasks.append((manifest, i, str(folder), "", ""))
            elif plugins.made_here(source.plugin_name):
                bar.set_postfix_str(source.name)
                phase = partial(_show_phase, bar, source.name)
                c = stages.prepare_source(manifest, i, plugin, phase)
                cache.keep("source", key, source.name, c, stages.save_source)
                tables[source.name] = held.keep(engine, c.records)
                c.records = c.records.schema.empty_table()
                c.rejected_lines = held.keep(engine, _rejections_apart(c))
                converted[i] = c
                bar.update()
                continue
            else:
                if plugin.gated and not source.path:
                    print(gated_notice(source.name, source.hub or plugin.hub), file=sys.stderr)
                root = str(cache.root) if cache.enabled and key else ""
                tasks.append((manifest, i, "", root, key))
            where.append(i)
        bar.set_postfix_str(f"{len(tasks)} sources on {engine.workers} workers")
        made = held.each_parts(engine, _held_source, tasks, 2)
        for i, ((table, lines), (c, unstored)) in zip(where, made):
            cache.told(unstored)
            c.plugin = plugins[manifest.sources[i].plugin_name]
            converted[i], tables[c.source.name] = c, table
            c.rejected_lines = lines
            bar.update()
    return converted, {c.source.name: tables[c.source.name] for c in converted}


def _held_source(
    manifest: Manifest, index: int, folder: str, root: str, key: str
) -> tuple[list[pa.Table], tuple[Converted, list]]:
    """A source's records and its rejected.jsonl lines, read from its cache entry
    (`folder`) or converted and filtered (and stored in the cache at `root` under `key`), in
    a worker; the Converted without its records, plugin or rejected rows for the driver, and
    what the cache could not store (for the driver to show: a worker's stderr does not reach
    the user)."""
    plugin = registry()[manifest.sources[index].plugin_name]
    cache = StageCache(Path(root), quiet=True)
    if folder:
        c = stages.load_source(Path(folder), manifest, index, plugin)
    else:
        c = stages.prepare_source(manifest, index, plugin)
        if root:
            cache.keep("source", key, c.source.name, c, stages.save_source)
    records, c.records, c.plugin = c.records, c.records.schema.empty_table(), None
    return [records, _rejections_apart(c)], (c, cache.unstored)


def _rejections_apart(c: Converted) -> pa.Table:
    """A source's rejected.jsonl lines, its Converted left with the first EXAMPLES
    rejections and the counts the report needs: the rejected rows stay where the records
    are (on Ray), and a worker writes rejected.jsonl."""
    lines = pa.table({"line": [_rejected_line(c, r) for r in c.rejections]}, _LINES)
    c.rejected_total, c.reasons = len(c.rejections), c.rejected_by_reason
    c.rejections = c.rejections[:EXAMPLES]
    return lines


_LINES = pa.schema([("line", pa.string())])


POOL_BYTES = 64 << 20  # local upstream bytes below which sources convert in the driver


def _worth_a_pool(manifest: Manifest, indices: list[int]) -> bool:
    """Whether converting these sources is worth starting worker processes (seconds): two
    or more, with POOL_BYTES of local files between them, or a hub dataset among them (its
    size is not known before it is read, and a hub source is seldom small)."""
    if len(indices) < 2:
        return False
    size = 0
    for i in indices:
        source = manifest.sources[i]
        if not source.path:
            return True
        for path in [source.path] if isinstance(source.path, str) else source.path:
            with suppress(OSError, ValueError):  # a glob: counted as nothing
                size += manifest.resolve(path).stat().st_size
    return size >= POOL_BYTES


def _load_task(task: tuple[Manifest, int]) -> Converted:
    """A source converted and filtered, in a worker; its plugin is left out of the result
    (functions travel badly), the driver puts its own back."""
    manifest, index = task
    plugin = registry()[manifest.sources[index].plugin_name]
    c = stages.prepare_source(manifest, index, plugin)
    c.plugin = None
    return c


def _show_phase(bar: Any, name: str, step: str) -> None:
    """The load bar moves by source; its postfix says which step a long one is in."""
    bar.set_postfix_str(f"{name}: {step}")


def gated_notice(name: str, hub: str) -> str:
    return (
        f"note: source {name!r}: {hub} is gated on the Hugging Face Hub: accept its terms at "
        f"https://huggingface.co/datasets/{hub} and log in (`hf auth login` or HF_TOKEN) "
        "before building"
    )


def _lengths(table: pa.Table, kind: str) -> dict[str, dict]:
    """The response length histogram of what a source gives the mixture."""
    if table.num_rows == 0:
        return {}
    from composer.filters import text_columns

    chars = text_columns(table, kind, words=False).response_chars
    return {"response_chars": histogram(chars, log=True)}


def _upstream(c: Converted) -> str:
    s = c.source
    if s.path:
        return s.path if isinstance(s.path, str) else ", ".join(s.path)
    hub = s.hub or c.plugin.hub
    return f"{hub}@{c.revision}" if c.revision else hub


def build(
    manifest: Manifest | str | os.PathLike,
    output_dir: str | os.PathLike | None = None,
    seed: int | None = None,
    progress: bool = False,
    locked: str | os.PathLike | None = None,
    cache: bool = True,
    workers: int | None = None,
    engine: Engine | str | None = None,
    address: str | None = None,
) -> BuildResult:
    """Build the mixture a manifest describes and write it to its output folder.

    `locked`: a `composer.lock` this build must match (see composer.lock): a changed input
    is a UserError before any data is read, and hub sources are read at the locked commits.
    `cache`: read and store the stages' results in the cache (composer.cache); a build with
    nothing changed copies its output from there. `workers`: worker processes (instead of
    the manifest's `workers`; default one a core). `engine`: what runs the stages' tasks
    (loading, rendering, the scan; see composer.engines): a name, `"local"` or `"ray"`
    (instead of the manifest's `engine`; `address`: the Ray cluster's), which the build
    makes and closes as it ends, or a caller's own engine (a `RayEngine`), which the caller
    closes. The output is the same whatever the engine and its number of workers.
    """
    manifest = prepare(manifest, seed)
    if workers is not None:
        manifest = manifest.model_copy(update={"workers": workers})
    if isinstance(engine, str):
        manifest, engine = manifest.model_copy(update={"engine": engine}), None
    if engine is None:
        check_engine(manifest.engine, address)  # before any data is read
    target = Path(output_dir).resolve() if output_dir else manifest.output_dir.resolve()
    check_target(target)
    formats = load_formats(manifest)
    if locked is not None:
        lock_inputs = lock.check(manifest, formats, locked)
        manifest = lock.pinned(manifest, lock_inputs)
    else:
        lock_inputs = lock.inputs(manifest, formats)
    stage_cache = StageCache(enabled=cache)
    stage_cache.sweep()
    timings: dict[str, float] = {}
    rows: dict[str, int] = {}
    # Hub data read at no known commit (offline, say) may change under the same key.
    key = stages.output_key(manifest, lock_inputs) if stages.pinned(lock_inputs) else ""
    with atomic_dir(target) as tmp:
        entry = stage_cache.get("output", key, manifest.name) if key else None
        if entry is not None:
            copy_entry(entry, tmp)
            stage_cache.log("hit", "output", key, manifest.name)
            report = json.loads((tmp / "report.json").read_text(encoding="utf-8"))
        else:
            stage_cache.log("miss", "output", key, manifest.name)
            own = engine is None
            engine = engine or make_engine(manifest.engine, manifest.workers, address)
            try:
                report = _compose(
                    manifest,
                    formats,
                    lock_inputs,
                    stage_cache,
                    tmp,
                    progress,
                    timings,
                    rows,
                    engine,
                )
            finally:  # failed or not: a caller's engine keeps nothing a next build waits for
                if own:
                    engine.close()
                else:
                    engine.release()
            if stage_cache.enabled and key:
                try:
                    with stage_cache.put("output", key, manifest.name) as folder:
                        copy_entry(tmp, folder)
                except OSError as exc:
                    stage_cache.cannot_store("output", manifest.name, exc)
    used = engine.name if engine is not None else ""
    return BuildResult(target, report, stage_cache.summary(), timings, rows, used)


@contextmanager
def _timed(timings: dict[str, float], stage: str):
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = round(timings.get(stage, 0) + time.perf_counter() - started, 3)


def _compose(
    manifest: Manifest,
    formats: list[PromptFormat],
    lock_inputs: dict[str, Any],
    stage_cache: StageCache,
    tmp: Path,
    progress: bool,
    timings: dict[str, float],
    rows: dict[str, int],
    engine: Engine,
) -> dict[str, Any]:
    """Every stage after the lock: load, dedup, decontaminate, pack, mix, sample, split,
    render; writes the output files into `tmp` and returns the report, and each stage's
    wall time into `timings`, the rows that went into it into `rows`."""
    with _timed(timings, "load"):
        if held.holds(engine):
            converted, tables = _load_held(manifest, progress, stage_cache, lock_inputs, engine)
        else:
            converted = load_sources(manifest, progress, stage_cache, lock_inputs, engine)
            tables = {c.source.name: c.records for c in converted}
    # From here each source's records are `tables[name]`: a table, or on an engine that
    # holds data a reference to one (composer.held); the driver keeps their id columns.
    for c in converted:
        c.records = c.records.schema.empty_table()
    rows["load"] = sum(c.rows_read for c in converted)
    with _timed(timings, "dedup"):
        kept, lost_to, records = _deduplicated(engine, converted, tables, progress)
        rows["dedup"] = sum(records.values())
    del tables
    held.trim(engine)
    near = _Near()
    if manifest.dedup.near is not None:
        rows["near dedup"] = sum(kept_rows for _, kept_rows in kept.values())
        with _timed(timings, "near dedup"):
            tables = {name: t for name, (t, _) in kept.items()}  # on Ray: references
            spec = manifest.dedup.near
            near = _Near(
                _near_result(manifest, spec, converted, tables, stage_cache, lock_inputs, engine)
            )
            del tables
            gone = {name: ~g for name, g in near.result.removed.items() if g.any()}
            kept.update(_filtered(engine, {name: kept[name][0] for name in gone}, gone))
    contamination = None
    if manifest.decontaminate is not None:
        rows["decontaminate"] = sum(kept_rows for _, kept_rows in kept.values())
        with _timed(timings, "decontaminate"):
            # Scanned where the records are (on Ray, on the workers: composer.scan_held).
            scanned = {name: t for name, (t, _) in kept.items()}
            contamination = decontaminate(
                scanned,
                {c.source.name: c.plugin.kind for c in converted},
                manifest.decontaminate,
                manifest.base_dir,
                progress,
                stage_cache,
                stages.scan_keys(manifest, lock_inputs, held.shas(engine, scanned))
                if stage_cache.enabled
                else None,
                manifest.workers,
                engine,
            )
            del scanned

    mixing_started = time.perf_counter()
    rows["pack, mix, sample, split"] = sum(kept_rows for _, kept_rows in kept.values())
    removing = contamination is not None and not manifest.decontaminate.report_only
    cleaned = held.each_source(
        engine,
        _cleaned,
        {
            c.source.name: (
                kept[c.source.name][0],
                ~contamination.removed[c.source.name] if removing else None,
                c.source.packing,
                manifest.seed,
                c.source.name,
            )
            for c in converted
        },
    )
    after_dedup = {name: kept_rows for name, (_, kept_rows) in kept.items()}
    del kept  # each step's tables go as the next step's are made (on Ray: the object store)
    mixture = (
        solve_mix(
            {name: clean_rows for name, (_, (clean_rows, _)) in cleaned.items()},
            {c.source.name: c.source.weight for c in converted},
            manifest.mix.total,
            manifest.mix.upsample,
        )
        if manifest.mix is not None
        else None
    )
    repeat = bool(mixture and manifest.mix.upsample)
    sampled = held.each_source(
        engine,
        _sampled,
        {
            c.source.name: (
                cleaned[c.source.name][0],
                Sample(count=mixture.counts[c.source.name]) if mixture else c.source.sample,
                manifest.seed,
                c.source.name,
                c.source.stratify,
                repeat,
                c.plugin.kind,
            )
            for c in converted
        },
    )
    cleaned_rows = {name: small for name, (_, small) in cleaned.items()}
    del cleaned
    funnels: dict[str, Funnel] = {}
    for c in converted:
        name = c.source.name
        kept_rows = after_dedup[name]
        clean_rows, packed = cleaned_rows[name]
        funnels[name] = Funnel(
            name=name,
            plugin=c.plugin.name,
            kind=c.plugin.kind,
            confidence=c.confidence,
            upstream=_upstream(c),
            rows_read=c.rows_read,
            rejected=c.rejected,
            linked=c.linked,
            left_out=c.left_out,
            read_warnings=c.warnings,
            records=c.made,
            filtered=c.made - records[name],
            filtered_by=c.filtered_by,
            duplicates=records[name] - kept_rows - near.count(name),
            near_duplicates=near.count(name),
            after_dedup=kept_rows,
            contaminated=kept_rows - (clean_rows + packed),
            contaminated_by=contamination.by_benchmark[name] if contamination else {},
            packed=packed,
            sampled=sampled[name][1].rows,
            sample_requested=None if mixture else sampled[name][1].requested,
            weight=c.source.weight,
            requested_share=round(mixture.requested[name], 6) if mixture else None,
            distributions=dict(c.distributions),
            rejected_by_reason=dict(sorted(c.rejected_by_reason.items())),
            rejected_examples=[
                {"where": r.where, "reason": r.reason, "detail": r.detail}
                for r in c.rejections[:EXAMPLES]
            ],
            lost_to=dict(sorted(lost_to[name].items())),
            near_lost_to=near.lost(name),
        )

    if mixture is not None:
        total = sum(s.rows for _, s in sampled.values()) or 1
        for name, f in funnels.items():
            f.achieved_share = round(sampled[name][1].rows / total, 6)
    for c in converted:
        funnels[c.source.name].distributions.update(sampled[c.source.name][1].lengths)
    chosen = _chosen(engine, manifest, converted, sampled)
    split_columns = held.each_source(
        engine,
        _split,
        {name: (t, *chosen[name], stage_cache.enabled) for name, (t, _) in sampled.items()},
    )
    finals = {
        name: _Final(sampled[name][0], column, *small)
        for name, (column, small) in split_columns.items()
    }
    del sampled, split_columns
    held.trim(engine)

    timings["pack, mix, sample, split"] = round(time.perf_counter() - mixing_started, 3)
    rows["render and write"] = rows["report"] = sum(f.rows for f in finals.values())

    splits = ["train"] + [s for s in ("validation", "test") if getattr(manifest.split, s)]
    kinds = [k for k in SCHEMAS if any(c.plugin.kind == k for c in converted)]
    writer = RowWriter(
        tmp,
        file_sets(kinds, [f.name for f in formats]),
        splits,
        manifest.output.jsonl,
        manifest.output.json_list,
    )
    with writer, _timed(timings, "render and write"), held.returning_pool(engine):
        tokens = _render_all(
            manifest,
            converted,
            finals,
            funnels,
            formats,
            writer,
            progress,
            stage_cache,
            lock_inputs,
            engine,
        )
        with tqdm(total=3, desc="write", unit="file", disable=not progress) as bar:
            outputs = {"records.parquet": _write_records(tmp, converted, finals, engine)}
            bar.update()
            outputs.update(writer.close())
            write_trainer_configs(tmp, outputs)
            bar.update()
            outputs["rejected.jsonl"] = _write_rejected(tmp, converted, engine)
            if contamination is not None:
                write_jsonl(contamination.audit, tmp / "contamination.jsonl")
                outputs["contamination.jsonl"] = len(contamination.audit)
            bar.update()
    report = build_report(
        manifest.name,
        manifest.seed,
        manifest.dedup.key,
        [f.name for f in manifest.formats],
        [funnels[c.source.name] for c in converted],
        outputs,
        contamination.stats if contamination else None,
        {"requested": manifest.mix.total, "achieved": mixture.total} if mixture else None,
    )
    if tokens:
        report["token_lengths"] = tokens
    if near.result is not None:
        report["near_duplicates"] = {
            **manifest.dedup.near.model_dump(mode="json"),
            "clusters": near.clusters,
        }
    with _timed(timings, "report"):
        write_report(report, tmp)
        (tmp / "report.html").write_text(render_html(report), encoding="utf-8")
        write_card(tmp, report, manifest)
        lock.write(lock_inputs, tmp)
    return report


def _deduplicated(
    engine: Engine, converted: list[Converted], tables: dict[str, Any], progress: bool
) -> tuple[dict[str, tuple[Any, int]], dict[str, Counter], dict[str, int]]:
    """Exact dedup: each source's (kept records, rows) in first_wins' order (kind, then
    priority), the rows each lost to each winner, each source's records before. Here from
    the id columns; where the engine keeps the tables, as a hash shuffle on its workers
    (composer.dedup.first_wins_held: the same masks, no id in the driver)."""
    if held.holds(engine):
        return first_wins_held(engine, converted, tables, progress)
    ids = {name: t.column("id") for name, t in tables.items()}
    masks, lost_to = first_wins(converted, ids, progress)
    return _filtered(engine, tables, masks), lost_to, {n: len(c) for n, c in ids.items()}


def _chosen(
    engine: Engine, manifest: Manifest, converted: list[Converted], sampled: dict[str, tuple]
) -> dict[str, tuple[Any, Any]]:
    """Each source's (test ids, validation ids): those of every source here, from the
    sampled ids; where the engine keeps the tables, each source's own, from counts gathered
    on the workers (composer.split.split_held: the same sides, no id in the driver)."""
    args = (
        manifest.split.validation,
        manifest.seed,
        manifest.split.test,
        {c.source.name: c.source.max_validation for c in converted},
    )
    if held.holds(engine):
        return split_held(engine, {name: t for name, (t, _) in sampled.items()}, *args)
    chosen = split_ids({name: t.column("id") for name, (t, _) in sampled.items()}, *args)
    return dict.fromkeys(sampled, chosen)


def _filtered(
    engine: Engine, tables: dict[str, Any], masks: dict[str, np.ndarray]
) -> dict[str, tuple[Any, int]]:
    """Each table of `masks` with the rows its mask keeps, and how many, in `masks`' order."""
    return held.each_source(
        engine, _filter, {name: (tables[name], mask) for name, mask in masks.items()}
    )


def _filter(table: pa.Table, mask: np.ndarray) -> tuple[pa.Table, int]:
    kept = table.filter(pa.array(mask))
    return kept, kept.num_rows


def _cleaned(
    table: pa.Table, keep: np.ndarray | None, packing: Any, seed: int, name: str
) -> tuple[pa.Table, tuple[int, int]]:
    """A source's records without the contaminated ones (`keep`: the others), its similar
    short items packed together (its `packing`); (rows, records packed away)."""
    if keep is not None:
        table = table.filter(pa.array(keep))
    if packing is None:
        return table, (table.num_rows, 0)
    from composer.packing import pack

    result = pack(table, packing, seed, name)
    return result.table, (result.table.num_rows, result.packed)


@dataclass
class _SampleInfo:
    """What the driver keeps of a source's sample: its size, its response lengths."""

    rows: int
    requested: int | None
    lengths: dict[str, dict]


def _sampled(
    table: pa.Table,
    spec: Sample | None,
    seed: int,
    name: str,
    stratify: str | None,
    repeat: bool,
    kind: str,
) -> tuple[pa.Table, _SampleInfo]:
    result = sample(table, spec, seed, name, stratify, repeat)
    t = result.table
    return t, _SampleInfo(t.num_rows, result.requested, _lengths(t, kind))


@dataclass
class _Final:
    """A source's final records: its sampled records and their `split` column, apart (on
    Ray, references: the records are not stored again for one more column), and what the
    driver knows of them: rows, rows by split, the sha256 a `render` cache key is made of."""

    records: Any
    split: Any
    rows: int
    by_split: dict[str, int]
    sha: str


def _split(
    table: pa.Table, test_ids: pa.Array, validation_ids: pa.Array, sha: bool
) -> tuple[pa.ChunkedArray, tuple[int, dict[str, int], str]]:
    """A source's `split` column (`sha`: and the sha256 of its records with it)."""
    final = with_split(table, test_ids, validation_ids)
    counts = pc.value_counts(final.column("split")).to_pylist()
    by_split = {c["values"]: c["counts"] for c in counts}
    return final.column("split"), (final.num_rows, by_split, stages.table_sha(final) if sha else "")


def _joined(records: pa.Table, split: pa.ChunkedArray) -> pa.Table:
    """A source's final records, its `split` column appended (as `with_split` did)."""
    return records.append_column("split", split)


POOL_ROWS = 50_000  # records below which rendering stays in the driver (workers take seconds)
# Workers below which rendering stays in the driver: the driver writes the files on threads
# of its own (a core's worth of zstd at 1M rows), and renders as fast as one worker while
# they write; measured at 1M rows on 2 cores, 23 s in the driver against 30 s on 2 workers.
RENDER_POOL_WORKERS = 3


@dataclass(frozen=True)
class _RenderTask:
    """A batch of one source's final records (with their split), to render unless its rows
    come from the `render` cache (`render=False`: only the untemplated shapes are made)."""

    index: int
    kind: str
    batch: pa.Table | None  # None: rows `start` to `start + rows` of a table on Ray
    render: bool
    start: int = 0
    rows: int = 0

    def __getstate__(self) -> dict:
        batch = None if self.batch is None else compact(self.batch)
        return {**self.__dict__, "batch": batch}


@dataclass
class _Rendered:
    """What a render task gives the driver: rows to write, and counts it merges."""

    shapes: dict[str, pa.Table]  # untemplated shape -> rows
    rows: pa.Table | None  # the formats' rendered rows (None: from the cache)
    counts: dict[str, dict[str, int]]  # split -> format -> rows, as Funnel.rows_out
    lengths: dict[str, Any]  # format -> token lengths (composer.token_lengths)


class _RenderState:
    """What a worker renders with: the formats (templates, tokenizers) loaded once."""

    def __init__(self, manifest: Manifest, formats: list[PromptFormat]):
        self.manifest = manifest
        self.formats = formats
        self.lengths = TokenLengths(formats)
        self.plans: dict[int, list[FormatPlan]] = {}

    def plans_of(self, index: int) -> list[FormatPlan]:
        if index not in self.plans:
            self.plans[index] = format_plans(self.manifest, index, self.formats)
        return self.plans[index]


def _render_setup(manifest: Manifest) -> _RenderState:
    return _RenderState(manifest, load_formats(manifest))


def _render_task(state: _RenderState, task: _RenderTask) -> _Rendered:
    """One batch in its shapes and, unless cached, rendered in every format."""
    manifest = state.manifest
    shapes = shape_tables(task.batch, task.kind, shape_chooser(manifest, task.index))
    if not task.render:
        return _Rendered(shapes, None, {}, {})
    last_only = manifest.render.turns == "last"
    plans = state.plans_of(task.index)
    rendered = render_table(task.batch, task.kind, plans, last_only, manifest.seed)
    lengths = state.lengths.measure(task.kind, rendered)
    return _Rendered(shapes, rendered, row_counts(rendered), lengths)


def _render_held(
    state: _RenderState, records: pa.Table, split: pa.ChunkedArray, task: _RenderTask
) -> tuple[None, _Rendered]:
    """`_render_task` on Ray: the batch is a slice of the source's final records, read on
    the worker."""
    batch = _joined(records, split).slice(task.start, task.rows)
    return None, _render_task(state, replace(task, batch=batch))


def _render_all(
    manifest: Manifest,
    converted: list[Converted],
    finals: dict[str, _Final],
    funnels: dict[str, Funnel],
    formats: list[PromptFormat],
    writer: RowWriter,
    progress: bool,
    stage_cache: StageCache,
    lock_inputs: dict[str, Any],
    engine: Engine | None = None,
) -> dict[str, Any]:
    """Render every source in batches into `writer`, counting rows per split and format,
    and write each source's untemplated shapes (composer.shapes).

    Each batch of RENDER_BATCH records is a task (`_render_task`), run on `engine`'s
    workers when there are POOL_ROWS records or more and RENDER_POOL_WORKERS workers, else
    here; the driver writes the results in task order (so the files' rows and row groups
    are the same for any number of workers) and merges their counts. A source's rendered
    rows are a `render` cache entry, stored batch by batch as they are written: a source
    whose final records and formats did not change is read, not rendered (its batches'
    tasks make only the shapes). Returns the token lengths of the formats that render with
    a tokenizer.
    """
    total = sum(f.rows for f in finals.values())
    lengths = TokenLengths(formats)
    keys: dict[int, str] = {}
    entries: dict[int, Path | None] = {}
    tasks: list[_RenderTask] = []
    holding = held.holds(engine)
    for i, c in enumerate(converted):
        name, kind, final = c.source.name, c.plugin.kind, finals[c.source.name]
        keys[i] = key = stages.render_key(manifest, i, kind, final.sha, lock_inputs)
        entries[i] = stage_cache.get("render", key, name) if stage_cache.enabled else None
        stage_cache.log("hit" if entries[i] else "miss", "render", key, name)
        table = None if holding else _joined(final.records, final.split)
        for start in range(0, final.rows, RENDER_BATCH):
            size = min(RENDER_BATCH, final.rows - start)
            batch = None if holding else table.slice(start, RENDER_BATCH)
            tasks.append(_RenderTask(i, kind, batch, not entries[i], start, size))
    pooled = (
        engine is not None
        and engine.workers >= RENDER_POOL_WORKERS
        and total >= POOL_ROWS
        and len(tasks) > 1
    )
    if holding:  # the records are on the workers: so is the rendering, a wave a worker
        wave, setup = engine.workers, partial(_render_setup, manifest)
        held_run = partial(engine.map_held, _render_held, setup=setup)

        def run(wave_tasks: list[_RenderTask]) -> list[_Rendered]:
            finals_of = [finals[converted[t.index].source.name] for t in wave_tasks]
            pairs = held_run([(f.records, f.split, t) for f, t in zip(finals_of, wave_tasks)])
            return [result for _, result in pairs]

        pooled = True
    elif pooled:
        wave, setup = 2 * engine.workers, partial(_render_setup, manifest)
        run = partial(engine.map, _render_task, setup=setup)
    else:
        wave, state = 1, _RenderState(manifest, formats)
        run = partial(map, partial(_render_task, state))
    left = Counter(t.index for t in tasks)  # tasks still to write, per source
    stores: dict[int, stages.RowStore] = {}
    stack = ExitStack()  # a failed build leaves no half `render` entry

    def store(i: int) -> stages.RowStore:
        if i not in stores:
            c = converted[i]
            made = stages.RowStore(stage_cache, keys[i], c.source.name, SCHEMAS[c.plugin.kind])
            stores[i] = stack.enter_context(made)
        return stores[i]

    def finish(i: int) -> None:
        """A source's last batch is written: its cached rows too, its entry stored."""
        c = converted[i]
        kind, funnel = c.plugin.kind, funnels[c.source.name]
        if entries[i] is not None:
            for batch in stages.read_rows(entries[i]):
                _write_rendered(writer, kind, batch)
                merge_counts(funnel.rows_out, row_counts(batch))
                lengths.extend(lengths.measure(kind, batch))
        else:
            store(i).__exit__(None, None, None)
        by_split = finals[c.source.name].by_split
        funnel.train = by_split.get("train", 0)
        funnel.validation = by_split.get("validation", 0)
        funnel.test = by_split.get("test", 0)

    with stack, tqdm(total=total, desc="render", unit="item", disable=not progress) as bar:
        for i in range(len(converted)):
            if not left[i]:  # a source with no records: its (empty) entry, its counts
                finish(i)
        waves = [tasks[start : start + wave] for start in range(0, len(tasks), wave)]
        for batch_tasks, results in _ahead(run, waves) if pooled else _each(run, waves):
            for task, result in zip(batch_tasks, results):
                for shape, rows in result.shapes.items():
                    writer.write_table(SHAPE_FOLDER[shape], rows)
                if result.rows is not None:
                    store(task.index).write(result.rows)
                    _write_rendered(writer, task.kind, result.rows)
                    funnel = funnels[converted[task.index].source.name]
                    merge_counts(funnel.rows_out, result.counts)
                    lengths.extend(result.lengths)
                bar.update(task.rows)
                left[task.index] -= 1
                if not left[task.index]:
                    finish(task.index)
    return lengths.summary()


def _each(run: Any, waves: list[list]) -> Iterator[tuple[list, list]]:
    for tasks in waves:
        yield tasks, run(tasks)


def _ahead(run: Any, waves: list[list]) -> Iterator[tuple[list, list]]:
    """Each wave of tasks with its results, the next wave running on the workers (from a
    thread of the driver's) while the driver writes this one's."""
    with ThreadPoolExecutor(1) as thread:
        pending = thread.submit(run, waves[0]) if waves else None
        for k, tasks in enumerate(waves):
            results = pending.result()
            pending = thread.submit(run, waves[k + 1]) if k + 1 < len(waves) else None
            yield tasks, results


def _write_rendered(writer: RowWriter, kind: str, rows: pa.Table) -> None:
    if kind == "text":
        writer.write_table(kind, rows)
    else:
        writer.write_rendered(kind, rows)


def row_counts(rendered: pa.Table) -> dict[str, dict[str, int]]:
    """Rows by split and format, in order of first appearance (as the report lists them)."""
    if not rendered.num_rows:
        return {}
    splits = rendered.column("split").combine_chunks().dictionary_encode()
    if "format" in rendered.column_names:
        formats = rendered.column("format").combine_chunks().dictionary_encode()
        names, codes = formats.dictionary.to_pylist(), formats.indices.to_numpy()
    else:
        names, codes = ["text"], np.zeros(rendered.num_rows, dtype=np.int64)
    pairs = splits.indices.to_numpy().astype(np.int64) * len(names) + codes
    values, first, counts = np.unique(pairs, return_index=True, return_counts=True)
    split_names = splits.dictionary.to_pylist()
    out: dict[str, dict[str, int]] = {}
    for k in np.argsort(first, kind="stable"):
        split, fmt = divmod(int(values[k]), len(names))
        out.setdefault(split_names[split], {})[names[fmt]] = int(counts[k])
    return out


def merge_counts(into: dict[str, dict[str, int]], counts: dict[str, dict[str, int]]) -> None:
    """Add a batch's `row_counts` to a source's (keeping the order of first appearance)."""
    for split, by_format in counts.items():
        mine = into.setdefault(split, {})
        for fmt, n in by_format.items():
            mine[fmt] = mine.get(fmt, 0) + n


def file_sets(kinds: list[str], formats: list[str]) -> dict[str, pa.Schema]:
    """Every file set a build writes (see composer.output.RowWriter), in the card's order."""
    sets: dict[str, pa.Schema] = {}
    for kind in kinds:
        for shape in SHAPES_OF[kind]:
            sets[SHAPE_FOLDER[shape]] = SHAPE_SCHEMAS[shape]
    if "text" in kinds:
        sets["text"] = SCHEMAS["text"]
    for fmt in formats:
        for kind in ("sft", "dpo"):
            if kind in kinds:
                schema = SCHEMAS[kind]
                sets[f"formats/{fmt}/{kind}"] = schema.remove(schema.get_field_index("format"))
    return sets


def shape_chooser(manifest: Manifest, index: int) -> SystemPromptChooser:
    """The system prompts of a source's untemplated shapes: its policy, or the manifest's."""
    policy = manifest.sources[index].system_prompt or manifest.system_prompt
    return SystemPromptChooser.build(policy, manifest.seed, SHAPE_NAME, None)


class _Near:
    """What near dedup removed, per source (nothing when the manifest asks for none)."""

    def __init__(self, result=None):
        self.result = result

    def count(self, name: str) -> int:
        return int(self.result.removed[name].sum()) if self.result else 0

    def lost(self, name: str) -> dict[str, int]:
        return dict(sorted(self.result.lost_to[name].items())) if self.result else {}

    @property
    def clusters(self) -> list[dict]:
        return self.result.clusters if self.result else []


def scan_near_duplicates(manifest: Manifest | str | os.PathLike, progress: bool = False):
    """Near dedup alone, removing nothing: what a build would remove, and the similarities."""
    manifest = prepare(manifest)
    stage_cache = StageCache(enabled=True)
    lock_inputs = lock.inputs(manifest, load_formats(manifest))
    converted = load_sources(manifest, progress, stage_cache, lock_inputs)
    spec = manifest.dedup.near or NearDedup()
    kept = dedup(converted).kept
    return _near_result(manifest, spec, converted, kept, stage_cache, lock_inputs)


def _near_result(
    manifest: Manifest,
    spec: NearDedup,
    converted: list[Converted],
    kept: dict[str, Any],
    stage_cache: StageCache,
    lock_inputs: dict[str, Any],
    engine: Engine | None = None,
) -> NearResult:
    """Near dedup's result for `kept` (on Ray, references: the tables' hashes for the key,
    and near dedup itself, are computed where they are), from the `near` cache or computed
    and stored (on the manifest's `workers` threads: the result is the same whatever the
    number, so not in the key)."""
    key = ""
    if stage_cache.enabled:
        key = stages.near_key(manifest, lock_inputs, converted, held.shas(engine, kept), spec)
    load = partial(NearResult.load, similarities=not held.holds(engine))
    result = stage_cache.find("near", key, manifest.name, load)
    if result is None:
        workers = manifest.workers or default_workers()
        seed = manifest.seed
        result = near_dedup(kept, converted, spec, manifest.dedup.key, seed, workers, engine)
        store_near(engine, result, stage_cache, key, manifest.name)
    return result


def scan_contamination(
    manifest: Manifest | str | os.PathLike, progress: bool = False, cache: bool = True
):
    """Decontamination alone, removing nothing: what a build would remove, and the scores."""
    manifest = prepare(manifest)
    if manifest.decontaminate is None:
        raise UserError(f"{manifest.path}: the manifest has no `decontaminate` section")
    stage_cache = StageCache(enabled=cache)
    lock_inputs = lock.inputs(manifest, load_formats(manifest))
    converted = load_sources(manifest, progress, stage_cache, lock_inputs)
    kinds = {c.source.name: c.plugin.kind for c in converted}
    config = manifest.decontaminate.model_copy(update={"report_only": True})
    kept = dedup(converted).kept
    return decontaminate(kept, kinds, config, manifest.base_dir, progress, stage_cache)


def _write_records(
    folder: Path, converted: list[Converted], finals: dict[str, _Final], engine: Engine
) -> int:
    """records.parquet: every source's final records, by priority (written by a worker on
    Ray, which holds them; the output folder is shared storage there)."""
    parts = [
        p
        for c in priority(converted)
        for p in (finals[c.source.name].records, finals[c.source.name].split)
    ]
    [(_, rows)] = held.each(engine, _records_file, [(str(folder / "records.parquet"), *parts)])
    return rows


def _records_file(path: str, *parts: Any) -> tuple[None, int]:
    """records.parquet from each source's records and split column, in turn."""
    records = pa.concat_tables([_joined(*parts[k : k + 2]) for k in range(0, len(parts), 2)])
    write_table(records, Path(path))
    return None, records.num_rows


def _write_rejected(folder: Path, converted: list[Converted], engine: Engine) -> int:
    """rejected.jsonl: every source's rejected rows, in manifest order (written by a worker
    on Ray, where they stayed; see `_rejections_apart`)."""
    path = folder / "rejected.jsonl"
    if held.holds(engine):
        lines = [c.rejected_lines for c in converted]
        [(_, rows)] = held.each(engine, _rejected_file, [(str(path), *lines)])
        return rows
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(_rejected_line(c, r) + "\n" for c in converted for r in c.rejections)
    return sum(len(c.rejections) for c in converted)


def _rejected_line(c: Converted, r: Any) -> str:
    row = {
        "source": c.source.name,
        "where": r.where,
        "index": r.index,
        "reason": r.reason,
        "detail": r.detail,
        "row": r.row,
    }
    return json.dumps(row, ensure_ascii=False, sort_keys=True, default=str)


def _rejected_file(path: str, *lines: pa.Table) -> tuple[None, int]:
    """rejected.jsonl from each source's lines, in turn."""
    rows = 0
    with open(path, "w", encoding="utf-8") as f:
        for table in lines:
            for chunk in table.column("line").chunks:
                f.writelines(line + "\n" for line in chunk.to_pylist())
            rows += table.num_rows
    return None, rows
