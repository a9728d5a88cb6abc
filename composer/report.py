"""The build report: a funnel per source that accounts for every row, as JSON and Markdown.

Built only from the counts the stages return. It holds no timestamps or timings, so two
builds of one manifest give byte-identical reports.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

EXAMPLES = 5


STAGE_LABELS = {
    "rows_read": "read",
    "rejected": "rejected",
    "records": "records",
    "filtered": "filtered",
    "duplicates": "duplicates",
    "near_duplicates": "near duplicates",
    "after_dedup": "after dedup",
    "contaminated": "contaminated",
    "sampled": "sampled",
    "train": "train",
    "validation": "validation",
    "test": "test",
}

STAGES = tuple(STAGE_LABELS)


@dataclass
class Funnel:
    """One source's way through the build."""

    name: str
    plugin: str
    kind: str
    confidence: float
    upstream: str
    rows_read: int = 0
    rejected: int = 0
    linked: int = 0  # rows that became turns inside other rows' records (message trees)
    left_out: int = 0  # rows the plugin takes nothing from by design (a selection, say)
    records: int = 0
    filtered: int = 0  # records dropped by filters (before dedup)
    duplicates: int = 0
    near_duplicates: int = 0  # removed by near dedup (composer.near_dedup), after exact
    after_dedup: int = 0
    contaminated: int = 0
    sampled: int = 0
    train: int = 0
    validation: int = 0
    test: int = 0
    sample_requested: int | None = None
    filtered_by: dict[str, int] = field(default_factory=dict)  # filter -> records dropped
    packed: int = 0  # items merged into others by packing
    weight: float | None = None
    requested_share: float | None = None  # of the mixture (weights), when `mix` is set
    achieved_share: float | None = None
    # Histograms for the report's plots: {"response_chars": {"edges": [...], "counts":
    # [...]}, "score:<scorer>": {"edges", "counts", "min", "max"}} (min/max: thresholds).
    distributions: dict[str, dict[str, Any]] = field(default_factory=dict)
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    rejected_examples: list[dict[str, str]] = field(default_factory=list)
    lost_to: dict[str, int] = field(default_factory=dict)
    near_lost_to: dict[str, int] = field(default_factory=dict)  # winning source -> records
    contaminated_by: dict[str, int] = field(default_factory=dict)  # benchmark -> records
    rows_out: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> format -> n
    read_warnings: list[str] = field(default_factory=list)  # a file reached twice, say


def build_report(
    name: str,
    seed: int,
    dedup_key: str,
    formats: list[str],
    funnels: list[Funnel],
    outputs: dict[str, int],
    decontamination: dict[str, int] | None = None,
    mix: dict[str, int] | None = None,
) -> dict[str, Any]:
    totals: dict[str, Any] = {k: sum(getattr(f, k) for f in funnels) for k in STAGES}
    totals["linked"] = sum(f.linked for f in funnels)
    totals["left_out"] = sum(f.left_out for f in funnels)
    totals["packed"] = sum(f.packed for f in funnels)
    rows_out: Counter = Counter()
    for f in funnels:
        for split, by_format in f.rows_out.items():
            for fmt, n in by_format.items():
                rows_out[f"{split}/{fmt}"] += n
    totals["rows_out"] = dict(sorted(rows_out.items()))
    notes = warnings(funnels)
    empty = [f.name for f in funnels if f.requested_share and not f.sampled]
    if mix and empty:
        notes.append(
            f"mix: {', '.join(empty)} had no rows left after filters, dedup and "
            "decontamination, and gave none of its share"
        )
    elif mix and mix["achieved"] < mix["requested"]:
        scarce = min(
            (f for f in funnels if f.requested_share),
            key=lambda f: (f.after_dedup - f.contaminated) / f.requested_share,
        )
        notes.append(
            f"mix: asked for {mix['requested']:,} rows; the sources left after filters, "
            f"dedup and decontamination allow {mix['achieved']:,} at the requested shares "
            f"({scarce.name} is the scarcest; `mix: {{upsample: true}}` repeats rows instead)"
        )
    return {
        "warnings": notes,
        "name": name,
        "seed": seed,
        "dedup_key": dedup_key,
        "formats": formats,
        "sources": [asdict(f) for f in funnels],
        "totals": totals,
        "outputs": outputs,
        **({"decontamination": decontamination} if decontamination is not None else {}),
        **({"mix": mix} if mix is not None else {}),
    }


