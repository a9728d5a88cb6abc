"""Mixing by weight, stratified sampling, the test split and `max_validation`.

Real builds of manifests written into tmp_path, outputs read back from parquet and the
report. Every expected count is computed here, plainly and exactly (fractions, largest
remainder), without composer's own helpers, and compared with what the build wrote.
Unit tests cover `solve_mix`, `validation_quota` with caps and `meta_field`.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter, defaultdict
from fractions import Fraction
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import composer
from composer.errors import UserError
from composer.manifest import Bounds, Filters
from composer.records import meta_field
from composer.sample import solve_mix
from composer.split import validation_quota
from tests.helpers import (
    assert_user_error,
    invoke,
    read_parquet,
    read_rendered,
    uuid5,
    write_jsonl,
    write_manifest,
    write_manifest_text,
)

# ---------------------------------------------------------------- expected numbers, by hand


def largest_remainder(total: int, weights: dict[str, Fraction | int]) -> dict[str, int]:
    """`total` whole units shared in proportion to `weights`: each its floor, the leftovers
    one each to the largest remainders, ties to the first name."""
    weight_sum = sum(weights.values())
    exact = {n: Fraction(total) * w / weight_sum for n, w in weights.items()}
    counts = {n: math.floor(v) for n, v in exact.items()}
    for n in sorted(exact, key=lambda n: (-(exact[n] - counts[n]), n))[
        : total - sum(counts.values())
    ]:
        counts[n] += 1
    return counts


def mix_counts(
    available: dict[str, int], weights: dict[str, float], total: int, upsample: bool = False
) -> dict[str, int]:
    """Rows per source for `mix`: the weights read as the decimals written in the manifest;
    without upsampling the total shrinks until the scarcest source's share fits."""
    exact = {n: Fraction(str(w)) for n, w in weights.items()}
    share = {n: w / sum(exact.values()) for n, w in exact.items()}
    if not upsample:
        total = min([total, *(math.floor(available[n] / share[n]) for n in share)])
    return largest_remainder(total, share)


def capped_quota(sizes: dict[str, int], target: int, caps: dict[str, int | None]) -> dict[str, int]:
    """`target` ids shared by size; a source whose share reaches its cap gives its cap, and
    what is left is shared over the others the same way."""
    cap = {n: s if caps.get(n) is None else min(s, caps[n]) for n, s in sizes.items()}
    quota: dict[str, int] = {}
    open_ = [n for n in sizes if cap[n] > 0]
    quota.update({n: 0 for n in sizes if cap[n] == 0})
    while open_:
        left = target - sum(quota.values())
        weight = sum(sizes[n] for n in open_)
        full = [n for n in open_ if Fraction(left * sizes[n], weight) >= cap[n]]
        if not full:
            quota.update(largest_remainder(left, {n: sizes[n] for n in open_}))
            break
        quota.update({n: cap[n] for n in full})
        open_ = [n for n in open_ if n not in full]
    return {n: quota.get(n, 0) for n in sizes}


def alpaca_rows(prefix: str, n: int, answer: str = "answer") -> list[dict]:
    return [
        {"instruction": f"{prefix} task {i}", "output": f"{prefix} {answer} {i}"} for i in range(n)
    ]


def source(folder: Path, name: str, rows: list[dict], plugin: str = "alpaca", **extra) -> dict:
    return {
        "name": name,
        "plugin": plugin,
        "path": write_jsonl(folder / f"{name}.jsonl", rows),
        **extra,
    }


def report_of(out: Path) -> dict:
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def rows_by_source(out: Path) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = defaultdict(list)
    for r in read_parquet(out / "records.parquet"):
        found[r["source"]].append(r)
    return found


