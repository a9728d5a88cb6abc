"""The pipeline: load and convert each source, dedup, sample, split, render, write.

`build(manifest)` is the library entry point; the CLI is a thin layer over it. Each stage is
a function in its own module; this one only chains them and keeps the funnel counts.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from tqdm.auto import tqdm

from composer import lock
from composer.card import write_card
from composer.convert import Converted, convert_source
from composer.decontaminate import decontaminate
from composer.dedup import dedup, priority
from composer.errors import ManifestError, UserError, did_you_mean
from composer.formats import PromptFormat, available_formats, template_path
from composer.html_report import render_html
from composer.manifest import Filters, Manifest, Sample, check, key_path, load_manifest
from composer.output import RowWriter, atomic_dir, check_target, write_jsonl, write_table
from composer.plugins import registry
from composer.render import SCHEMAS, FormatPlan, render_source
from composer.report import EXAMPLES, Funnel, build_report, histogram, write_report
from composer.sample import sample, solve_mix
from composer.split import split_sources
from composer.system_prompt import SystemPromptChooser

RENDER_BATCH = 20_000  # records rendered and written at a time: bounds memory on big builds


@dataclass
class BuildResult:
    output_dir: Path
    report: dict[str, Any]

    @property
    def totals(self) -> dict[str, Any]:
        return self.report["totals"]


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
    found = available_formats(manifest.template_dirs())
    formats = []
    for spec in manifest.formats:
        template = spec.template or spec.name
        path = template_path(template, found, manifest.base_dir)
        if path is None:
            raise UserError(f"unknown format {template!r}{did_you_mean(template, found)}")
        formats.append(PromptFormat.load(spec.name, path, spec.vars))
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


def load_sources(manifest: Manifest, progress: bool = False) -> list[Converted]:
    plugins = registry()
    converted = []
    with tqdm(manifest.sources, desc="load", unit="source", disable=not progress) as bar:
        for i, source in enumerate(bar):
            plugin = plugins[source.plugin_name]
            if plugin.gated and not source.path:
                print(gated_notice(source.name, source.hub or plugin.hub), file=sys.stderr)
            converted.append(convert_source(manifest, i, source, plugin))
    return converted


def gated_notice(name: str, hub: str) -> str:
    return (
        f"note: source {name!r}: {hub} is gated on the Hugging Face Hub: accept its terms at "
        f"https://huggingface.co/datasets/{hub} and log in (`hf auth login` or HF_TOKEN) "
        "before building"
    )


def filter_sources(manifest: Manifest, converted: list[Converted]) -> dict[str, Any]:
    """Apply the manifest's and each source's filters to its records, in place; what each
    filter dropped (and the scores it saw) by source."""
    results = {}
    for c in converted:
        if manifest.filters is None and c.source.filters is None:
            continue
        from composer.filters import apply_filters

        spec = (manifest.filters or Filters()).merged(c.source.filters)
        result = apply_filters(c.records, c.plugin.kind, spec, manifest.base_dir)
        c.records = c.records.filter(pa.array(result.keep))
        results[c.source.name] = result
    return results


def _packed(manifest: Manifest, c: Converted, table: pa.Table) -> tuple[pa.Table, int]:
    """The source's records with similar short items packed together (its `packing`)."""
    if c.source.packing is None:
        return table, 0
    from composer.packing import pack

    result = pack(table, c.source.packing, manifest.seed, c.source.name)
    return result.table, result.packed


def _distributions(result) -> dict[str, dict]:
    """Score histograms with their thresholds, for the report's plots."""
    if result is None:
        return {}
    out = {}
    for scorer, values in result.scores.items():
        bounds = result.thresholds.get(scorer, {})
        out[f"score:{scorer}"] = {
            **histogram(values),
            "min": bounds.get("min"),
            "max": bounds.get("max"),
        }
    return out


