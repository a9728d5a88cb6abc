"""report.html: the build report for a person, with tables and plots, in one file.

The page is self-contained (inline CSS, plots as inline SVG drawn by matplotlib; no script,
font or network fetch), so it opens from a laptop, a CI artifact or an e-mail alike. It is
rendered from report.json alone, so an older report renders too (fields it lacks are left
out), and it is deterministic: the same report gives byte-identical HTML.
"""

from __future__ import annotations

import html
import io
import re
import warnings
from collections.abc import Callable, Iterable
from typing import Any

from composer.report import STAGE_LABELS, shown_stages

# Stages that count rows lost (drawn in red), as opposed to rows still on their way.
LOSSES = ("rejected", "filtered", "duplicates", "near_duplicates", "contaminated")
LOSS_COLOUR = "#c0392b"
# Tableau's 10 colours, then 10 lighter ones: one per source, the same in every plot.
PALETTE = (
    "#4e79a7 #f28e2b #59a14f #e15759 #76b7b2 #edc948 #b07aa1 #ff9da7 #9c755f #bab0ac "
    "#a0cbe8 #ffbe7d #8cd17d #ff9d9a #86bcb6 #f1ce63 #d4a6c8 #fabfd2 #d7b5a6 #79706e"
).split()

RC = {
    "svg.hashsalt": "composer",  # element ids from content, not from a random salt
    "svg.fonttype": "none",  # text as <text>: small, selectable, escaped by matplotlib
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.edgecolor": "#999999",
    "axes.labelcolor": "#333333",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#e6e6e6",
    "grid.linewidth": 0.8,
    "xtick.color": "#555555",
    "ytick.color": "#555555",
    "legend.frameon": False,
    "figure.facecolor": "white",
}

CSS = """
:root { --ink: #1f2328; --muted: #656d76; --line: #d8dee4; --soft: #f6f8fa; --loss: #c0392b; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff; line-height: 1.45;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 28px 32px 64px; }
h1 { font-size: 28px; margin: 0 0 4px; }
h2 { font-size: 21px; margin: 40px 0 8px; padding-bottom: 6px;
  border-bottom: 1px solid var(--line); }
h3 { font-size: 16px; margin: 22px 0 6px; }
p.lead, p.note, .meta { color: var(--muted); margin: 4px 0 12px; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  background: var(--soft); padding: 1px 4px; border-radius: 4px; }
nav { margin: 14px 0 6px; font-size: 14px; }
nav a { color: #0969da; text-decoration: none; margin-right: 14px; white-space: nowrap; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 18px 0 8px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 16px; min-width: 120px;
  background: var(--soft); }
.card b { display: block; font-size: 22px; font-variant-numeric: tabular-nums; }
.card span { color: var(--muted); font-size: 13px; }
.card.loss b { color: var(--loss); }
.warning { border-left: 4px solid #d4a72c; background: #fff8c5; padding: 8px 14px;
  margin: 8px 0; border-radius: 0 6px 6px 0; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 13.5px; }
th, td { padding: 5px 8px; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
td.text { white-space: pre-wrap; overflow-wrap: anywhere; }
th.loss { color: var(--loss); }
td.loss { color: var(--loss); }
td.zero { color: #b1b8c0; }
tr.total td { font-weight: 600; border-top: 2px solid var(--ink); background: var(--soft); }
td.bar { min-width: 160px; }
td.bar div { height: 12px; border-radius: 2px; }
.examples { margin: 4px 0 12px 0; padding-left: 20px; font-size: 14px; }
.examples li { margin: 3px 0; overflow-wrap: anywhere; }
figure { margin: 10px 0 18px; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 2px; }
figure svg { display: block; max-width: 100%; height: auto; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr));
  gap: 6px 24px; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px;
  margin-right: 6px; vertical-align: baseline; }
footer { margin-top: 48px; color: var(--muted); font-size: 13px; }
"""


