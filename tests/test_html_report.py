"""report.html: what it shows, that it escapes the data, that it is deterministic and
self-contained, and that a real browser (headless Chromium) draws its plots.

Reports come from a real build of a small manifest written here, and from that report with
the newer funnel fields (filters, mix weights, distributions) filled in the shape the build
writes them. No mocks.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import composer
from composer.html_report import PALETTE, count, percent, render_html
from composer.report import STAGE_LABELS, histogram, shown_stages
from tests.helpers import write_jsonl, write_manifest

NAMES = ("chat", "tasks", "pairs")
NEW_FIELDS = ("filtered", "filtered_by", "test", "packed", "weight", "requested_share")
NEW_FIELDS += ("achieved_share", "distributions")


# ---------------------------------------------------------------- reports


def build_report(folder: Path, mixed: bool = False) -> dict:
    """The report of a real build: duplicates across sources, rejected rows, 1,200+ rows;
    `mixed`: with a length and a score filter on `chat`, and the sources mixed by weight."""
    chats = [
        {
            "conversations": [
                {"from": "human", "value": f"question {i}"},
                {
                    "from": "gpt",
                    "value": "answer " * 10  # lexical diversity 0.1
                    if i % 4 == 0
                    else f"answer {i}: " + " ".join(f"word{j}" for j in range(i % 12)),
                },
            ]
        }
        for i in range(60)
    ]
    chats.append({"conversations": [{"from": "gpt", "value": "no question"}]})
    tasks = [
        {"instruction": f"question {i}" if i < 20 else f"task {i}", "output": "done " * (i % 9 + 1)}
        for i in range(1250)
    ]
    tasks.append({"instruction": "empty answer", "output": ""})
    pairs = [
        {"prompt": f"pair {i}", "chosen": f"yes {i}", "rejected": f"no {i}"} for i in range(40)
    ]
    sources = [
        {"name": "chat", "plugin": "sharegpt", "confidence": 2},
        {"name": "tasks", "plugin": "alpaca"},
        {"name": "pairs", "plugin": "dpo", "sample": 0.5},
    ]
    for source, rows in zip(sources, (chats, tasks, pairs), strict=True):
        source["path"] = write_jsonl(folder / f"{source['name']}.jsonl", rows)
    extra = {}
    if mixed:
        sources[0]["filters"] = {
            "response_chars": {"min": 20},
            "score": {"scorer": "lexical_diversity", "min": 0.3},
        }
        for weight, source in zip((1, 2, 2), sources, strict=True):
            source["weight"] = weight
            source.pop("sample", None)
        extra["mix"] = {"total": 100}
    manifest = write_manifest(
        folder, sources, split={"validation": 0.1}, output={"dir": str(folder / "out")}, **extra
    )
    return composer.build(manifest).report


def with_new_fields(report: dict) -> dict:
    """`report` with every newer funnel field filled, both thresholds on every score plot."""
    report = copy.deepcopy(report)
    rng = np.random.default_rng(7)
    for i, s in enumerate(report["sources"]):
        s["filtered_by"] = {"response_chars": 2 + i, "refusals": i}
        s["filtered"] = sum(s["filtered_by"].values())
        s["test"] = 0
        s["packed"] = 0
        s["weight"] = float(i + 1)
        s["requested_share"] = (i + 1) / 6
        s["achieved_share"] = None
        lengths = rng.lognormal(4 + i, 0.8, 400)
        scores = rng.normal(0.5, 0.15, 400)
        s["distributions"] = {
            "response_chars": histogram(lengths, log=True),
            "score:lexical_diversity": {**histogram(scores), "min": 0.3, "max": 0.8},
        }
    report["totals"]["filtered"] = sum(s["filtered"] for s in report["sources"])
    return report


def without_new_fields(report: dict) -> dict:
    """`report` as a build before issue 5 wrote it."""
    report = copy.deepcopy(report)
    for s in report["sources"]:
        for key in NEW_FIELDS:
            s.pop(key, None)
    for key in ("filtered", "test"):
        report["totals"].pop(key, None)
    return report


@pytest.fixture
def report(tmp_path) -> dict:
    return build_report(tmp_path)


def figures(page: str, kind: str) -> list[str]:
    """The data-source of each <figure> of one kind of plot, in page order."""
    return re.findall(rf'<figure class="plot" data-plot="{kind}"(?: data-source="([^"]*)")?', page)


def figure(page: str, kind: str, source: str) -> str:
    """The HTML of one figure."""
    start = page.index(f'data-plot="{kind}" data-source="{source}"')
    return page[start : page.index("</figure>", start)]


def section(page: str, name: str) -> str:
    start = page.index(f'<section id="{name}">')
    return page[start : page.index("</section>", start)]


def table_rows(html: str) -> list[list[str]]:
    """Every table row's cells, as text."""
    return [
        [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)]
        for row in re.findall(r"<tr[^>]*>.*?</tr>", html, flags=re.S)
    ]