def _lengths(table: pa.Table, kind: str) -> dict[str, dict]:
    """The response length histogram of what a source gives the mixture."""
    if table.num_rows == 0:
        return {}
    from composer.filters import text_columns

    return {"response_chars": histogram(text_columns(table, kind).response_chars, log=True)}


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
) -> BuildResult:
    """Build the mixture a manifest describes and write it to its output folder.

    `locked`: a `composer.lock` this build must match (see composer.lock): a changed input
    is a UserError before any data is read, and hub sources are read at the locked commits.
    """
    manifest = prepare(manifest, seed)
    target = Path(output_dir).resolve() if output_dir else manifest.output_dir.resolve()
    check_target(target)
    formats = load_formats(manifest)
    if locked is not None:
        lock_inputs = lock.check(manifest, formats, locked)
        manifest = lock.pinned(manifest, lock_inputs)
    else:
        lock_inputs = lock.inputs(manifest, formats)
    converted = load_sources(manifest, progress)
    records_made = {c.source.name: c.records.num_rows for c in converted}
    filtered = filter_sources(manifest, converted)
    deduped = dedup(converted)
    contamination = None
    if manifest.decontaminate is not None:
        contamination = decontaminate(
            deduped.kept,
            {c.source.name: c.plugin.kind for c in converted},
            manifest.decontaminate,
            manifest.base_dir,
            progress,
        )

    funnels: dict[str, Funnel] = {}
    tables: dict[str, pa.Table] = {}
    cleaned: dict[str, pa.Table] = {}
    packed: dict[str, int] = {}
    for c in converted:
        name = c.source.name
        clean = deduped.kept[name]
        if contamination is not None and not manifest.decontaminate.report_only:
            clean = clean.filter(pa.array(~contamination.removed[name]))
        cleaned[name], packed[name] = _packed(manifest, c, clean)
    mixture = (
        solve_mix(
            {name: t.num_rows for name, t in cleaned.items()},
            {c.source.name: c.source.weight for c in converted},
            manifest.mix.total,
            manifest.mix.upsample,
        )
        if manifest.mix is not None
        else None
    )
    for c in converted:
        name = c.source.name
        kept, clean = deduped.kept[name], cleaned[name]
        spec = Sample(count=mixture.counts[name]) if mixture else c.source.sample
        repeat = bool(mixture and manifest.mix.upsample)
        sampled = sample(clean, spec, manifest.seed, name, c.source.stratify, repeat)
        tables[name] = sampled.table
        funnels[name] = Funnel(
            name=name,
            plugin=c.plugin.name,
            kind=c.plugin.kind,
            confidence=c.confidence,
            upstream=_upstream(c),
            rows_read=c.rows_read,
            rejected=len(c.rejections),
            records=records_made[name],
            filtered=records_made[name] - c.records.num_rows,
            filtered_by=filtered[name].dropped if name in filtered else {},
            duplicates=c.records.num_rows - kept.num_rows,
            after_dedup=kept.num_rows,
            contaminated=kept.num_rows - (clean.num_rows + packed[name]),
            contaminated_by=contamination.by_benchmark[name] if contamination else {},
            packed=packed[name],
            sampled=sampled.table.num_rows,
            sample_requested=None if mixture else sampled.requested,
            weight=c.source.weight,
            requested_share=round(mixture.requested[name], 6) if mixture else None,
            distributions=_distributions(filtered.get(name)),
            rejected_by_reason=dict(sorted(c.rejected_by_reason.items())),
            rejected_examples=[
                {"where": r.where, "reason": r.reason, "detail": r.detail}
                for r in c.rejections[:EXAMPLES]
            ],
            lost_to=dict(sorted(deduped.lost_to[name].items())),
        )

    if mixture is not None:
        total = sum(t.num_rows for t in tables.values()) or 1
        for name, f in funnels.items():
            f.achieved_share = round(tables[name].num_rows / total, 6)
    for c in converted:
        funnels[c.source.name].distributions.update(_lengths(tables[c.source.name], c.plugin.kind))
    tables = split_sources(
        tables,
        manifest.split.validation,
        manifest.seed,
        manifest.split.test,
        {c.source.name: c.source.max_validation for c in converted},
    )

    splits = ["train"] + [s for s in ("validation", "test") if getattr(manifest.split, s)]
    kinds = [k for k in SCHEMAS if any(c.plugin.kind == k for c in converted)]
    with atomic_dir(target) as tmp:
        writer = RowWriter(
            tmp, SCHEMAS, kinds, splits, manifest.output.jsonl, manifest.output.json_list
        )
        _render_all(manifest, converted, tables, funnels, formats, writer, progress)
        outputs = {"records.parquet": _write_records(tmp, converted, tables), **writer.close()}
        outputs["rejected.jsonl"] = _write_rejected(tmp, converted)
        if contamination is not None:
            write_jsonl(contamination.audit, tmp / "contamination.jsonl")
            outputs["contamination.jsonl"] = len(contamination.audit)
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
        write_report(report, tmp)
        (tmp / "report.html").write_text(render_html(report), encoding="utf-8")
        write_card(tmp, report, manifest)
        lock.write(lock_inputs, tmp)
    return BuildResult(output_dir=target, report=report)