def render_html(report: dict[str, Any]) -> str:
    """report.html from a build's report: what went in, what was lost and why, what came out.

    Every string from the data is HTML-escaped; fields the report lacks (an older report)
    leave their column, table or plot out.
    """
    sources = list(report.get("sources", []))
    colours = {s["name"]: PALETTE[i % len(PALETTE)] for i, s in enumerate(sources)}
    plots = _Plots()
    sections = [
        _composition(report, sources, colours, plots),
        _funnel(report, sources, colours, plots),
        _filtered(sources),
        _duplicates(sources),
        _near_duplicates(report),
        _contamination(report, sources),
        _rejected(sources),
        _lengths(sources, colours, plots),
        _tokens(report, plots),
        _scores(sources, colours, plots),
        _outputs(report, sources),
    ]
    sections = [s for s in sections if s]
    name = str(report.get("name", "build"))
    nav = "".join(f'<a href="#{sid}">{esc(title)}</a>' for sid, title, _ in sections)
    body = "\n".join(
        f'<section id="{sid}">\n<h2>{esc(title)}</h2>\n{content}\n</section>'
        for sid, title, content in sections
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(name)}: build report</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<main>\n<h1>{esc(name)}: build report</h1>\n{_header(report)}\n"
        f"{_cards(report, sources)}\n{_warnings(report)}\n<nav>{nav}</nav>\n{body}\n"
        "<footer>Made by composer from report.json; report.md holds the same counts as "
        "plain tables.</footer>\n</main>\n</body>\n</html>\n"
    )


# ---------------------------------------------------------------- formatting


def esc(value: Any) -> str:
    """Text from the data, safe in HTML text and in quoted attributes."""
    return html.escape(str(value), quote=True)


def count(n: Any) -> str:
    """1234567 -> '1,234,567'; anything not a number as it is."""
    if isinstance(n, bool) or not isinstance(n, int | float):
        return esc("" if n is None else n)
    if isinstance(n, float) and not n.is_integer():
        return f"{n:,g}"
    return f"{int(n):,}"


def percent(share: float | None) -> str:
    """0.1234 -> '12.34%'; None (no share asked for) -> an en dash."""
    return "–" if share is None else f"{100 * share:.2f}%"


def _num(n: Any, loss: bool = False) -> str:
    """A number cell: grey when zero, red when it counts rows lost."""
    cls = "num zero" if not n else ("num loss" if loss else "num")
    return f'<td class="{cls}">{count(n)}</td>'


def _table(header: list[str], rows: Iterable[str], numeric_from: int = 1) -> str:
    """A table; `rows` are ready <tr> rows, header cells from `numeric_from` on are numbers."""
    head = "".join(
        f'<th class="num">{h}</th>' if i >= numeric_from else f"<th>{h}</th>"
        for i, h in enumerate(header)
    )
    return (
        f'<div class="scroll"><table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n'
        + "\n".join(rows)
        + "\n</tbody></table></div>"
    )


def _swatch(colour: str) -> str:
    return f'<span class="swatch" style="background:{colour}"></span>'


def _source_cell(s: dict[str, Any], colours: dict[str, str]) -> str:
    return f"<td>{_swatch(colours[s['name']])}{esc(s['name'])}</td>"


def _confidence(s: dict[str, Any]) -> str:
    value = s.get("confidence")
    return "" if value is None else f"{value:g}"


def _stage_value(report: dict[str, Any], sources: list[dict], stage: str) -> int:
    totals = report.get("totals", {})
    if stage in totals:
        return totals[stage]
    return sum(s.get(stage) or 0 for s in sources)


def _stages(report: dict[str, Any], sources: list[dict]) -> list[str]:
    """The funnel stages this report has (an older one lacks `filtered` and `test`; near
    duplicates only where near dedup ran)."""
    return [k for k in shown_stages(report) if any(k in s for s in sources)]


# ---------------------------------------------------------------- header


def _header(report: dict[str, Any]) -> str:
    formats = ", ".join(f"<code>{esc(f)}</code>" for f in report.get("formats", []))
    parts = [
        f"seed <code>{esc(report.get('seed'))}</code>",
        f"dedup key <code>{esc(report.get('dedup_key'))}</code>",
        f"formats {formats or '–'}",
        f"{len(report.get('sources', []))} sources",
    ]
    return f'<p class="meta">{" · ".join(parts)}</p>'