def row_of(html: str, first: str) -> list[str]:
    return next(r for r in table_rows(html) if r[0] == first)


# ---------------------------------------------------------------- what it shows


def test_a_real_build_shows_its_sections_and_numbers(report):
    page = render_html(report)
    assert page.startswith("<!DOCTYPE html>")
    assert "<h1>t: build report</h1>" in page
    assert "seed <code>42</code>" in page and "dedup key <code>instruction</code>" in page
    assert "formats <code>chatml</code>" in page
    ids = re.findall(r'<section id="([a-z]+)">', page)
    assert ids == ["composition", "funnel", "duplicates", "rejected", "lengths", "outputs"]

    # The funnel: a column per stage, each source's counts, thousands separated, totals.
    funnel = section(page, "funnel")
    header = table_rows(funnel)[0]
    shown = shown_stages(report)  # near duplicates only where near dedup ran
    assert "near_duplicates" not in shown
    assert header == ["source", "kind", "conf.", *(STAGE_LABELS[k] for k in shown)]
    tasks = row_of(funnel, "tasks")
    assert tasks[:7] == ["tasks", "sft", "1", "1,251", "1", "1,250", "0"]
    assert tasks[7] == "20"  # lost to chat
    totals = report["totals"]
    assert row_of(funnel, "total")[3:] == [f"{totals[k]:,}" for k in shown]

    # The composition: each source's share of the mixture, with its count.
    composition = section(page, "composition")
    assert table_rows(composition)[0] == ["source", "kind", "rows", "share", ""]
    mixture = sum(s["sampled"] for s in report["sources"])
    for s in report["sources"]:
        share = f"{100 * s['sampled'] / mixture:.2f}%"
        assert row_of(composition, s["name"])[:4] == [
            s["name"],
            s["kind"],
            f"{s['sampled']:,}",
            share,
        ]
    assert row_of(composition, "total")[2:4] == [f"{mixture:,}", "100.00%"]
    assert mixture > 1000  # so "1,2xx" above shows the separator

    # Duplicates: who lost what to whom; rejected rows with their reason and example.
    assert row_of(section(page, "duplicates"), "tasks") == ["tasks", "chat", "20", "1.60%"]
    rejected = section(page, "rejected")
    assert "<h3>chat: 1 rejected, 1.64% of 61 read</h3>" in rejected
    assert "<code>chat.jsonl:line 61</code> <b>wrong role order</b>" in rejected
    assert "<code>tasks.jsonl:line 1251</code> <b>empty turn</b>" in rejected

    # Plots: composition, funnel, and the length histogram of each source (log scale).
    assert len(figures(page, "mix")) == 1 and len(figures(page, "funnel")) == 1
    assert figures(page, "length") == list(NAMES)
    assert page.count("<svg ") == 2 + len(NAMES)
    chat = figure(page, "length", "chat")
    lengths = report["sources"][0]["distributions"]["response_chars"]
    assert f"chat: {sum(lengths['counts'])} records in the mixture" in chat
    assert re.search(r">\d+</text>", chat)  # plain numbers on the length axis