def _render_all(
    manifest: Manifest,
    converted: list[Converted],
    tables: dict[str, pa.Table],
    funnels: dict[str, Funnel],
    formats: list[PromptFormat],
    writer: RowWriter,
    progress: bool,
) -> None:
    """Render every source in batches into `writer`, counting rows per split and format."""
    last_only = manifest.render.turns == "last"
    total = sum(t.num_rows for t in tables.values())
    with tqdm(total=total, desc="render", unit="item", disable=not progress) as bar:
        for i, c in enumerate(converted):
            name, kind = c.source.name, c.plugin.kind
            table, funnel = tables[name], funnels[name]
            plans = format_plans(manifest, i, formats)
            for start in range(0, table.num_rows, RENDER_BATCH):
                batch = table.slice(start, RENDER_BATCH)
                rows = render_source(batch, kind, plans, last_only, manifest.seed)
                writer.write(kind, rows)
                for split, fmt in zip(rows["split"], rows.get("format") or repeat("text")):
                    by_format = funnel.rows_out.setdefault(split, {})
                    by_format[fmt] = by_format.get(fmt, 0) + 1
                bar.update(batch.num_rows)
            counts = pc.value_counts(table.column("split")).to_pylist()
            by_split = {c["values"]: c["counts"] for c in counts}
            funnel.train = by_split.get("train", 0)
            funnel.validation = by_split.get("validation", 0)
            funnel.test = by_split.get("test", 0)


def scan_contamination(manifest: Manifest | str | os.PathLike, progress: bool = False):
    """Decontamination alone, removing nothing: what a build would remove, and the scores."""
    manifest = prepare(manifest)
    if manifest.decontaminate is None:
        raise UserError(f"{manifest.path}: the manifest has no `decontaminate` section")
    converted = load_sources(manifest, progress)
    kinds = {c.source.name: c.plugin.kind for c in converted}
    config = manifest.decontaminate.model_copy(update={"report_only": True})
    return decontaminate(dedup(converted).kept, kinds, config, manifest.base_dir, progress)


def _write_records(folder: Path, converted: list[Converted], tables: dict[str, pa.Table]) -> int:
    records = pa.concat_tables([tables[c.source.name] for c in priority(converted)])
    write_table(records, folder / "records.parquet")
    return records.num_rows


def _write_rejected(folder: Path, converted: list[Converted]) -> int:
    rejected = [
        {
            "source": c.source.name,
            "where": r.where,
            "reason": r.reason,
            "detail": r.detail,
            "row": r.row,
        }
        for c in converted
        for r in c.rejections
    ]
    write_jsonl(rejected, folder / "rejected.jsonl")
    return len(rejected)