def _cards(report: dict[str, Any], sources: list[dict]) -> str:
    stages = _stages(report, sources)
    show = ["rows_read", "rejected", "filtered", "duplicates", "near_duplicates"]
    show += ["contaminated", "sampled"]
    show += [k for k in ("train", "validation", "test") if k in stages]
    cards = []
    for k in show:
        if k not in stages:
            continue
        n = _stage_value(report, sources, k)
        if not n and (k in LOSSES or k == "test"):
            continue
        label = "in the mixture" if k == "sampled" else STAGE_LABELS[k]
        cls = "card loss" if k in LOSSES else "card"
        cards.append(f'<div class="{cls}"><b>{count(n)}</b><span>{esc(label)}</span></div>')
    return f'<div class="cards">{"".join(cards)}</div>'


def _warnings(report: dict[str, Any]) -> str:
    return "\n".join(
        f'<div class="warning"><b>Warning:</b> {esc(w)}</div>' for w in report.get("warnings", [])
    )


# ---------------------------------------------------------------- sections


Section = tuple[str, str, str] | None  # (anchor, title, HTML)


def _composition(
    report: dict[str, Any], sources: list[dict], colours: dict[str, str], plots: _Plots
) -> Section:
    if not sources:
        return None
    total = sum(s.get("sampled") or 0 for s in sources)
    most = max(s.get("sampled") or 0 for s in sources) or 1
    mixed = any(s.get("requested_share") is not None for s in sources)
    weighted = any(s.get("weight") is not None for s in sources)
    header = ["source", "kind", "rows"]
    header += ["weight"] if weighted else []
    header += ["requested", "achieved"] if mixed else ["share"]
    header.append("")
    rows = []
    for s in sources:
        n = s.get("sampled") or 0
        cells = [_source_cell(s, colours), f"<td>{esc(s.get('kind', ''))}</td>", _num(n)]
        if weighted:
            w = s.get("weight")
            cells.append(f'<td class="num">{"–" if w is None else f"{w:g}"}</td>')
        if mixed:
            cells.append(f'<td class="num">{percent(s.get("requested_share"))}</td>')
        cells.append(f'<td class="num">{percent(n / total if total else None)}</td>')
        cells.append(
            f'<td class="bar"><div style="width:{100 * n / most:.2f}%;'
            f'background:{colours[s["name"]]}"></div></td>'
        )
        rows.append(f"<tr>{''.join(cells)}</tr>")
    total_cells = ["<td>total</td>", "<td></td>", _num(total)]
    total_cells += ["<td></td>"] * (int(weighted) + int(mixed))
    total_cells += [f'<td class="num">{percent(1.0 if total else None)}</td>', "<td></td>"]
    rows.append(f'<tr class="total">{"".join(total_cells)}</tr>')
    lead = (
        "Each source's share of the final mixture: its rows after filters, dedup, "
        "decontamination and sampling, over all rows in the mixture"
    )
    mix = report.get("mix")
    if mixed:
        lead += ", beside the share its weight asked for"
    if mix:
        lead += (
            f". Mixed by weight: {count(mix.get('achieved'))} rows of the "
            f"{count(mix.get('requested'))} asked for (<code>mix.total</code>)"
        )
    parts = [f'<p class="lead">{lead}.</p>', _table(header, rows, numeric_from=2)]
    short = [s for s in sources if s.get("sample_requested")]
    if short:
        parts.append('<ul class="examples">')
        parts += [
            f"<li>{esc(s['name'])}: asked for {count(s['sample_requested'])} rows, "
            f"{count((s.get('after_dedup') or 0) - (s.get('contaminated') or 0))} available</li>"
            for s in short
        ]
        parts.append("</ul>")
    if total:
        caption = (
            "Requested (light) and achieved (solid) share of the mixture, per source."
            if mixed
            else "Share of the mixture, per source."
        )
        parts.append(
            plots.figure(_composition_plot, sources, colours, mixed, caption=caption, kind="mix")
        )
    return ("composition", "Composition", "\n".join(parts))