def histogram(values, bins: int = 30, log: bool = False, weights=None) -> dict[str, list]:
    """Bin edges and counts of `values` (log-spaced edges for lengths), for a plot;
    `weights`: how many times each value counts (whole numbers, none zero)."""
    import numpy as np

    values = np.asarray(values, dtype=float)
    finite = np.isfinite(values)
    values = values[finite]
    if weights is not None:
        weights = np.asarray(weights, dtype=np.int64)[finite]
    if not len(values):
        return {"edges": [], "counts": []}
    low, high = float(values.min()), float(values.max())
    if high == low:
        high = low + 1
    if log and low > 0:
        edges = np.geomspace(low, high, bins + 1)
    else:
        edges = np.linspace(low, high, bins + 1)
    counts, edges = np.histogram(values, bins=edges, weights=weights)
    counts = counts.astype(np.int64)
    return {"edges": [round(float(e), 6) for e in edges], "counts": counts.tolist()}


def warnings(funnels: list[Funnel]) -> list[str]:
    """What a person should look at: sources that gave nothing, or rejected much of their data."""
    out = []
    for f in funnels:
        out += [f"{f.name}: {w}" for w in f.read_warnings]
        if f.rows_read and not f.records:
            out.append(f"{f.name}: no usable rows out of {f.rows_read:,} (see rejected.jsonl)")
        elif f.rows_read and f.rejected / f.rows_read > 0.1:
            out.append(
                f"{f.name}: {f.rejected:,} of {f.rows_read:,} rows rejected "
                f"({f.rejected / f.rows_read:.0%}); see rejected.jsonl"
            )
    return out


def write_report(report: dict[str, Any], folder: Path) -> None:
    text = json.dumps(report, ensure_ascii=False, indent=2, sort_keys=False)
    (folder / "report.json").write_text(text + "\n", encoding="utf-8")
    (folder / "report.md").write_text(markdown(report), encoding="utf-8")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += [
        "| " + " | ".join(f"{v:,}" if isinstance(v, int) else str(v) for v in row) + " |"
        for row in rows
    ]
    return lines


