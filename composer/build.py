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

from composer.convert import Converted, convert_source
from composer.decontaminate import decontaminate
from composer.dedup import dedup, priority
from composer.errors import ManifestError, UserError, did_you_mean
from composer.formats import PromptFormat, available_formats, template_path
from composer.manifest import Manifest, check, key_path, load_manifest
from composer.output import RowWriter, atomic_dir, check_target, write_jsonl, write_table
from composer.plugins import registry
from composer.render import SCHEMAS, FormatPlan, render_source
from composer.report import EXAMPLES, Funnel, build_report, write_report
from composer.sample import sample
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
) -> BuildResult:
    """Build the mixture a manifest describes and write it to its output folder."""
    manifest = prepare(manifest, seed)
    target = Path(output_dir).resolve() if output_dir else manifest.output_dir.resolve()
    check_target(target)
    formats = load_formats(manifest)
    converted = load_sources(manifest, progress)
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
    for c in converted:
        name = c.source.name
        kept = deduped.kept[name]
        clean = kept
        if contamination is not None and not manifest.decontaminate.report_only:
            clean = kept.filter(pa.array(~contamination.removed[name]))
        sampled = sample(clean, c.source.sample, manifest.seed, name)
        tables[name] = sampled.table
        funnels[name] = Funnel(
            name=name,
            plugin=c.plugin.name,
            kind=c.plugin.kind,
            confidence=c.confidence,
            upstream=_upstream(c),
            rows_read=c.rows_read,
            rejected=len(c.rejections),
            records=c.records.num_rows,
            duplicates=c.records.num_rows - kept.num_rows,
            after_dedup=kept.num_rows,
            contaminated=kept.num_rows - clean.num_rows,
            contaminated_by=contamination.by_benchmark[name] if contamination else {},
            sampled=sampled.table.num_rows,
            sample_requested=sampled.requested,
            rejected_by_reason=dict(sorted(c.rejected_by_reason.items())),
            rejected_examples=[
                {"where": r.where, "reason": r.reason, "detail": r.detail}
                for r in c.rejections[:EXAMPLES]
            ],
            lost_to=dict(sorted(deduped.lost_to[name].items())),
        )

    tables = split_sources(tables, manifest.split.validation, manifest.seed)

    splits = ["train", "validation"] if manifest.split.validation else ["train"]
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
        )
        write_report(report, tmp)
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
            funnel.train = int(pc.sum(pc.equal(table.column("split"), "train")).as_py() or 0)
            funnel.validation = funnel.sampled - funnel.train


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