def test_a_real_build_with_filters_and_weights(tmp_path):
    report = build_report(tmp_path, mixed=True)
    page = render_html(report)
    ids = re.findall(r'<section id="([a-z]+)">', page)
    assert ids[:3] == ["composition", "funnel", "filtered"] and "scores" in ids

    # Filtered: a column per filter, the records it dropped, the share of the source's records.
    filtered = section(page, "filtered")
    header = ["source", "response_chars", "score:lexical_diversity", "dropped", "% of records"]
    assert table_rows(filtered)[0] == header
    chat = next(s for s in report["sources"] if s["name"] == "chat")
    by = chat["filtered_by"]
    assert row_of(filtered, "chat") == [
        "chat",
        str(by["response_chars"]),
        str(by["score:lexical_diversity"]),
        str(chat["filtered"]),
        f"{100 * chat['filtered'] / chat['records']:.2f}%",
    ]
    assert [r[0] for r in table_rows(filtered)[1:]] == ["chat"]  # the others lost nothing

    # Requested share beside the achieved one, the weights, the mix's total.
    composition = section(page, "composition")
    header = ["source", "kind", "rows", "weight", "requested", "achieved", ""]
    assert table_rows(composition)[0] == header
    assert row_of(composition, "tasks")[2:6] == ["40", "2", "40.00%", "40.00%"]
    assert "Mixed by weight: 100 rows of the 100 asked for" in composition
    assert "Requested (light) and achieved (solid)" in composition

    # The score plot marks the filter's threshold as a dashed line, dropped side shaded.
    assert figures(page, "score") == ["chat"]
    score = figure(page, "score", "chat")
    assert ">min 0.3</text>" in score and "stroke-dasharray" in score
    assert "chat, lexical_diversity: 60 scored; kept ≥ 0.3" in score


def test_every_new_field_filled(report):
    page = render_html(with_new_fields(report))
    assert figures(page, "length") == list(NAMES)
    assert figures(page, "score") == list(NAMES)
    assert page.count("<svg ") == 2 + 2 * len(NAMES)
    score = figure(page, "score", "pairs")
    assert ">min 0.3</text>" in score and ">max 0.8</text>" in score
    assert "kept ≥ 0.3 and ≤ 0.8" in score
    assert table_rows(section(page, "filtered"))[0][1:3] == ["refusals", "response_chars"]
    composition = section(page, "composition")
    assert row_of(composition, "pairs")[3:5] == ["3", "50.00%"]  # weight, requested
    # A source without a requested share shows a dash, not 0%; packing gets a column.
    report = with_new_fields(report)
    report["sources"][0]["requested_share"] = None
    report["sources"][1]["packed"] = 1234
    page = render_html(report)
    assert row_of(section(page, "composition"), "chat")[4] == "–"
    funnel = section(page, "funnel")
    assert table_rows(funnel)[0][-1] == "packed" and row_of(funnel, "tasks")[-1] == "1,234"


def test_an_older_report_without_the_new_fields_renders(report):
    page = render_html(without_new_fields(report))
    header = table_rows(section(page, "funnel"))[0]
    assert "filtered" not in header and "test" not in header and "read" in header
    assert "lengths" not in re.findall(r'<section id="([a-z]+)">', page)
    assert page.count("<svg ") == 2
    assert render_html({"name": "empty"}).count("<section") == 0  # no sources at all


def test_formatting():
    assert count(1234567) == "1,234,567" and count(0) == "0" and count(2.0) == "2"
    assert count(0.5) == "0.5" and count(None) == "" and count("<x>") == "&lt;x&gt;"
    assert percent(1) == "100.00%" and percent(0.123456) == "12.35%" and percent(None) == "–"


# ---------------------------------------------------------------- safety and determinism

EVIL = "<script>alert('$x$ & \"y\"')</script>"