def composition_table(out: Path) -> dict[str, list[str]]:
    """report.md's "## Composition" table: source -> [requested, achieved, rows]."""
    text = (out / "report.md").read_text(encoding="utf-8")
    section = text.split("## Composition\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    assert lines[0] == "| source | requested | achieved | rows |"
    return {
        cells[0]: cells[1:]
        for cells in ([c.strip() for c in line.strip("|").split("|")] for line in lines[2:])
    }


# ---------------------------------------------------------------- the mixture by weight

WEIGHTS = {"a": 0.5, "b": 0.3, "c": 0.2}


def weighted(folder: Path, c_rows: list[dict], **c_extra) -> list[dict]:
    """a (most trusted), b, and c, weighted 0.5 / 0.3 / 0.2."""
    return [
        source(folder, "a", alpaca_rows("a", 200), confidence=3, weight=WEIGHTS["a"]),
        source(folder, "b", alpaca_rows("b", 200), confidence=2, weight=WEIGHTS["b"]),
        source(folder, "c", c_rows, confidence=1, weight=WEIGHTS["c"], **c_extra),
    ]


def mostly_duplicates() -> list[dict]:
    """220 rows of which 180 repeat a's instructions: dedup leaves c 40 (82% gone)."""
    return alpaca_rows("a", 180, "copy") + alpaca_rows("c", 40)


def assert_mixture(out: Path, available: dict[str, int], total: int) -> dict[str, int]:
    """The build gave exactly the hand-computed counts, within 1% of the shares, and the
    report (JSON and Markdown) shows requested against achieved."""
    expected = mix_counts(available, WEIGHTS, total)
    achieved_total = sum(expected.values())
    by_source = rows_by_source(out)
    assert {n: len(by_source[n]) for n in WEIGHTS} == expected
    report = report_of(out)
    assert report["mix"] == {"requested": total, "achieved": achieved_total}
    table = composition_table(out)
    for s in report["sources"]:
        name = s["name"]
        assert s["weight"] == WEIGHTS[name]
        assert s["after_dedup"] - s["contaminated"] - s["packed"] == available[name]
        assert s["sampled"] == expected[name]
        assert s["requested_share"] == WEIGHTS[name]
        assert s["achieved_share"] == round(expected[name] / achieved_total, 6)
        assert abs(s["achieved_share"] - s["requested_share"]) <= 0.01
        share = expected[name] / achieved_total
        assert table[name] == [f"{WEIGHTS[name]:.2%}", f"{share:.2%}", f"{expected[name]:,}"]
    return expected


def test_mix_by_weight_after_heavy_dedup_is_within_one_percent(tmp_path):
    """The issue's must-show: 0.5 / 0.3 / 0.2, c losing most of its rows to a before the
    mix is solved; the shares hold on what is left."""
    path = write_manifest(tmp_path, weighted(tmp_path, mostly_duplicates()), mix={"total": 157})
    out = composer.build(path, output_dir=tmp_path / "out").output_dir
    report = report_of(out)
    c = next(s for s in report["sources"] if s["name"] == "c")
    assert (c["records"], c["duplicates"], c["after_dedup"]) == (220, 180, 40)
    assert c["lost_to"] == {"a": 180}
    counts = assert_mixture(out, {"a": 200, "b": 200, "c": 40}, 157)
    # 157 * (0.5, 0.3, 0.2) = 78.5, 47.1, 31.4: floors 78, 47, 31, the 157th to a
    assert counts == {"a": 79, "b": 47, "c": 31}
    assert report["warnings"] == []
    # c's rows are its own, not a's copies
    assert all(
        r["conversations"][0]["value"].startswith("c task") for r in rows_by_source(out)["c"]
    )


def test_filters_merged_keeps_models():
    """A source's filters over the manifest's stay models (apply_filters reads `.min`)."""
    merged = Filters().merged(Filters(response_chars=Bounds(min=50)))
    assert merged.response_chars == Bounds(min=50)
    merged = Filters(prompt_chars=Bounds(max=9)).merged(
        Filters.model_validate({"ratio": {"min": 1}})
    )
    assert (merged.prompt_chars, merged.ratio) == (Bounds(max=9), Bounds(min=1))


def test_mix_by_weight_after_heavy_filtering_is_within_one_percent(tmp_path):
    """The same with the filter stage: c's short answers fail `response_chars`."""
    pytest.importorskip("composer.filters")
    long = "a long enough answer, well over fifty characters in all, number"
    c_rows = [
        {"instruction": f"c task {i}", "output": f"{long} {i}" if i % 7 == 0 else f"ok {i}"}
        for i in range(280)
    ]  # 40 long answers, 240 short
    sources = weighted(tmp_path, c_rows, filters={"response_chars": {"min": 50}})
    path = write_manifest(tmp_path, sources, mix={"total": 157})
    out = composer.build(path, output_dir=tmp_path / "out").output_dir
    c = next(s for s in report_of(out)["sources"] if s["name"] == "c")
    assert (c["records"], c["filtered"], c["after_dedup"]) == (280, 240, 40)
    assert sum(c["filtered_by"].values()) == 240
    assert assert_mixture(out, {"a": 200, "b": 200, "c": 40}, 157) == {"a": 79, "b": 47, "c": 31}
    assert all(len(r["conversations"][-1]["value"]) >= 50 for r in rows_by_source(out)["c"])


def test_a_short_source_shrinks_the_mixture_and_says_so(tmp_path):
    """Asked for 1,000 rows, c has 31 left: 31 / 0.2 = 155 rows at the exact shares."""
    c_rows = alpaca_rows("a", 100, "copy") + alpaca_rows("c", 31)
    path = write_manifest(tmp_path, weighted(tmp_path, c_rows), mix={"total": 1000})
    out = composer.build(path, output_dir=tmp_path / "out").output_dir
    counts = assert_mixture(out, {"a": 200, "b": 200, "c": 31}, 1000)
    # 155 * (0.5, 0.3, 0.2) = 77.5, 46.5, 31: a and b tie on .5, the name decides
    assert counts == {"a": 78, "b": 46, "c": 31}
    (warning,) = report_of(out)["warnings"]
    assert warning.startswith("mix: asked for 1,000 rows;")
    assert "allow 155 at the requested shares" in warning
    assert "c is the scarcest" in warning and "upsample: true" in warning
    assert f"> **Warning:** {warning}" in (out / "report.md").read_text(encoding="utf-8")
    # every row of the scarce source is used, once
    c_ids = [r["id"] for r in rows_by_source(out)["c"]]
    assert len(set(c_ids)) == len(c_ids) == 31


def test_upsample_repeats_the_short_source_to_reach_the_total(tmp_path):
    c_rows = alpaca_rows("a", 100, "copy") + alpaca_rows("c", 31)
    sources = weighted(tmp_path, c_rows)
    path = write_manifest(
        tmp_path, sources, mix={"total": 400, "upsample": True}, split={"validation": 0.1}
    )
    out = composer.build(path, output_dir=tmp_path / "out").output_dir
    by_source = rows_by_source(out)
    assert {n: len(by_source[n]) for n in WEIGHTS} == {"a": 200, "b": 120, "c": 80}
    report = report_of(out)
    assert report["mix"] == {"requested": 400, "achieved": 400}
    assert report["warnings"] == []
    # c: 80 rows from 31 items: every item twice (62), 18 of them a third time
    copies = Counter(r["id"] for r in by_source["c"])
    assert len(copies) == 31
    assert Counter(copies.values()) == {3: 18, 2: 13}
    # a and b are not repeated; a gives all it has, b a sample of it
    assert len({r["id"] for r in by_source["a"]}) == 200
    assert len({r["id"] for r in by_source["b"]}) == 120
    # the copies of an item are on one side of the split
    sides = defaultdict(set)
    for r in by_source["c"]:
        sides[r["id"]].add(r["split"])
    assert all(len(s) == 1 for s in sides.values())
    shares = {s["name"]: s["achieved_share"] for s in report["sources"]}
    assert shares == {"a": 0.5, "b": 0.3, "c": 0.2}


def test_upsample_with_an_empty_source_reports_the_real_total(tmp_path):
    sources = [
        source(tmp_path, "a", alpaca_rows("a", 50), confidence=3, weight=0.5),
        source(tmp_path, "c", alpaca_rows("a", 10, "copy"), confidence=1, weight=0.5),
    ]
    path = write_manifest(tmp_path, sources, mix={"total": 40, "upsample": True})
    out = composer.build(path, output_dir=tmp_path / "out").output_dir
    report = report_of(out)
    rows = len(read_parquet(out / "records.parquet"))
    assert report["mix"]["achieved"] == rows
    assert report["warnings"]  # that c could give nothing


def test_mix_spans_kinds_and_is_seeded(tmp_path):
    """SFT and DPO sources share one mixture; the same seed picks the same rows."""
    pairs = [{"prompt": f"p {i}", "chosen": "good", "rejected": "bad"} for i in range(60)]
    sources = [
        source(tmp_path, "a", alpaca_rows("a", 100), weight=3),
        source(tmp_path, "p", pairs, plugin="dpo", weight=1),
    ]
    path = write_manifest(tmp_path, sources, mix={"total": 90})
    one = rows_by_source(composer.build(path, output_dir=tmp_path / "one").output_dir)
    two = rows_by_source(composer.build(path, output_dir=tmp_path / "two").output_dir)
    seven = rows_by_source(composer.build(path, output_dir=tmp_path / "7", seed=7).output_dir)
    expected = mix_counts({"a": 100, "p": 60}, {"a": 3, "p": 1}, 90)
    assert expected == {"a": 68, "p": 22}  # 67.5 and 22.5: the tie to a
    for found in (one, two, seven):
        assert {n: len(rows) for n, rows in found.items()} == expected
    assert [r["id"] for r in one["a"]] == [r["id"] for r in two["a"]]
    assert [r["id"] for r in one["a"]] != [r["id"] for r in seven["a"]]
    # kept rows stay in upstream order
    order = {uuid5(f"a task {i}"): i for i in range(100)}  # the id: uuid5 of the instruction
    positions = [order[r["id"]] for r in one["a"]]
    assert positions == sorted(positions)


# ---------------------------------------------------------------- manifest errors


def mix_manifest(folder: Path, sources: str, top: str = "mix: {total: 100}") -> Path:
    """Line 1 the name, line 2 `top`, line 3 `sources:`, the sources from line 4."""
    write_jsonl(folder / "a.jsonl", alpaca_rows("a", 3))
    return write_manifest_text(folder, f"name: t\n{top}\nsources:\n{sources}\n")


@pytest.mark.parametrize(
    ("top", "sources", "message"),
    [
        (
            "seed: 1",
            "  - {name: a, plugin: alpaca, path: a.jsonl, weight: 0.5}",
            "line 4: sources[0].weight: a weight needs `mix: {total: N}` at the top",
        ),
        (
            "mix: {total: 100}",
            "  - {name: a, plugin: alpaca, path: a.jsonl, weight: 0.5}\n"
            "  - {name: b, plugin: alpaca, path: a.jsonl}",
            "line 5: sources[1]: with `mix`, every source needs a `weight`",
        ),
        (
            "mix: {total: 100}",
            "  - {name: a, plugin: alpaca, path: a.jsonl, weight: 0.5, sample: 10}",
            "line 4: sources[0].sample: give either sample or weight, not both",
        ),
        (
            "mix: {total: 100}",
            "  - {name: a, plugin: alpaca, path: a.jsonl, weight: 0}",
            "line 4: sources[0].weight: expected a number > 0, got 0",
        ),
        (
            "mix: {total: 0}",
            "  - {name: a, plugin: alpaca, path: a.jsonl, weight: 1}",
            "line 2: mix.total: expected a number > 0, got 0",
        ),
        (
            "mix: {total: 10, upsampel: true}",
            "  - {name: a, plugin: alpaca, path: a.jsonl, weight: 1}",
            "line 2: mix.upsampel: unknown key (did you mean 'upsample'?)",
        ),
        (
            "seed: 1",
            "  - {name: a, plugin: alpaca, path: a.jsonl, max_validation: -1}",
            "line 4: sources[0].max_validation: expected a number >= 0, got -1",
        ),
    ],
)
def test_mix_manifest_errors(tmp_path, top, sources, message):
    path = mix_manifest(tmp_path, sources, top)
    assert_user_error(invoke("validate", str(path)), f"{path}: invalid manifest\n  {message}")
    assert_user_error(invoke("build", str(path), "-q"), f"{path}: invalid manifest\n  {message}")


def test_a_mix_manifest_validates(tmp_path):
    sources = "  - {name: a, plugin: alpaca, path: a.jsonl, weight: 2, stratify: task}"
    path = mix_manifest(tmp_path, sources, "mix: {total: 10, upsample: true}")
    result = invoke("validate", str(path))
    assert result.exit_code == 0, result.output


def test_split_fractions_that_leave_no_training_are_refused(tmp_path):
    path = mix_manifest(
        tmp_path,
        "  - {name: a, plugin: alpaca, path: a.jsonl}",
        "split: {validation: 0.6, test: 0.5}",
    )
    result = invoke("validate", str(path))
    assert result.exit_code == 2 and "split" in result.stderr


# ---------------------------------------------------------------- stratified sampling

CATEGORIES = {"general": 50, "writing": 36, "roleplay": 20, "coding": 10, "trivia": 4}


def airoboros_rows(seed: int = 0) -> list[dict]:
    """120 rows in airoboros-3.2's schema over five categories (shuffled), and ten
    summarization rows that the plugin skips."""
    categories = [c for c, n in CATEGORIES.items() for _ in range(n)] + ["summarization"] * 10
    random.Random(seed).shuffle(categories)
    return [
        {
            "id": f"row-{i}",
            "category": category,
            "conversations": [
                {"from": "system", "value": "A chat."},
                {"from": "human", "value": f"{category} question {i}"},
                {"from": "gpt", "value": f"An answer to {i}."},
            ],
        }
        for i, category in enumerate(categories)
    ]


def stratum_quota(rows: list[dict], size: int) -> dict[str, int]:
    """`size` shared over the categories by their counts: largest remainder, a tie going to
    the category seen first in row order."""
    kept = [r["category"] for r in rows if r["category"] != "summarization"]
    counts = Counter(kept)
    first = {c: kept.index(c) for c in counts}
    exact = {c: Fraction(size * n, len(kept)) for c, n in counts.items()}
    quota = {c: math.floor(v) for c, v in exact.items()}
    for c in sorted(exact, key=lambda c: (-(exact[c] - quota[c]), first[c]))[
        : size - sum(quota.values())
    ]:
        quota[c] += 1
    return quota


def category_counts(out: Path, name: str = "airo") -> Counter:
    return Counter(json.loads(r["meta"])["category"] for r in rows_by_source(out)[name])


def test_stratified_sample_keeps_each_category_share(tmp_path):
    rows = airoboros_rows()
    entry = source(tmp_path, "airo", rows, plugin="airoboros", sample=30, stratify="category")
    path = write_manifest(tmp_path, [entry])
    out = composer.build(path, output_dir=tmp_path / "out").output_dir
    expected = stratum_quota(rows, 30)
    # 30/120 of 50, 36, 20, 10, 4 = 12.5, 9, 5, 2.5, 1: one of general/coding gets the 30th
    assert sum(expected.values()) == 30 and expected["writing"] == 9
    assert sorted([expected["general"], expected["coding"]]) == [2, 13]
    assert category_counts(out) == expected
    report = report_of(out)
    (funnel,) = report["sources"]
    assert (funnel["records"], funnel["after_dedup"], funnel["sampled"]) == (120, 120, 30)
    # kept rows stay in upstream order
    positions = [json.loads(r["meta"])["row"] for r in rows_by_source(out)["airo"]]
    assert positions == sorted(positions)


def test_stratified_sample_is_seeded(tmp_path):
    rows = airoboros_rows()
    entry = source(tmp_path, "airo", rows, plugin="airoboros", sample=30, stratify="category")
    path = write_manifest(tmp_path, [entry])

    def ids(out: Path) -> list[str]:
        return [r["id"] for r in rows_by_source(out)["airo"]]

    a = composer.build(path, output_dir=tmp_path / "a").output_dir
    b = composer.build(path, output_dir=tmp_path / "b").output_dir
    c = composer.build(path, output_dir=tmp_path / "c", seed=7).output_dir
    assert ids(a) == ids(b)
    assert ids(a) != ids(c)
    assert category_counts(a) == category_counts(c) == stratum_quota(rows, 30)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stratified_sample_by_fraction_and_with_mix(tmp_path, seed):
    rows = airoboros_rows(seed)
    fraction = source(tmp_path, "airo", rows, plugin="airoboros", sample=0.4, stratify="category")
    out = composer.build(write_manifest(tmp_path, [fraction]), output_dir=tmp_path / "f")
    assert category_counts(out.output_dir) == stratum_quota(rows, 48)
    # under a mix the solved count is stratified: 0.25 of 96 rows = 24 airoboros rows
    mixed = [
        source(tmp_path, "airo", rows, plugin="airoboros", weight=0.25, stratify="category"),
        source(tmp_path, "a", alpaca_rows("a", 200), weight=0.75),
    ]
    path = write_manifest(tmp_path, mixed, filename="mix.yaml", mix={"total": 96})
    out = composer.build(path, output_dir=tmp_path / "m").output_dir
    assert category_counts(out) == stratum_quota(rows, 24)
    assert len(rows_by_source(out)["a"]) == 72


def test_stratified_upsampling_repeats_every_row_then_a_stratified_share(tmp_path):
    rows = airoboros_rows()
    entry = source(tmp_path, "airo", rows, plugin="airoboros", sample="2.25x", stratify="category")
    out = composer.build(write_manifest(tmp_path, [entry]), output_dir=tmp_path / "out")
    copies = Counter(r["id"] for r in rows_by_source(out.output_dir)["airo"])
    assert Counter(copies.values()) == {3: 30, 2: 90}
    thrice = Counter(
        json.loads(r["meta"])["category"]
        for r in {r["id"]: r for r in rows_by_source(out.output_dir)["airo"]}.values()
        if copies[r["id"]] == 3
    )
    assert thrice == stratum_quota(rows, 30)


def test_stratify_on_a_missing_field_is_a_user_error(tmp_path):
    rows = airoboros_rows()
    entry = source(tmp_path, "airo", rows, plugin="airoboros", sample=30, stratify="categroy")
    with pytest.raises(UserError, match="categroy"):
        composer.build(write_manifest(tmp_path, [entry]), output_dir=tmp_path / "out")


# ---------------------------------------------------------------- splits


def three_way(folder: Path, shared: bool = True) -> list[dict]:
    """Two SFT sources and a DPO source whose prompts repeat 60 SFT instructions (or none)."""
    chats = [
        {
            "conversations": [
                {"from": "human", "value": f"chat {i}"},
                {"from": "gpt", "value": f"reply {i}"},
                {"from": "human", "value": f"more {i}"},
                {"from": "gpt", "value": f"reply again {i}"},
            ]
        }
        for i in range(70)
    ]
    pairs = [
        {"prompt": f"{'shared' if shared else 'own'} task {i}", "chosen": "good", "rejected": "bad"}
        for i in range(0, 120, 2)
    ] + [{"prompt": f"pair only {i}", "chosen": "good", "rejected": "bad"} for i in range(20)]
    return [
        source(folder, "tasks", alpaca_rows("shared", 120)),
        source(folder, "chats", chats, plugin="sharegpt"),
        source(folder, "pairs", pairs, plugin="dpo"),
    ]


FORMATS = ["alpaca", "chatml", "llama2"]


def ids_by_split(out: Path) -> tuple[dict[str, set[str]], dict[str, dict[str, set[str]]]]:
    """Record ids on each side, from every rendered parquet file (by kind) and from
    records.parquet; every rendered row carries its record's id."""
    records = read_parquet(out / "records.parquet")
    from_records: dict[str, set[str]] = defaultdict(set)
    for r in records:
        from_records[r["split"]].add(r["id"])
    rendered: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for kind in ("sft", "dpo"):
        for split in ("train", "validation", "test"):
            rows = read_rendered(out, kind, split)
            assert {r["format"] for r in rows} == set(FORMATS)
            rendered[kind][split].update(r["id"] for r in rows)
    return from_records, rendered


def test_no_dedup_key_in_two_splits_in_any_file_or_format(tmp_path):
    """The must-show: train, validation and test share no id, across kinds and formats."""
    path = write_manifest(
        tmp_path, three_way(tmp_path), formats=FORMATS, split={"validation": 0.1, "test": 0.05}
    )
    out = composer.build(path, output_dir=tmp_path / "out").output_dir
    from_records, rendered = ids_by_split(out)
    # the same instruction really is in both kinds (or the test would prove nothing)
    sft_ids = set().union(*rendered["sft"].values())
    dpo_ids = set().union(*rendered["dpo"].values())
    assert len(sft_ids & dpo_ids) == 60
    splits = ("train", "validation", "test")
    for found in (from_records, {s: rendered["sft"][s] | rendered["dpo"][s] for s in splits}):
        assert all(found[s] for s in splits)
        for i, one in enumerate(splits):
            for other in splits[i + 1 :]:
                assert not found[one] & found[other], (one, other)
    for kind in ("sft", "dpo"):
        for split in splits:
            assert rendered[kind][split] <= from_records[split]
    # and each shared instruction has one side in both kinds
    side = {i: s for s in splits for i in from_records[s]}
    for split in splits:
        assert all(side[i] == split for i in rendered["dpo"][split] & sft_ids)


def split_counts(by_source: dict[str, list[dict]], split: str) -> dict[str, int]:
    """Distinct ids of each source on one side."""
    return {n: len({r["id"] for r in rows if r["split"] == split}) for n, rows in by_source.items()}


def test_validation_and_test_quotas_per_source(tmp_path):
    path = write_manifest(
        tmp_path,
        three_way(tmp_path, shared=False),
        formats=FORMATS,
        split={"validation": 0.1, "test": 0.05},
    )
    result = composer.build(path, output_dir=tmp_path / "out")
    by_source = rows_by_source(result.output_dir)
    sizes = {n: len({r["id"] for r in rows}) for n, rows in by_source.items()}
    assert sizes == {"tasks": 120, "chats": 70, "pairs": 80}
    total = sum(sizes.values())
    for split, fraction in (("test", 0.05), ("validation", 0.1)):
        expected = largest_remainder(round(fraction * total), sizes)
        assert split_counts(by_source, split) == expected == validation_quota(sizes, fraction)
    # 270 ids: test 14 (6, 4, 4), validation 27 (12, 7, 8)
    funnels = {s["name"]: s for s in result.report["sources"]}
    assert {n: (f["train"], f["validation"], f["test"]) for n, f in funnels.items()} == {
        "tasks": (102, 12, 6),
        "chats": (59, 7, 4),
        "pairs": (68, 8, 4),
    }
    # the chats render one row per assistant turn: two per item, in every format
    outputs = result.report["outputs"]
    for fmt in FORMATS:
        assert outputs[f"formats/{fmt}/sft/test.parquet"] == 6 + 4 * 2
        assert outputs[f"formats/{fmt}/dpo/test.parquet"] == 4
        assert outputs[f"formats/{fmt}/sft/validation.parquet"] == 12 + 7 * 2
    # the untemplated shapes: one row per conversation, one per pair
    assert outputs["sft/messages/test.parquet"] == 6 + 4
    assert outputs["dpo/pairs/test.parquet"] == 4
    assert len(read_rendered(result.output_dir, "sft", "test")) == 42


def test_an_id_shared_across_kinds_follows_the_source_that_chose_it(tmp_path):
    """Each source gives its quota; an id another kind chose comes along, and nothing else."""
    path = write_manifest(
        tmp_path, three_way(tmp_path), formats=FORMATS, split={"validation": 0.1, "test": 0.05}
    )
    by_source = rows_by_source(composer.build(path, output_dir=tmp_path / "out").output_dir)
    sizes = {n: len({r["id"] for r in rows}) for n, rows in by_source.items()}
    assert sizes == {"tasks": 120, "chats": 70, "pairs": 80}  # dedup is by kind
    for split, fraction in (("test", 0.05), ("validation", 0.1)):
        quota = validation_quota(sizes, fraction)
        found = split_counts(by_source, split)
        ids = {n: {r["id"] for r in rows if r["split"] == split} for n, rows in by_source.items()}
        assert found["chats"] == quota["chats"]  # shares nothing
        for name, other in (("tasks", "pairs"), ("pairs", "tasks")):
            assert found[name] >= quota[name]
            assert len(ids[name] - ids[other]) <= quota[name]


def test_max_validation_caps_a_source_and_others_take_the_rest(tmp_path):
    sources = [
        source(tmp_path, "a", alpaca_rows("a", 100), max_validation=5),
        source(tmp_path, "b", alpaca_rows("b", 100)),
        source(tmp_path, "c", alpaca_rows("c", 50)),
        source(tmp_path, "d", alpaca_rows("d", 30), max_validation=0),
    ]
    path = write_manifest(tmp_path, sources, split={"validation": 0.2, "test": 10})
    result = composer.build(path, output_dir=tmp_path / "out")
    by_source = rows_by_source(result.output_dir)

    def count(split: str) -> dict[str, int]:
        return {n: sum(r["split"] == split for r in rows) for n, rows in by_source.items()}

    sizes = {"a": 100, "b": 100, "c": 50, "d": 30}
    caps = {"a": 5, "d": 0}
    # 0.2 of 280 = 56: a gives 5 (its cap), d none, the other 51 go 2:1 to b and c
    expected = capped_quota(sizes, 56, caps)
    assert expected == {"a": 5, "b": 34, "c": 17, "d": 0}
    assert count("validation") == expected == validation_quota(sizes, 0.2, caps)
    # the test split is not capped: 10 ids by size
    assert count("test") == largest_remainder(10, sizes) == {"a": 4, "b": 3, "c": 2, "d": 1}
    funnels = {s["name"]: s for s in result.report["sources"]}
    assert {n: f["validation"] for n, f in funnels.items()} == expected


def test_split_is_seeded_with_test_and_caps(tmp_path):
    sources = three_way(tmp_path)
    sources[0]["max_validation"] = 3
    path = write_manifest(tmp_path, sources, split={"validation": 0.1, "test": 0.05})

    def sides(out: Path) -> dict[str, str]:
        return {r["id"]: r["split"] for r in read_parquet(out / "records.parquet")}

    a = sides(composer.build(path, output_dir=tmp_path / "a").output_dir)
    b = sides(composer.build(path, output_dir=tmp_path / "b").output_dir)
    c = sides(composer.build(path, output_dir=tmp_path / "c", seed=3).output_dir)
    assert a == b
    assert a != c
    assert {"train", "validation", "test"} == set(a.values()) == set(c.values())


def test_an_id_another_kind_chose_for_validation_passes_max_validation(tmp_path):
    """No leak comes first: max_validation caps the ids a source chooses, and an id that a
    source of another kind chose for validation is validation in this one too."""
    tasks = [{"instruction": f"shared task {i}", "output": "x"} for i in range(100)]
    pairs = [{"prompt": f"shared task {i}", "chosen": "g", "rejected": "b"} for i in range(100)]
    sources = [
        source(tmp_path, "tasks", tasks, max_validation=3),
        source(tmp_path, "pairs", pairs, plugin="dpo"),
    ]
    path = write_manifest(tmp_path, sources, split={"validation": 0.2})
    by_source = rows_by_source(composer.build(path, output_dir=tmp_path / "out").output_dir)
    counts = split_counts(by_source, "validation")
    assert counts["tasks"] == counts["pairs"] > 3  # the pairs' choice, shared by the tasks


def test_validation_quota_goes_where_ids_are_left_after_test(tmp_path):
    sources = [
        source(tmp_path, "x", alpaca_rows("x", 1)),
        source(tmp_path, "y", alpaca_rows("y", 1)),
    ]
    path = write_manifest(tmp_path, sources, split={"validation": 1, "test": 1})
    totals = composer.build(path, output_dir=tmp_path / "out").totals
    assert (totals["train"], totals["validation"], totals["test"]) == (0, 1, 1)


# ---------------------------------------------------------------- validation_quota with caps


def test_quota_caps():
    sizes = {"a": 100, "b": 100, "c": 50}
    assert validation_quota(sizes, 0.2) == {"a": 20, "b": 20, "c": 10}
    assert validation_quota(sizes, 0.2, {"a": 5}) == {"a": 5, "b": 30, "c": 15}
    # a cap of 0: that source gives nothing, the others all
    assert validation_quota(sizes, 50, {"a": 0}) == {"a": 0, "b": 33, "c": 17}
    # None, a cap above the share and a cap above the size change nothing
    for caps in ({"a": None}, {"a": 20}, {"a": 1000}, {}):
        assert validation_quota(sizes, 0.2, caps) == {"a": 20, "b": 20, "c": 10}
    # caps that cascade: a's cap pushes b over its own
    assert validation_quota(sizes, 100, {"a": 10, "b": 50}) == {"a": 10, "b": 50, "c": 40}
    # every source capped below the target: each gives its cap, the split comes up short
    assert validation_quota(sizes, 0.5, {"a": 2, "b": 3, "c": 0}) == {"a": 2, "b": 3, "c": 0}
    assert validation_quota(sizes, 0.2, {"a": 0, "b": 0, "c": 0}) == {"a": 0, "b": 0, "c": 0}
    # a cap on an empty source, and no validation at all
    assert validation_quota({"a": 0, "b": 10}, 5, {"a": 3}) == {"a": 0, "b": 5}
    assert validation_quota(sizes, 0, {"a": 5}) == {"a": 0, "b": 0, "c": 0}


@given(
    st.dictionaries(st.sampled_from("abcdef"), st.integers(0, 300), min_size=1, max_size=6),
    st.dictionaries(st.sampled_from("abcdef"), st.one_of(st.none(), st.integers(0, 80))),
    st.one_of(st.floats(0, 0.99), st.integers(0, 1000)),
)
@settings(max_examples=300, deadline=None)
def test_quota_with_caps_invariants(sizes, caps, validation):
    quota = validation_quota(sizes, validation, caps)
    total = sum(sizes.values())
    limit = {n: s if caps.get(n) is None else min(s, caps[n]) for n, s in sizes.items()}
    assert set(quota) == set(sizes)
    assert all(0 <= quota[n] <= limit[n] for n in sizes)
    if not total or not validation:
        assert set(quota.values()) == {0}
        return
    target = round(validation * total) if isinstance(validation, float) else min(validation, total)
    assert sum(quota.values()) == min(target, sum(limit.values()))
    # a cap only ever moves ids to the others: nobody gives less than its uncapped floor
    for n, size in sizes.items():
        assert quota[n] >= min(limit[n], math.floor(target * size / total))


def test_quota_after_a_cap_is_a_largest_remainder_share():
    sizes, caps = {"a": 5, "b": 2, "c": 1}, {"a": 2}
    assert capped_quota(sizes, 4, caps) == {"a": 2, "b": 1, "c": 1}
    assert validation_quota(sizes, 4, caps) == {"a": 2, "b": 1, "c": 1}


def test_quota_ties_go_to_the_first_name():
    sizes = {"a": 46, "b": 4, "c": 48}
    assert largest_remainder(35, sizes) == {"a": 17, "b": 1, "c": 17}
    assert validation_quota(sizes, 35) == {"a": 17, "b": 1, "c": 17}


# ---------------------------------------------------------------- solve_mix


def test_solve_mix_one_source():
    mix = solve_mix({"a": 10}, {"a": 0.3}, 7, upsample=False)
    assert (mix.counts, mix.requested, mix.total) == ({"a": 7}, {"a": 1.0}, 7)
    mix = solve_mix({"a": 10}, {"a": 2}, 50, upsample=False)
    assert (mix.counts, mix.total) == ({"a": 10}, 10)
    mix = solve_mix({"a": 10}, {"a": 2}, 50, upsample=True)
    assert (mix.counts, mix.total) == ({"a": 50}, 50)
    mix = solve_mix({"a": 0}, {"a": 1}, 50, upsample=False)
    assert (mix.counts, mix.total) == ({"a": 0}, 0)


def test_solve_mix_rounding():
    weights = {"a": 0.5, "b": 0.3, "c": 0.2}
    plenty = dict.fromkeys(weights, 10_000)
    for total in (1, 2, 3, 7, 10, 157, 999, 1001):
        mix = solve_mix(plenty, weights, total, upsample=False)
        assert mix.counts == mix_counts(plenty, weights, total), total
        assert mix.total == total
    assert solve_mix(plenty, weights, 157, False).counts == {"a": 79, "b": 47, "c": 31}
    # weights need not sum to one
    assert solve_mix(plenty, {"a": 2, "b": 1, "c": 1}, 10, False).counts == {
        "a": 5,
        "b": 3,
        "c": 2,
    }
    assert solve_mix(plenty, {"a": 1, "b": 1, "c": 1}, 10, False).counts == {
        "a": 4,
        "b": 3,
        "c": 3,
    }
    mix = solve_mix(plenty, weights, 10, False)
    assert mix.requested == {"a": 0.5, "b": 0.3, "c": 0.2}


def test_solve_mix_shrinks_to_the_scarcest_source_or_upsamples():
    weights = {"a": 0.5, "b": 0.3, "c": 0.2}
    available = {"a": 1000, "b": 40, "c": 1000}  # b fits 40 / 0.3 = 133 rows
    mix = solve_mix(available, weights, 500, upsample=False)
    assert mix.total == 133
    # 133 * (0.5, 0.3, 0.2) = 66.5, 39.9, 26.6: floors 66, 39, 26, then b and c
    assert mix.counts == mix_counts(available, weights, 500) == {"a": 66, "b": 40, "c": 27}
    mix = solve_mix(available, weights, 500, upsample=True)
    assert (mix.counts, mix.total) == ({"a": 250, "b": 150, "c": 100}, 500)
    # a source with nothing left empties the mixture without upsampling
    mix = solve_mix({"a": 100, "b": 0}, {"a": 1, "b": 1}, 50, upsample=False)
    assert (mix.counts, mix.total) == ({"a": 0, "b": 0}, 0)


@given(
    st.dictionaries(
        st.sampled_from("abcde"),
        st.tuples(st.integers(0, 500), st.sampled_from([0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 3])),
        min_size=1,
    ),
    st.integers(1, 2000),
    st.booleans(),
)
@settings(max_examples=300, deadline=None)
def test_solve_mix_invariants(sources, total, upsample):
    available = {n: a for n, (a, _) in sources.items()}
    weights = {n: w for n, (_, w) in sources.items()}
    mix = solve_mix(available, weights, total, upsample)
    assert mix.total == sum(mix.counts.values()) <= total
    assert all(mix.counts[n] == 0 for n in available if not available[n])
    if upsample and not all(available.values()):
        return  # an empty source gives nothing: the others keep their counts, below
    if upsample:
        assert mix.total == total
    else:
        assert all(mix.counts[n] <= available[n] for n in available)
    # every count is the floor or ceiling of its exact share of the total reached
    weight_sum = sum(Fraction(str(w)) for w in weights.values())
    for n, w in weights.items():
        exact = mix.total * Fraction(str(w)) / weight_sum
        assert math.floor(exact) <= mix.counts[n] <= math.ceil(exact)


def test_solve_mix_ties_go_to_the_first_name():
    weights = {"a": 0.2, "b": 1, "c": 1, "d": 0.2}
    plenty = dict.fromkeys(weights, 1000)
    assert mix_counts(plenty, weights, 18) == {"a": 2, "b": 8, "c": 7, "d": 1}
    assert solve_mix(plenty, weights, 18, upsample=False).counts == {
        "a": 2,
        "b": 8,
        "c": 7,
        "d": 1,
    }


# ---------------------------------------------------------------- meta_field


def metas(*values: dict) -> pa.Table:
    return pa.table({"meta": pa.array([json.dumps(v) for v in values], pa.string())})


def test_meta_field_top_level_and_nested():
    table = metas({"task": "a", "scores": {"help": 3}}, {"task": "b", "scores": {"help": 1.5}}, {})
    assert meta_field(table, "task").to_pylist() == ["a", "b", None]
    assert meta_field(table, "scores.help").to_pylist() == [3.0, 1.5, None]
    deep = metas({"x": {"y": {"z": "deep"}}}, {"x": {"y": {}}}, {"x": 1})
    assert meta_field(deep, "x.y.z").to_pylist() == ["deep", None, None]


def test_meta_field_missing_gives_nulls():
    table = metas({"task": "a"}, {"task": "b"})
    for path in ("nope", "task.sub", "nope.sub"):
        found = meta_field(table, path)
        assert len(found) == 2 and found.null_count == 2, path
    assert len(meta_field(metas(), "task")) == 0
    assert meta_field(metas({}, {}), "task").to_pylist() == [None, None]


def test_meta_field_mixed_types():
    # numbers and strings: all as strings
    assert meta_field(metas({"k": 1}, {"k": "a"}, {"k": None}, {}), "k").to_pylist() == [
        "1",
        "a",
        None,
        None,
    ]
    # ints and floats: numbers
    found = meta_field(metas({"k": 1}, {"k": 2.5}), "k")
    assert found.to_pylist() == [1.0, 2.5] and pa.types.is_floating(found.type)
    # a value that is an object in some rows and a string in others: the objects are null
    assert meta_field(metas({"k": "a"}, {"k": {"z": 1}}), "k").to_pylist() == ["a", None]
    assert meta_field(metas({"k": {"z": 1}}, {"k": "a"}, {"k": {"z": "b"}}), "k.z").to_pylist() == [
        "1",
        None,
        "b",
    ]
    # a type that changes far down a big column (past Arrow's first block) still parses
    many = metas(*({"k": i} for i in range(50_000)), {"k": "late"})
    found = meta_field(many, "k")
    assert found.type == pa.string() and found[0].as_py() == "0" and found[-1].as_py() == "late"


def test_meta_field_treats_true_and_false_alike():
    found = meta_field(metas({"k": 1}, {"k": True}, {"k": False}), "k").to_pylist()
    assert (found[1] is None) == (found[2] is None)
    found = meta_field(metas({"k": "a"}, {"k": True}, {"k": False}), "k").to_pylist()
    assert (found[1] is None) == (found[2] is None)