def _funnel(
    report: dict[str, Any], sources: list[dict], colours: dict[str, str], plots: _Plots
) -> Section:
    if not sources:
        return None
    stages = _stages(report, sources)
    packed = any(s.get("packed") for s in sources)
    header = ["source", "kind", "conf."]
    header += [
        f'<span class="loss">{esc(STAGE_LABELS[k])}</span>' if k in LOSSES else esc(STAGE_LABELS[k])
        for k in stages
    ]
    header += ["packed"] if packed else []
    rows = []
    for s in sources:
        cells = [
            _source_cell(s, colours),
            f"<td>{esc(s.get('kind', ''))}</td>",
            f'<td class="num">{_confidence(s)}</td>',
        ]
        cells += [_num(s.get(k) or 0, loss=k in LOSSES) for k in stages]
        cells += [_num(s.get("packed") or 0)] if packed else []
        rows.append(f"<tr>{''.join(cells)}</tr>")
    cells = ["<td>total</td>", "<td></td>", "<td></td>"]
    cells += [_num(_stage_value(report, sources, k), loss=k in LOSSES) for k in stages]
    cells += [_num(sum(s.get("packed") or 0 for s in sources))] if packed else []
    rows.append(f'<tr class="total">{"".join(cells)}</tr>')
    intro = (
        '<p class="lead">Every input row, per source and stage: read, rejected as invalid, '
        "records made (text is chunked, so records can outnumber rows), dropped by filters, "
        "lost as duplicates (and near duplicates), left after dedup, removed as benchmark "
        "contamination, sampled into the mixture, and split. Red columns count rows lost.</p>"
    )
    figure = plots.figure(
        _funnel_plot,
        report,
        sources,
        stages,
        colours,
        caption="Rows at each stage, all sources stacked; red labels mark rows lost.",
        kind="funnel",
    )
    return ("funnel", "Funnel", intro + "\n" + _table(header, rows, numeric_from=2) + figure)


def _matrix(
    sources: list[dict], field: str, columns: list[str], total: str, of: str, label: str
) -> str:
    """Rows: sources with something in `field`; columns: its keys; then the total and %."""
    header = ["source", *(esc(c) for c in columns), esc(label), f"% of {STAGE_LABELS[of]}"]
    rows = []
    for s in sources:
        by = s.get(field) or {}
        if not by and not s.get(total):
            continue
        n = s.get(total) or sum(by.values())
        base = s.get(of) or 0
        cells = [f"<td>{esc(s['name'])}</td>", *(_num(by.get(c, 0), loss=True) for c in columns)]
        cells += [_num(n, loss=True), f'<td class="num">{percent(n / base) if base else "–"}</td>']
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return _table(header, rows)


def _filtered(sources: list[dict]) -> Section:
    if not any(s.get("filtered") or s.get("filtered_by") for s in sources):
        return None
    filters = sorted({f for s in sources for f in s.get("filtered_by") or {}})
    intro = (
        '<p class="lead">Records each filter dropped, per source (before dedup). A record '
        "that fails several filters is counted once, under the first.</p>"
    )
    return (
        "filtered",
        "Filtered",
        intro + _matrix(sources, "filtered_by", filters, "filtered", "records", "dropped"),
    )


def _duplicates(sources: list[dict]) -> Section:
    lost = [(s, winner, n) for s in sources for winner, n in (s.get("lost_to") or {}).items()]
    if not lost:
        return None
    rows = []
    for s, winner, n in lost:
        to = (
            f"{esc(winner)} <span class='note'>(repeats inside the source)</span>"
            if winner == s["name"]
            else esc(winner)
        )
        base = s.get("records") or 0
        rows.append(
            f"<tr><td>{esc(s['name'])}</td><td>{to}</td>{_num(n, loss=True)}"
            f'<td class="num">{percent(n / base) if base else "–"}</td></tr>'
        )
    intro = (
        '<p class="lead">Records each source lost as duplicates, and to which source: the '
        "more trusted one (higher confidence, then manifest order) keeps an item.</p>"
    )
    return (
        "duplicates",
        "Duplicates",
        intro + _table(["source", "lost to", "records", "% of its records"], rows, 2),
    )