def test_every_string_from_the_data_is_escaped(report):
    evil = with_new_fields(report)
    evil["name"] = EVIL
    evil["formats"] = [EVIL]
    evil["warnings"] = [f"{EVIL}: no usable rows"]
    evil["sources"][0]["name"] = EVIL
    evil["sources"][0]["lost_to"] = {EVIL: 3}
    evil["sources"][0]["contaminated_by"] = {EVIL: 2}
    evil["sources"][0]["filtered_by"] = {EVIL: 1}
    evil["sources"][0]["rejected_examples"] = [{"where": EVIL, "reason": EVIL, "detail": EVIL}]
    evil["sources"][0]["rejected_by_reason"] = {EVIL: 1}
    evil["sources"][0]["distributions"][f"score:{EVIL}"] = {"edges": [0, 1], "counts": [5]}
    evil["decontamination"] = {EVIL: 1}
    page = render_html(evil)
    assert "<script" not in page.lower()
    assert '<div class="warning"><b>Warning:</b> &lt;script&gt;' in page
    # Quotes escaped as well outside the plots, so the data is safe inside attributes too.
    assert "alert('" not in re.sub(r"<svg .*?</svg>", "", page, flags=re.S)
    escaped = "&lt;script&gt;alert(&#x27;$x$ &amp; &quot;y&quot;&#x27;)&lt;/script&gt;"
    assert page.count(escaped) >= 10
    # In the plots too (matplotlib escapes text), with the `$` shown, not read as mathtext.
    assert "&lt;script&gt;alert('$x$ &amp; \"y\"')&lt;/script&gt;</text>" in page
    assert f'data-source="{escaped}"' in page


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=st.text(min_size=1, max_size=24), detail=st.text(max_size=40))
def test_any_source_name_renders_escaped(name, detail):
    source = {
        "name": name,
        "kind": "sft",
        "confidence": 1.0,
        "rows_read": 3,
        "rejected": 1,
        "records": 2,
        "after_dedup": 2,
        "sampled": 2,
        "train": 2,
        "rejected_by_reason": {detail: 1},
        "rejected_examples": [{"where": name, "reason": detail, "detail": detail}],
        "lost_to": {name: 1},
    }
    page = render_html({"name": name, "sources": [source]})
    assert "<script" not in page.lower()
    for text in (name, detail):
        escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        escaped = escaped.replace('"', "&quot;").replace("'", "&#x27;")
        assert escaped in page
    assert page.count("<svg ") == 2


def test_the_same_report_gives_the_same_bytes_in_another_process(report, tmp_path):
    full = with_new_fields(report)
    first = render_html(full)
    assert render_html(full) == first
    (tmp_path / "report.json").write_text(json.dumps(full), encoding="utf-8")
    code = (
        "import json, sys; from composer.html_report import render_html; "
        "sys.stdout.buffer.write(render_html(json.load(open(sys.argv[1]))).encode())"
    )
    other = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "report.json")],
        capture_output=True,
        check=True,
    ).stdout.decode()
    assert other == first  # ids and clip paths come from a fixed salt, no dates


def test_self_contained_and_ids_unique(report):
    page = render_html(with_new_fields(report))
    for outside in ("<script", "<link", "<img", "src=", "@import", "@font-face", "<iframe"):
        assert outside not in page, outside
    # The only addresses are SVG namespace names; every url() points inside the page.
    addresses = set(re.findall(r"https?://[^\s\"')]+", page))
    assert addresses <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}
    assert all(u.startswith("url(#") for u in re.findall(r"url\([^)]*\)", page))
    assert "<metadata>" not in page and "<?xml" not in page and "<!--" not in page
    # Element ids are unique across the page's SVGs, and every reference resolves.
    ids = re.findall(r'\sid="([^"]+)"', page)
    assert len(ids) == len(set(ids))
    refs = re.findall(r'url\(#([^)]+)\)|href="#([^"]+)"', page)
    assert {a or b for a, b in refs} <= set(ids)