def composition(sources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each source's share of the final mixture, with the requested share when mixed by
    weight: the numbers behind "orca-chat: 100.00% (188,842)"."""
    total = sum(s["sampled"] for s in sources) or 1
    return [
        {
            "name": s["name"],
            "rows": s["sampled"],
            "share": s["sampled"] / total,
            "requested": s.get("requested_share"),
        }
        for s in sources
    ]


def _composition(sources: list[dict[str, Any]]) -> list[str]:
    parts = composition(sources)
    lines = ["## Composition", ""]
    if any(p["requested"] is not None for p in parts):
        rows = [[p["name"], f"{p['requested']:.2%}", f"{p['share']:.2%}", p["rows"]] for p in parts]
        return [*lines, *_table(["source", "requested", "achieved", "rows"], rows), ""]
    lines += [f"- {p['name']}: {p['share']:.2%} ({p['rows']:,})" for p in parts]
    return [*lines, ""]


def shown_stages(report: dict[str, Any]) -> list[str]:
    """The funnel's columns: STAGES, with near duplicates only where near dedup ran (the
    report then has its `near_duplicates` section)."""
    return [k for k in STAGES if k != "near_duplicates" or "near_duplicates" in report]


def markdown(report: dict[str, Any]) -> str:
    sources, totals = report["sources"], report["totals"]
    lines = [
        f"# {report['name']}: build report",
        "",
        f"Seed {report['seed']}, dedup key `{report['dedup_key']}`, formats: "
        f"{', '.join(report['formats'])}.",
        "",
        *(f"> **Warning:** {w}\n" for w in report["warnings"]),
        "## Funnel",
        "",
        "Each source's rows: read, rejected as invalid, linked (turns inside another row's "
        "conversation, in message trees), left out (rows the plugin takes nothing from by "
        "design: not selected, another model's chat), records made, dropped by filters, "
        "lost as duplicates (and as near duplicates, where `dedup.near` is set), left after "
        "dedup, removed as benchmark contamination, packed "
        "(merged into other rows by packing), after sampling, and the train/validation/test "
        "split.",
        "",
    ]
    stages = shown_stages(report)
    for extra in ("left_out", "linked"):  # only where a source has such rows
        if any(s.get(extra) for s in sources):
            stages.insert(stages.index("rejected") + 1, extra)
    if any(s.get("packed") for s in sources):  # only where packing merged rows
        stages.insert(stages.index("contaminated") + 1, "packed")
    header = ["source", "kind", "conf.", *(STAGE_LABELS.get(k, k) for k in stages)]
    rows = [
        [s["name"], s["kind"], f"{s['confidence']:g}", *(s[k] for k in stages)] for s in sources
    ]
    rows.append(["**total**", "", "", *(totals[k] for k in stages)])
    lines += [*_table(header, rows), ""]
    lines += _composition(sources)
    filters = sorted({f for s in sources for f in s.get("filtered_by", {})})
    if filters:
        lines += [
            "## Filters",
            "",
            "Records each filter dropped (a record counts once, for the first filter it fails).",
            "",
        ]
        rows = [
            [s["name"], *(s.get("filtered_by", {}).get(f, 0) for f in filters), s["filtered"]]
            for s in sources
        ]
        lines += [*_table(["source", *filters, "dropped"], rows), ""]
    dups = [(s["name"], w, n) for s in sources for w, n in s["lost_to"].items()]
    if dups:
        lines += [
            "## Duplicates",
            "",
            "Rows each source lost to a higher-priority source "
            "(or to itself, for repeats inside one source).",
            "",
        ]
        lines += [*_table(["source", "lost to", "rows"], [list(d) for d in dups]), ""]
    near = [(s["name"], w, n) for s in sources for w, n in s.get("near_lost_to", {}).items()]
    if near:
        lines += [
            "## Near duplicates",
            "",
            "Records each source lost as a near-duplicate of a record that stays (the first "
            "in confidence, manifest and row order).",
            "",
        ]
        lines += [*_table(["source", "lost to", "records"], [list(d) for d in near]), ""]
    benchmarks = sorted({b for s in sources for b in s["contaminated_by"]})
    if "decontamination" in report:
        stats = report["decontamination"]
        lines += [
            "## Contamination",
            "",
            f"Records holding a benchmark test item, by source and benchmark "
            f"({stats['benchmark_items']:,} benchmark items; every match is in "
            "`contamination.jsonl`).",
            "",
        ]
        rows = [
            [s["name"], *(s["contaminated_by"].get(b, 0) for b in benchmarks), s["contaminated"]]
            for s in sources
        ]
        lines += [*_table(["source", *benchmarks, "records removed"], rows), ""]
    rejected = [s for s in sources if s["rejected"]]
    if rejected:
        lines += ["## Rejected rows", ""]
        for s in rejected:
            reasons = ", ".join(f"{r}: {n:,}" for r, n in s["rejected_by_reason"].items())
            lines += [f"**{s['name']}** ({s['rejected']:,}): {reasons}", ""]
            lines += [
                f"- `{e['where']}` {e['reason']}: {e['detail']}" for e in s["rejected_examples"]
            ]
            lines.append("")
    short = [s for s in sources if s["sample_requested"]]
    if short:
        lines += ["## Sampling", ""]
        lines += [
            f"- {s['name']}: asked for {s['sample_requested']:,} rows, "
            f"{s['after_dedup']:,} available"
            for s in short
        ]
        lines.append("")
    lines += ["## Rendered rows", ""]
    splits = sorted({sp for s in sources for sp in s["rows_out"]})
    fmt_rows = []
    for s in sources:
        for split in splits:
            by_format = s["rows_out"].get(split, {})
            if by_format:
                fmt_rows.append(
                    [s["name"], split, *(by_format.get(f, 0) for f in report["formats"] + ["text"])]
                )
    lines += [*_table(["source", "split", *report["formats"], "text"], fmt_rows), ""]
    lines += ["## Files", ""]
    lines += [f"- `{path}`: {n:,} rows" for path, n in report["outputs"].items()]
    return "\n".join(lines) + "\n"