def _near_duplicates(report: dict[str, Any]) -> Section:
    """A few near-duplicate clusters side by side: the record kept and those it removed."""
    near = report.get("near_duplicates")
    if near is None:
        return None
    parts = [
        '<p class="lead">Records near dedup removed after exact dedup '
        f"({esc(near.get('method', ''))}, threshold {esc(near.get('threshold', ''))}): in a "
        "cluster the record from the more trusted source stays. A few clusters, with each "
        "removed record's similarity to the one kept.</p>"
    ]
    for cluster in near.get("clusters") or []:
        winner = cluster["winner"]
        rows = [
            f'<tr class="winner"><td>kept</td><td>{esc(winner["source"])}</td>'
            f'<td class="text">{esc(winner["text"])}</td><td class="num">–</td></tr>'
        ]
        rows += [
            f'<tr><td class="loss">removed</td><td>{esc(loser["source"])}</td>'
            f'<td class="text">{esc(loser["text"])}</td>'
            f'<td class="num">{loser["similarity"]:.3f}</td></tr>'
            for loser in cluster.get("losers") or []
        ]
        parts.append(
            f'<div class="cluster" data-kind="{esc(cluster.get("kind", ""))}">'
            + _table(["", "source", "text", "similarity"], rows, numeric_from=3)
            + "</div>"
        )
    if not near.get("clusters"):
        parts.append('<p class="note">No near-duplicates found.</p>')
    return ("near-duplicates", "Near duplicates", "\n".join(parts))


def _contamination(report: dict[str, Any], sources: list[dict]) -> Section:
    stats = report.get("decontamination")
    if stats is None and not any(s.get("contaminated") for s in sources):
        return None
    benchmarks = sorted({b for s in sources for b in s.get("contaminated_by") or {}})
    parts = []
    if stats:
        facts = ", ".join(f"{esc(k.replace('_', ' '))}: {count(v)}" for k, v in stats.items())
        parts.append(f'<p class="note">{facts}.</p>')
    if any(s.get("contaminated") or s.get("contaminated_by") for s in sources):
        parts.insert(
            0,
            '<p class="lead">Records holding a benchmark test item, by source and benchmark; '
            "every match, with its score, is in <code>contamination.jsonl</code>.</p>",
        )
        parts.append(
            _matrix(
                sources, "contaminated_by", benchmarks, "contaminated", "after_dedup", "removed"
            )
        )
    else:
        parts.insert(0, '<p class="lead">No record matched a benchmark item.</p>')
    return ("contamination", "Contamination", "\n".join(parts))


def _rejected(sources: list[dict]) -> Section:
    rejected = [s for s in sources if s.get("rejected")]
    if not rejected:
        return None
    parts = [
        '<p class="lead">Input rows that could not become records, with the reason; every '
        "one is in <code>rejected.jsonl</code>. The first few of each source:</p>"
    ]
    for s in rejected:
        read = s.get("rows_read") or 0
        share = f", {percent(s['rejected'] / read)} of {count(read)} read" if read else ""
        reasons = ", ".join(
            f"{esc(r)}: {count(n)}" for r, n in (s.get("rejected_by_reason") or {}).items()
        )
        parts.append(f"<h3>{esc(s['name'])}: {count(s['rejected'])} rejected{share}</h3>")
        parts.append(f"<p>{reasons}</p>" if reasons else "")
        examples = s.get("rejected_examples") or []
        if examples:
            parts.append('<ul class="examples">')
            parts += [
                f"<li><code>{esc(e.get('where', ''))}</code> <b>{esc(e.get('reason', ''))}</b>: "
                f"{esc(e.get('detail', ''))}</li>"
                for e in examples
            ]
            parts.append("</ul>")
    return ("rejected", "Rejected rows", "\n".join(p for p in parts if p))


def _span(dists: list[dict]) -> tuple[float, float] | None:
    """One x range for several histograms, so that their plots compare at a glance."""
    edges = [d["edges"] for d in dists if d.get("edges")]
    return (min(e[0] for e in edges), max(e[-1] for e in edges)) if edges else None


def _lengths(sources: list[dict], colours: dict[str, str], plots: _Plots) -> Section:
    figures = []
    dists = {s["name"]: (s.get("distributions") or {}).get("response_chars") for s in sources}
    dists = {name: d for name, d in dists.items() if d and d.get("counts")}
    span = _span(list(dists.values()))
    for name, dist in dists.items():
        n = sum(dist["counts"])
        figures.append(
            plots.figure(
                _histogram_plot,
                dist,
                colours[name],
                name,
                "response characters",
                span,
                caption=f"{esc(name)}: {count(n)} records in the mixture",
                kind="length",
                source=name,
            )
        )
    if not figures:
        return None
    intro = (
        '<p class="lead">How long the answers in the mixture are (assistant turns; a pair\'s '
        "chosen answer; a text record's text), per source, in characters on a log scale "
        "shared by every plot.</p>"
    )
    return ("lengths", "Lengths", intro + '<div class="grid">' + "".join(figures) + "</div>")