# ---------------------------------------------------------------- in a real browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chromium(tmp_path: Path, *args: str) -> str:
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    command += [f"--user-data-dir={tmp_path / 'profile'}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=True).stdout


def colour_pixels(image: np.ndarray, hex_colour: str, alpha: float = 1.0) -> int:
    """Pixels of `hex_colour` drawn at `alpha` over white."""
    rgb = np.array([int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    target = alpha * rgb + (1 - alpha) * np.ones(3)
    return int((np.abs(image - target).max(axis=2) < 0.03).sum())


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (apt-get install chromium)")
def test_chromium_draws_the_report_and_its_plots(report, tmp_path):
    import matplotlib.image

    page_path = tmp_path / "report.html"
    page_path.write_text(render_html(with_new_fields(report)), encoding="utf-8")
    url = page_path.as_uri()

    # The DOM Chromium built: every figure holds an SVG element with drawn shapes and text.
    dom = chromium(tmp_path, "--dump-dom", url)
    svgs = re.findall(r"<svg\b.*?</svg>", dom, flags=re.S)
    assert len(svgs) == 2 + 2 * len(NAMES)
    assert all("<path" in svg and "<text" in svg for svg in svgs)

    # The screenshot: each source's colour fills bars in the plots (a table swatch is 100
    # pixels; a bar is thousands), the histograms' lighter fill too.
    png = tmp_path / "report.png"
    chromium(tmp_path, f"--screenshot={png}", "--window-size=1280,4000", url)
    image = matplotlib.image.imread(png)[..., :3].astype(float)
    assert image.shape[:2] == (4000, 1280)
    for i, name in enumerate(NAMES):
        assert colour_pixels(image, PALETTE[i]) > 3000, name  # composition and funnel bars
        assert colour_pixels(image, PALETTE[i], alpha=0.85) > 3000, name  # length histogram
    saturated = image.max(axis=2) - image.min(axis=2) > 0.2
    assert saturated.mean() > 0.03  # not a page of black text on white


def test_length_plots_share_one_scale_across_sources():
    """Short and long sources are drawn on the same x range, so their plots compare."""
    from composer.html_report import _histogram_plot, _span

    short = histogram(np.arange(10, 100), log=True)
    long = histogram(np.arange(1_000, 20_000), log=True)
    span = _span([short, long])
    assert span == (short["edges"][0], long["edges"][-1])
    limits = [
        _histogram_plot(d, "#000000", "s", "response characters", span).axes[0].get_xlim()
        for d in (short, long)
    ]
    assert limits[0] == limits[1] == pytest.approx(span)


# ---------------------------------------------------------------- near duplicates

NEAR_ORIGINAL = (
    "Natalia sold <b>clips</b> to 48 of her friends in April, & then she sold half as many in May."
)
NEAR_COPY = (
    "natalia SOLD <b>clips</b> to 48 of  her friends in april,   & then she sold half as many "
    "in May!"
)


def near_build(tmp_path: Path, near: bool) -> str:
    """report.html of a real build where `high` holds a near copy of a `low` record."""
    others = ["Write a haiku about the sea at night.", "Explain how a bicycle gear works."]
    write_jsonl(
        tmp_path / "low.jsonl",
        [{"instruction": t, "output": f"low {i}"} for i, t in enumerate([NEAR_ORIGINAL, *others])],
    )
    write_jsonl(tmp_path / "high.jsonl", [{"instruction": NEAR_COPY, "output": "high 0"}])
    dedup = {"key": "instruction"}
    if near:
        dedup["near"] = {"method": "minhash", "threshold": 0.7}
    sources = [
        {"name": "low", "plugin": "alpaca", "path": "low.jsonl", "confidence": 1},
        {"name": "high", "plugin": "alpaca", "path": "high.jsonl", "confidence": 3},
    ]
    path = write_manifest(tmp_path, sources, dedup=dedup)
    composer.build(path, output_dir=tmp_path / "out")
    return (tmp_path / "out" / "report.html").read_text(encoding="utf-8")


def test_near_duplicate_clusters_side_by_side(tmp_path):
    page = near_build(tmp_path, near=True)
    near = section(page, "near-duplicates")
    assert "minhash, threshold 0.7" in near
    rows = [r for r in table_rows(near) if r[0] in ("kept", "removed")]
    (kept, source, text, _), (removed, lost, copy_, similarity) = rows
    # The copy in the more trusted source stays; texts are escaped, not markup.
    assert (kept, source, removed, lost) == ("kept", "high", "removed", "low")
    assert "&lt;b&gt;clips&lt;/b&gt;" in near and "<b>clips</b>" not in near
    assert "&amp; then" in text and "&amp; then" in copy_
    assert 0.7 <= float(similarity) <= 1.0
    # The funnel counts it as a near duplicate, apart from exact duplicates.
    funnel = section(page, "funnel")
    header = table_rows(funnel)[0]
    assert header[header.index("duplicates") + 1] == "near duplicates"
    column = header.index("near duplicates")
    assert row_of(funnel, "low")[column] == "1" and row_of(funnel, "high")[column] == "0"
    assert row_of(funnel, "low")[header.index("duplicates")] == "0"


def test_no_near_duplicates_section_without_near_dedup(tmp_path):
    page = near_build(tmp_path, near=False)
    assert 'id="near-duplicates"' not in page
    assert "near duplicates" not in table_rows(section(page, "funnel"))[0]