def _tokens(report: dict[str, Any], plots: _Plots) -> Section:
    """Token lengths of the formats rendered with a tokenizer, and the rows over max_seq_len."""
    tokens = report.get("token_lengths") or {}
    if not tokens:
        return None
    rows = []
    for name, t in tokens.items():
        limit = t.get("max_seq_len")
        over = "" if limit is None else f"{count(t['over'])} ({t['share_over']:.1%})"
        rows.append(
            f"<tr><td>{esc(name)}</td><td><code>{esc(t['tokenizer'])}</code></td>"
            f"{_num(t['rows'])}{_num(t['median'])}{_num(t['max'])}"
            f'{_num(limit) if limit is not None else "<td></td>"}<td class="num">{over}</td></tr>'
        )
    header = ["format", "tokenizer", "rows", "median", "longest", "max_seq_len", "over"]
    dists = {n: t["histogram"] for n, t in tokens.items() if t["histogram"].get("counts")}
    span = _span(list(dists.values()))
    figures = [
        plots.figure(
            _histogram_plot,
            {**dist, "max": tokens[name].get("max_seq_len")},
            PALETTE[i % len(PALETTE)],
            name,
            "row tokens",
            span,
            caption=f"{esc(name)}: {count(sum(dist['counts']))} rendered rows",
            kind="tokens",
        )
        for i, (name, dist) in enumerate(dists.items())
    ]
    intro = (
        '<p class="lead">Rendered rows in each tokenizer\'s tokens (prompt and completion, '
        "tokenized apart as a trainer does); rows over a format's <code>max_seq_len</code> "
        "would be cut or dropped in training.</p>"
    )
    grid = '<div class="grid">' + "".join(figures) + "</div>"
    return ("tokens", "Token lengths", intro + _table(header, rows, 2) + grid)


def _scores(sources: list[dict], colours: dict[str, str], plots: _Plots) -> Section:
    figures = []
    for s in sources:
        for key, dist in sorted((s.get("distributions") or {}).items()):
            if not key.startswith("score:") or not dist.get("counts"):
                continue
            scorer = key.removeprefix("score:")
            low, high = dist.get("min"), dist.get("max")
            kept = " and ".join(
                t
                for t in (low is not None and f"≥ {low:g}", high is not None and f"≤ {high:g}")
                if t
            )
            caption = f"{esc(s['name'])}, {esc(scorer)}: {count(sum(dist['counts']))} scored"
            figures.append(
                plots.figure(
                    _histogram_plot,
                    dist,
                    colours[s["name"]],
                    f"{s['name']} · {scorer}",
                    scorer,
                    caption=caption + (f"; kept {esc(kept)}" if kept else ""),
                    kind="score",
                    source=s["name"],
                )
            )
    if not figures:
        return None
    intro = (
        '<p class="lead">Score distributions, per source and scorer; dashed red lines are the '
        "filter's thresholds and the shaded side is what it dropped.</p>"
    )
    return ("scores", "Scores", intro + '<div class="grid">' + "".join(figures) + "</div>")


def _outputs(report: dict[str, Any], sources: list[dict]) -> Section:
    parts = []
    formats = [*report.get("formats", []), "text"]
    splits = [
        sp
        for sp in ("train", "validation", "test")
        if any(sp in (s.get("rows_out") or {}) for s in sources)
    ]
    rows = []
    for s in sources:
        for split in splits:
            by_format = (s.get("rows_out") or {}).get(split) or {}
            if by_format:
                cells = [f"<td>{esc(s['name'])}</td>", f"<td>{esc(split)}</td>"]
                cells += [_num(by_format.get(f, 0)) for f in formats]
                rows.append(f"<tr>{''.join(cells)}</tr>")
    if rows:
        parts.append(
            '<p class="lead">Rows rendered per source, split and prompt format (a multi-turn '
            "conversation gives a row per answer).</p>"
        )
        parts.append(_table(["source", "split", *(esc(f) for f in formats)], rows, 2))
    outputs = report.get("outputs") or {}
    if outputs:
        parts.append("<h3>Files</h3>")
        parts.append(
            _table(
                ["file", "rows"],
                (f"<tr><td><code>{esc(p)}</code></td>{_num(n)}</tr>" for p, n in outputs.items()),
            )
        )
    if not parts:
        return None
    return ("outputs", "Output", "\n".join(parts))


# ---------------------------------------------------------------- plots


class _Plots:
    """Draws figures as inline SVG; numbers them so that their element ids never collide."""

    def __init__(self) -> None:
        self.n = 0

    def figure(
        self,
        draw: Callable[..., Any],
        *args: Any,
        caption: str,
        kind: str,
        source: str | None = None,
    ) -> str:
        """<figure> holding the SVG that `draw(*args)` makes; `caption` is HTML already."""
        import matplotlib
        from matplotlib.figure import Figure

        self.n += 1
        with matplotlib.rc_context(RC), warnings.catch_warnings():
            # Text stays text (svg.fonttype none): the browser draws it with its own fonts.
            warnings.filterwarnings("ignore", message="Glyph .* missing from font")
            fig: Figure = draw(*args)
            buffer = io.StringIO()
            fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
        svg = _inline_svg(buffer.getvalue(), f"plot{self.n}-", caption)
        data = f' data-source="{esc(source)}"' if source is not None else ""
        return (
            f'<figure class="plot" data-plot="{kind}"{data}>\n{svg}\n'
            f"<figcaption>{caption}</figcaption>\n</figure>"
        )


def _inline_svg(svg: str, prefix: str, label: str) -> str:
    """matplotlib's SVG file as an element of a page: no XML prolog, comments or metadata,
    and ids prefixed (inside tags only, never in text) so that figures cannot clash."""
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<!--.*?-->\n?", "", svg, flags=re.S)
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, flags=re.S)

    def tag(match: re.Match) -> str:
        text = match.group(0)
        text = re.sub(r'\bid="([^"]+)"', rf'id="{prefix}\1"', text)
        text = re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}\1)", text)
        return re.sub(r'href="#([^"]+)"', rf'href="#{prefix}\1"', text)

    svg = re.sub(r"<[^>]*>", tag, svg)
    label = re.sub(r"<[^>]*>", "", label)  # the caption's text, as the plot's accessible name
    return svg.replace("<svg ", f'<svg role="img" aria-label="{label}" ', 1).strip()


def _label(text: str) -> str:
    """A data string as matplotlib text: `$` would start mathtext, so it is escaped."""
    return str(text).replace("$", r"\$")


def _composition_plot(sources: list[dict], colours: dict[str, str], mixed: bool):
    from matplotlib.figure import Figure

    total = sum(s.get("sampled") or 0 for s in sources)
    names = [_label(s["name"]) for s in sources]
    achieved = [100 * (s.get("sampled") or 0) / total for s in sources]
    fig = Figure(
        figsize=(10, 0.8 + 0.3 * len(sources) * (1.7 if mixed else 1)), layout="constrained"
    )
    ax = fig.subplots()
    y = list(range(len(sources)))
    bar_colours = [colours[s["name"]] for s in sources]
    if mixed:
        requested = [100 * (s.get("requested_share") or 0) for s in sources]
        h = 0.38
        ax.barh(
            [i - h / 2 for i in y],
            requested,
            height=h,
            color=bar_colours,
            alpha=0.35,
            edgecolor=bar_colours,
            label="requested",
        )
        bars = ax.barh(
            [i + h / 2 for i in y], achieved, height=h, color=bar_colours, label="achieved"
        )
        for i, (r, s) in enumerate(zip(requested, sources, strict=True)):
            if s.get("requested_share") is not None:
                ax.text(r, i - h / 2, f" {r:.2f}%", va="center", fontsize=8, color="#666666")
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2)
    else:
        bars = ax.barh(y, achieved, height=0.6, color=bar_colours)
    for bar, value in zip(bars, achieved, strict=True):
        ax.text(
            bar.get_width(),
            bar.get_y() + bar.get_height() / 2,
            f" {value:.2f}%",
            va="center",
            fontsize=8,
        )
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlim(0, max([*achieved, *(requested if mixed else []), 1]) * 1.15)
    ax.set_xlabel("share of the mixture (%)")
    ax.grid(axis="y", visible=False)
    return fig


def _funnel_plot(report: dict[str, Any], sources: list[dict], stages: list[str], colours):
    from matplotlib.figure import Figure

    shown = [k for k in stages if _stage_value(report, sources, k) or k not in (*LOSSES, "test")]
    fig = Figure(figsize=(10, 0.9 + 0.38 * len(shown)), layout="constrained")
    ax = fig.subplots()
    left = [0.0] * len(shown)
    for s in sources:
        values = [s.get(k) or 0 for k in shown]
        colour = colours[s["name"]]
        ax.barh(
            range(len(shown)),
            values,
            left=left,
            height=0.65,
            color=colour,
            edgecolor="white",
            linewidth=0.5,
            label=_label(s["name"]),
        )
        left = [a + b for a, b in zip(left, values, strict=True)]
    totals = [_stage_value(report, sources, k) for k in shown]
    for i, (k, n) in enumerate(zip(shown, totals, strict=True)):
        ax.text(
            left[i],
            i,
            f" {n:,}",
            va="center",
            fontsize=8,
            color=LOSS_COLOUR if k in LOSSES else "#333333",
        )
    ax.set_yticks(range(len(shown)), [STAGE_LABELS[k] for k in shown])
    for tick, k in zip(ax.get_yticklabels(), shown, strict=True):
        if k in LOSSES:
            tick.set_color(LOSS_COLOUR)
    ax.invert_yaxis()
    ax.set_xlim(0, max([*left, 1]) * 1.12)
    ax.set_xlabel("rows")
    ax.grid(axis="y", visible=False)
    if len(sources) <= 20:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    return fig


def _histogram_plot(
    dist: dict[str, Any],
    colour: str,
    title: str,
    xlabel: str,
    span: tuple[float, float] | None = None,
):
    from matplotlib.figure import Figure

    edges, counts = dist["edges"], dist["counts"]
    fig = Figure(figsize=(5.6, 2.5))  # fixed margins: a layout engine would double the time
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.2, top=0.88)
    ax = fig.subplots()
    ax.stairs(counts, edges, fill=True, color=colour, alpha=0.85)
    ax.stairs(counts, edges, color=colour)
    log = xlabel.startswith(("response", "row tokens")) and edges[0] > 0
    if log:
        ax.set_xscale("log")
    low, high = dist.get("min"), dist.get("max")
    thresholds = [v for v in (low, high) if v is not None and (v > 0 or not log)]
    first, last = span or (edges[0], edges[-1])
    left, right = min([first, *thresholds]), max([last, *thresholds])
    if thresholds:  # room beside a threshold at the data's edge
        if log:
            left, right = left / 1.15, right * 1.15
        else:
            pad = 0.03 * (right - left or 1)
            left, right = left - pad, right + pad
    for value, side in ((low, "min"), (high, "max")):
        if value not in thresholds:
            continue
        ax.axvline(value, color=LOSS_COLOUR, linestyle="--", linewidth=1.4)
        span = (left, value) if side == "min" else (value, right)
        ax.axvspan(*span, color=LOSS_COLOUR, alpha=0.08, linewidth=0)
        ax.annotate(
            f"{side} {value:g}",
            (value, 1),
            xycoords=("data", "axes fraction"),
            xytext=(3 if side == "min" else -3, -2),
            textcoords="offset points",
            ha="left" if side == "min" else "right",
            va="top",
            fontsize=8,
            color=LOSS_COLOUR,
        )
    ax.set_xlim(left, right)
    if log:
        _log_ticks(ax, left, right)
    ax.set_title(_label(title))
    ax.set_xlabel(_label(xlabel))
    ax.set_ylabel("records")
    return fig


def _log_ticks(ax, left: float, right: float) -> None:
    """Plain-number ticks on a log axis (100, 1,000), enough of them on a narrow range too."""
    import math

    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    decades = math.log10(right / left)
    if decades < 1:
        ax.xaxis.set_major_locator(MaxNLocator(5))
    elif decades < 2.5:
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    else:
        ax.xaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}" if x >= 10 else f"{x:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
