"""`composer.build` end to end: the demo, the report's funnel, sampling, output files,
byte-identical rebuilds and atomic replacement of the output folder.

Every fixture is written by the test into tmp_path in its upstream schema; outputs are read
back with pyarrow (and json for the jsonl / JSON-list copies). No mocks.
"""

from __future__ import annotations

import json
import os
import stat
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import composer
from composer.errors import InputError, TemplateError, UserError
from composer.report import STAGES, shown_stages
from tests.helpers import (
    DEMO,
    ROOT,
    invoke,
    read_parquet,
    read_rendered,
    snapshot,
    write_jsonl,
    write_manifest,
)

# ---------------------------------------------------------------- helpers


def alpaca_source(folder: Path, name: str, n: int, prefix: str | None = None, **extra) -> dict:
    rows = [
        {"instruction": f"{prefix or name} task {i}", "output": f"{name} answer {i}"}
        for i in range(n)
    ]
    return {
        "name": name,
        "plugin": "alpaca",
        "path": write_jsonl(folder / f"{name}.jsonl", rows),
        **extra,
    }


def full_mixture(folder: Path) -> list[dict]:
    """SFT (multi-turn, duplicates, invalid rows), DPO, text: every stage has work to do."""
    chats = []
    for i in range(30):
        turns = [
            {"from": "human", "value": f"chat question {i % 24}"},
            {"from": "gpt", "value": f"answer {i} — ünïcødé"},
        ]
        if i % 3 == 0:
            turns += [
                {"from": "human", "value": f"follow-up {i}"},
                {"from": "gpt", "value": f"second answer {i}"},
            ]
        chats.append({"conversations": turns})
    chats.append({"conversations": [{"from": "gpt", "value": "no question"}]})
    chats.append({"conversations": [{"from": "human", "value": "no answer"}]})
    tasks = [
        {"instruction": f"chat question {i}" if i < 5 else f"task {i}", "output": f"done {i}"}
        for i in range(20)
    ]
    tasks.append({"instruction": "empty answer", "output": ""})
    pairs = [
        {"prompt": f"pair {i}", "chosen": f"yes {i}", "rejected": f"no {i}"} for i in range(16)
    ]
    text = [
        {"text": "\n\n".join(f"Story {i}, paragraph {p}. " + "word " * 30 for p in range(3))}
        for i in range(5)
    ]
    return [
        {
            "name": "chat",
            "plugin": "sharegpt",
            "confidence": 2,
            "path": write_jsonl(folder / "chat.jsonl", chats),
        },
        {
            "name": "tasks",
            "plugin": "alpaca",
            "sample": 1.5,
            "path": write_jsonl(folder / "tasks.jsonl", tasks),
        },
        {
            "name": "pairs",
            "plugin": "dpo",
            "sample": 0.75,
            "path": write_jsonl(folder / "pairs.jsonl", pairs),
        },
        {
            "name": "stories",
            "plugin": "text",
            "options": {"max_chunk_size": 300},
            "path": write_jsonl(folder / "stories.jsonl", text),
        },
    ]


def full_manifest(folder: Path, **extra) -> Path:
    options = {
        "formats": ["chatml", "alpaca", "vicuna"],
        "split": {"validation": 0.2},
        "system_prompt": {"default": "Be helpful.", "probability": 0.5},
        **extra,
    }
    return write_manifest(folder, full_mixture(folder), **options)


def check_funnel(report: dict, out: Path) -> None:
    """Every invariant the report promises, checked against the files on disk."""
    sources = report["sources"]
    for s in sources:
        if s["plugin"] != "text":  # 1:1 plugins; text splits a row into chunks
            assert s["rows_read"] == s["rejected"] + s["records"], s["name"]
        lost = s["filtered"] + s["duplicates"] + s["near_duplicates"]
        assert s["records"] == lost + s["after_dedup"], s["name"]
        assert s["sampled"] == s["train"] + s["validation"], s["name"]
        assert sum(s["lost_to"].values()) == s["duplicates"], s["name"]
        assert sum(s["rejected_by_reason"].values()) == s["rejected"], s["name"]
        assert len(s["rejected_examples"]) == min(s["rejected"], 5)
        assert s["sample_requested"] is None or s["sample_requested"] > s["after_dedup"]
    totals = report["totals"]
    for stage in STAGES:
        assert totals[stage] == sum(s[stage] for s in sources), stage
    per_format = Counter()
    for s in sources:
        for split, by_format in s["rows_out"].items():
            for fmt, n in by_format.items():
                per_format[f"{split}/{fmt}"] += n
    assert totals["rows_out"] == dict(per_format)

    # The files: every output listed, with its row count, and nothing written but those.
    outputs = report["outputs"]
    for rel, n in outputs.items():
        path = out / rel
        if rel.endswith(".parquet"):
            assert pq.read_metadata(path).num_rows == n, rel
        else:
            assert len(path.read_text(encoding="utf-8").splitlines()) == n, rel
    on_disk = {str(p.relative_to(out)) for p in out.rglob("*.parquet")}
    assert on_disk == {k for k in outputs if k.endswith(".parquet")}
    assert outputs["records.parquet"] == totals["sampled"]
    assert outputs["rejected.jsonl"] == totals["rejected"]

    # rows_out per source, split and format equals what the rendered files hold
    kind_of = {s["name"]: s["kind"] for s in sources}
    for kind in ("sft", "dpo", "text"):
        for split in ("train", "validation"):
            expected = sum(
                n
                for s in sources
                if s["kind"] == kind
                for n in s["rows_out"].get(split, {}).values()
            )
            if kind == "text":
                rel = f"text/{split}.parquet"
                rows = read_parquet(out / rel) if rel in outputs else []
            else:
                rows = read_rendered(out, kind, split)
            assert len(rows) == expected, (kind, split)
            counted = Counter((r["source"], r.get("format", "text")) for r in rows)
            assert all(kind_of[name] == kind for name, _ in counted)
            assert counted == Counter(
                {
                    (s["name"], fmt): n
                    for s in sources
                    for fmt, n in s["rows_out"].get(split, {}).items()
                    if s["kind"] == kind
                }
            )
    # the untemplated shapes: one row per conversation, one per pair
    for shape, kind in (("sft/messages", "sft"), ("dpo/pairs", "dpo")):
        for split in ("train", "validation"):
            rel = f"{shape}/{split}.parquet"
            records = sum(s[split] for s in sources if s["kind"] == kind)
            assert outputs.get(rel, 0) == records, rel
    # records.parquet holds each source's sampled rows, split as the funnel says
    records = Counter((r["source"], r["split"]) for r in read_parquet(out / "records.parquet"))
    for s in sources:
        assert records[(s["name"], "train")] == s["train"]
        assert records[(s["name"], "validation")] == s["validation"]
    # report.json on disk is the report returned, and the markdown has the totals row
    assert json.loads((out / "report.json").read_text(encoding="utf-8")) == report
    md = (out / "report.md").read_text(encoding="utf-8")
    shown = shown_stages(report)  # near duplicates where near dedup ran
    assert "| **total** |  |  | " + " | ".join(f"{totals[k]:,}" for k in shown) + " |" in md


# ---------------------------------------------------------------- the demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    result = composer.build(DEMO, output_dir=out)
    return result, out


def test_demo_funnel(demo):
    result, out = demo
    assert result.output_dir == out.resolve()
    s = {f["name"]: f for f in result.report["sources"]}
    got = {
        name: (f["rows_read"], f["rejected"], f["duplicates"], f["lost_to"])
        for name, f in s.items()
    }
    assert got == {
        "sharegpt": (80, 1, 0, {}),
        "alpaca": (120, 2, 35, {"sharegpt": 30, "alpaca": 5}),
        "chat": (60, 1, 10, {"alpaca": 10}),
        "hh": (60, 1, 0, {}),
        "dpo_pairs": (40, 0, 5, {"hh": 5}),
        "stories": (10, 0, 0, {}),
    }
    assert (s["dpo_pairs"]["after_dedup"], s["dpo_pairs"]["sampled"]) == (35, 28)
    assert (s["stories"]["records"], s["stories"]["after_dedup"]) == (28, 28)
    assert s["alpaca"]["rejected_by_reason"] == {"empty turn": 1, "unreadable row": 1}
    assert s["sharegpt"]["rejected_by_reason"] == {"wrong role order": 1}
    assert s["chat"]["rejected_by_reason"] == {"no answer": 1}
    assert result.report["formats"] == ["alpaca", "vicuna", "chatml", "llama2"]
    assert result.totals["validation"] > 0


def test_demo_funnel_adds_up(demo):
    result, out = demo
    check_funnel(result.report, out)
    assert {p.name for p in out.iterdir()} == {
        "records.parquet",
        "sft",
        "dpo",
        "text",
        "formats",
        "axolotl",
        "dataset_info.json",
        "report.json",
        "report.md",
        "report.html",
        "README.md",
        "composer.lock",
        "rejected.jsonl",
    }
    rejected = [
        json.loads(line)
        for line in (out / "rejected.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert Counter(r["source"] for r in rejected) == {
        "sharegpt": 1,
        "alpaca": 2,
        "chat": 1,
        "hh": 1,
    }
    assert all(r["reason"] and r["where"] for r in rejected)


def test_demo_leaves_nothing_beside_its_output(demo):
    _, out = demo
    assert [p.name for p in out.parent.iterdir()] == ["out"]
    assert not [p.name for p in (ROOT / "manifests").iterdir() if p.name.startswith(".")]


def test_full_mixture_funnel_adds_up(tmp_path):
    result = composer.build(full_manifest(tmp_path), output_dir=tmp_path / "out")
    # Each stage's wall time is in the result, and nowhere in the output folder.
    stages = ["load", "dedup", "pack, mix, sample, split", "render and write", "report"]
    if "decontaminate" in (tmp_path / "manifest.yaml").read_text():
        stages.insert(2, "decontaminate")
    assert list(result.timings) == stages
    assert all(seconds >= 0 for seconds in result.timings.values())
    assert sum(result.timings.values()) > 0
    assert "timings" not in (tmp_path / "out" / "report.json").read_text()
    check_funnel(result.report, result.output_dir)
    s = {f["name"]: f for f in result.report["sources"]}
    assert (s["chat"]["rows_read"], s["chat"]["rejected"], s["chat"]["duplicates"]) == (32, 2, 6)
    assert (s["tasks"]["rows_read"], s["tasks"]["rejected"], s["tasks"]["duplicates"]) == (21, 1, 5)
    assert s["tasks"]["lost_to"] == {"chat": 5}
    assert (s["tasks"]["after_dedup"], s["tasks"]["sampled"]) == (15, 15 + 8)  # factor 1.5
    assert s["pairs"]["sampled"] == 12
    assert s["stories"]["records"] > s["stories"]["rows_read"]
    # multi-turn chats give one row per answer in each format
    chat_rows = sum(s["chat"]["rows_out"][split]["chatml"] for split in s["chat"]["rows_out"])
    records = [
        r for r in read_parquet(result.output_dir / "records.parquet") if r["source"] == "chat"
    ]
    assert chat_rows == sum(sum(t["from"] == "gpt" for t in r["conversations"]) for r in records)


# ---------------------------------------------------------------- sampling


def sampled_rows(out: Path, source: str) -> list[dict]:
    return [r for r in read_parquet(out / "records.parquet") if r["source"] == source]


def test_sample_fraction_keeps_upstream_order(tmp_path):
    path = write_manifest(tmp_path, [alpaca_source(tmp_path, "a", 40, sample=0.25)])
    result = composer.build(path, output_dir=tmp_path / "out")
    rows = sampled_rows(result.output_dir, "a")
    positions = [json.loads(r["meta"])["row"] for r in rows]
    assert len(rows) == 10 == result.report["sources"][0]["sampled"]
    assert positions == sorted(positions) and len(set(positions)) == 10
    assert result.report["sources"][0]["sample_requested"] is None


@pytest.mark.parametrize("spec", [7, {"count": 7}])
def test_sample_count(tmp_path, spec):
    path = write_manifest(tmp_path, [alpaca_source(tmp_path, "a", 30, sample=spec)])
    result = composer.build(path, output_dir=tmp_path / "out")
    rows = sampled_rows(result.output_dir, "a")
    assert len(rows) == 7 and len({r["id"] for r in rows}) == 7
    assert result.report["sources"][0]["sample_requested"] is None


def test_sample_count_larger_than_available(tmp_path):
    path = write_manifest(tmp_path, [alpaca_source(tmp_path, "a", 20, sample=50)])
    result = composer.build(path, output_dir=tmp_path / "out")
    s = result.report["sources"][0]
    assert (s["after_dedup"], s["sampled"], s["sample_requested"]) == (20, 20, 50)
    assert len(sampled_rows(result.output_dir, "a")) == 20
    md = (result.output_dir / "report.md").read_text(encoding="utf-8")
    assert "- a: asked for 50 rows, 20 available" in md


def test_sample_count_of_a_source_emptied_by_dedup_is_reported(tmp_path):
    sources = [
        alpaca_source(tmp_path, "winner", 5, prefix="same", confidence=2),
        alpaca_source(tmp_path, "loser", 5, prefix="same", sample=3),
    ]
    result = composer.build(write_manifest(tmp_path, sources), output_dir=tmp_path / "out")
    s = {f["name"]: f for f in result.report["sources"]}["loser"]
    assert (s["after_dedup"], s["sampled"]) == (0, 0)
    assert s["sample_requested"] == 3


@pytest.mark.parametrize("spec", [2.5, "2.5x", {"factor": 2.5}])
def test_sample_factor_upsamples(tmp_path, spec):
    path = write_manifest(
        tmp_path, [alpaca_source(tmp_path, "a", 10, sample=spec)], split={"validation": 0.3}
    )
    result = composer.build(path, output_dir=tmp_path / "out")
    rows = sampled_rows(result.output_dir, "a")
    copies = Counter(r["id"] for r in rows)
    assert len(rows) == 25 == result.report["sources"][0]["sampled"]
    assert len(copies) == 10 and min(copies.values()) == 2
    assert Counter(copies.values()) == {2: 5, 3: 5}
    # upsampled copies are whole records, and all copies of one go to one side
    by_id = defaultdict(set)
    for r in rows:
        by_id[r["id"]].add((r["split"], json.dumps(r["conversations"])))
    assert all(len(v) == 1 for v in by_id.values())
    s = result.report["sources"][0]
    assert s["train"] + s["validation"] == 25
    sft = read_rendered(result.output_dir, "sft") + read_rendered(
        result.output_dir, "sft", "validation"
    )
    assert len(sft) == 25


def test_sample_factor_below_one_and_whole(tmp_path):
    sources = [
        alpaca_source(tmp_path, "half", 10, sample="0.5x"),
        alpaca_source(tmp_path, "triple", 4, sample=3.0),
    ]
    result = composer.build(write_manifest(tmp_path, sources), output_dir=tmp_path / "out")
    assert len(sampled_rows(result.output_dir, "half")) == 5
    assert Counter(
        Counter(r["id"] for r in sampled_rows(result.output_dir, "triple")).values()
    ) == {3: 4}


def test_sampling_is_seeded_and_per_source(tmp_path):
    def picked(name: str, seed: int, other_sample) -> list[int]:
        folder = tmp_path / f"{name}"
        folder.mkdir()
        sources = [
            alpaca_source(folder, "a", 40, sample=0.5),
            alpaca_source(folder, "b", 40, sample=other_sample),
        ]
        out = composer.build(
            write_manifest(folder, sources), output_dir=folder / "out", seed=seed
        ).output_dir
        return [json.loads(r["meta"])["row"] for r in sampled_rows(out, "a")]

    first = picked("one", 42, 0.5)
    assert first == picked("two", 42, 0.5)
    assert first == picked("three", 42, 11)  # another source's sample changes nothing here
    assert first != picked("four", 43, 0.5)
    assert len(picked("five", 43, 0.5)) == 20


# ---------------------------------------------------------------- determinism and files


def test_two_builds_are_byte_identical(tmp_path):
    path = full_manifest(tmp_path, output={"jsonl": True, "json": True})
    a = composer.build(path, output_dir=tmp_path / "a").output_dir
    b = composer.build(path, output_dir=tmp_path / "elsewhere" / "b").output_dir
    first, second = snapshot(a), snapshot(b)
    assert first.keys() == second.keys()
    assert {
        "records.parquet",
        "report.json",
        "report.md",
        "rejected.jsonl",
        "sft/messages/train.parquet",
        "sft/messages/train.jsonl",
        "sft/alpaca/train.json",
        "formats/chatml/sft/train.jsonl",
        "dpo/pairs/validation.parquet",
        "formats/chatml/dpo/validation.parquet",
        "text/train.jsonl",
    } <= first.keys()
    for rel in first:
        assert first[rel] == second[rel], rel
    # and a rebuild over the first output gives it again
    composer.build(path, output_dir=a)
    assert snapshot(a) == first


def test_jsonl_and_json_copies_equal_the_parquet(tmp_path):
    path = full_manifest(tmp_path, output={"jsonl": True, "json": True})
    out = composer.build(path, output_dir=tmp_path / "out").output_dir
    parquets = sorted(p for p in out.rglob("*.parquet") if p.parent != out)
    assert len(parquets) == 20  # messages, alpaca, pairs, text; 3 formats × sft, dpo; 2 splits
    for p in parquets:
        rows = read_parquet(p)
        lines = p.with_suffix(".jsonl").read_text(encoding="utf-8").splitlines()
        assert [json.loads(line) for line in lines] == rows, p
        as_list = json.loads(p.with_suffix(".json").read_text(encoding="utf-8"))
        assert isinstance(as_list, list) and as_list == rows, p
    sft = json.loads((out / "formats/chatml/sft/train.json").read_text(encoding="utf-8"))
    assert {"id", "source", "turn", "prompt", "completion"} == set(sft[0])
    assert "ünïcødé" in (out / "sft/messages/train.jsonl").read_text(encoding="utf-8")


def test_no_copies_unless_asked(tmp_path):
    out = composer.build(full_manifest(tmp_path), output_dir=tmp_path / "out").output_dir
    configs = ("report.json", "dataset_info.json")
    assert not [p for p in out.rglob("*") if p.suffix == ".json" and p.name not in configs]
    assert [p.name for p in out.rglob("*.jsonl")] == ["rejected.jsonl"]


def test_rendered_rows_have_the_documented_columns(tmp_path):
    out = composer.build(full_manifest(tmp_path), output_dir=tmp_path / "out").output_dir
    names = {
        "sft/messages": ["id", "source", "messages"],
        "sft/alpaca": ["id", "source", "instruction", "input", "output", "system"],
        "dpo/pairs": [
            "id",
            "source",
            "prompt",
            "chosen",
            "rejected",
            "chosen_message",
            "rejected_message",
        ],
        "text": ["id", "source", "text"],
        "formats/chatml/sft": ["id", "source", "turn", "prompt", "completion"],
        "formats/chatml/dpo": ["id", "source", "prompt", "chosen", "rejected"],
    }
    for folder, columns in names.items():
        assert pq.read_schema(out / folder / "train.parquet").names == columns, folder
    assert "split" in pq.read_schema(out / "records.parquet").names


# ---------------------------------------------------------------- atomic output


def good_output(tmp_path: Path) -> tuple[Path, dict]:
    """Build a good output in its own parent folder; return it and a byte snapshot."""
    good = write_manifest(
        tmp_path,
        [alpaca_source(tmp_path, "a", 12)],
        filename="good.yaml",
        split={"validation": 0.25},
    )
    parent = tmp_path / "outputs"
    parent.mkdir()
    out = composer.build(good, output_dir=parent / "result").output_dir
    return out, snapshot(out)


def strict_manifest(folder: Path, rows: list[dict]) -> Path:
    """bad.yaml: one alpaca source `strict` with `on_invalid: fail`, read from strict.jsonl."""
    source = {
        "name": "strict",
        "plugin": "alpaca",
        "on_invalid": "fail",
        "path": write_jsonl(folder / "strict.jsonl", rows),
    }
    return write_manifest(folder, [source], filename="bad.yaml")


def test_failed_build_leaves_the_previous_output_untouched(tmp_path):
    out, before = good_output(tmp_path)
    rows = [{"instruction": "fine", "output": "ok"}, {"instruction": "bad", "output": ""}]
    bad = strict_manifest(tmp_path, rows)
    with pytest.raises(InputError, match=r"on_invalid: fail"):
        composer.build(bad, output_dir=out)
    assert snapshot(out) == before
    assert [p.name for p in out.parent.iterdir()] == ["result"]


def test_template_error_leaves_the_previous_output_untouched(tmp_path):
    out, before = good_output(tmp_path)
    templates = tmp_path / "templates"
    templates.mkdir()
    # Renders the probe conversations fine, fails on a row that mentions BOOM.
    (templates / "fragile.jinja").write_text(
        '{%- for m in messages -%}{%- if "BOOM" in m["content"] -%}{{ missing }}{%- endif -%}'
        '{{- m["role"] ~ ": " ~ m["content"] ~ "\\n" -}}{%- endfor -%}'
        "{%- if add_generation_prompt -%}assistant: {% endif -%}",
        encoding="utf-8",
    )
    # The first source renders (and is written to the temporary folder); the second fails.
    rows = [{"instruction": "calm", "output": "ok"}, {"instruction": "BOOM", "output": "ok"}]
    sources = [
        alpaca_source(tmp_path, "fine", 30, confidence=2),
        {"name": "x", "plugin": "alpaca", "path": write_jsonl(tmp_path / "x.jsonl", rows)},
    ]
    bad = write_manifest(
        tmp_path,
        sources,
        filename="bad.yaml",
        formats=["fragile", "chatml"],
        templates_dir="templates",
        output={"jsonl": True, "json": True},
    )
    with pytest.raises(TemplateError, match="fragile"):
        composer.build(bad, output_dir=out)
    assert snapshot(out) == before
    assert [p.name for p in out.parent.iterdir()] == ["result"]


def test_successful_rebuild_replaces_the_whole_folder(tmp_path):
    path = full_manifest(tmp_path, output={"jsonl": True})
    out = composer.build(path, output_dir=tmp_path / "outputs" / "result").output_dir
    assert (out / "sft/messages/train.jsonl").exists()
    (out / "stale.txt").write_text("from before", encoding="utf-8")
    small = write_manifest(tmp_path, [alpaca_source(tmp_path, "only", 4)], filename="small.yaml")
    composer.build(small, output_dir=out)
    assert not (out / "stale.txt").exists()
    assert not (out / "sft/messages/train.jsonl").exists() and not (out / "dpo").exists()
    assert pq.read_metadata(out / "records.parquet").num_rows == 4
    assert [p.name for p in out.parent.iterdir()] == ["result"]


@pytest.mark.parametrize("occupant", ["folder", "file"])
def test_refuses_a_target_that_is_not_a_composer_output(tmp_path, occupant):
    path = write_manifest(tmp_path, [alpaca_source(tmp_path, "a", 5)])
    parent = tmp_path / "outputs"
    parent.mkdir()
    target = parent / "mine"
    if occupant == "folder":
        target.mkdir()
        (target / "thesis.tex").write_text("precious", encoding="utf-8")
        (target / "data").mkdir()
        (target / "data" / "x.parquet").write_bytes(b"not ours")
    else:
        target.write_text("precious", encoding="utf-8")
    before = snapshot(parent)
    with pytest.raises(UserError, match="not a composer output folder"):
        composer.build(path, output_dir=target)
    assert snapshot(parent) == before
    assert [p.name for p in parent.iterdir()] == ["mine"]


def test_an_empty_folder_is_a_fine_target(tmp_path):
    path = write_manifest(tmp_path, [alpaca_source(tmp_path, "a", 5)])
    target = tmp_path / "empty"
    target.mkdir()
    composer.build(path, output_dir=target)
    assert pq.read_metadata(target / "records.parquet").num_rows == 5


def test_a_foreign_report_json_does_not_make_a_folder_ours(tmp_path):
    path = write_manifest(tmp_path, [alpaca_source(tmp_path, "a", 5)])
    target = tmp_path / "project"
    target.mkdir()
    (target / "report.json").write_text('{"coverage": 0.93}', encoding="utf-8")
    (target / "thesis.tex").write_text("precious", encoding="utf-8")
    with pytest.raises(UserError, match="not a composer output folder"):
        composer.build(path, output_dir=target)
    assert (target / "thesis.tex").read_text(encoding="utf-8") == "precious"


def test_output_folder_gets_ordinary_permissions(tmp_path):
    path = write_manifest(tmp_path, [alpaca_source(tmp_path, "a", 5)])
    reference = tmp_path / "made_by_mkdir"
    reference.mkdir()
    out = composer.build(path, output_dir=tmp_path / "out").output_dir
    assert stat.S_IMODE(out.stat().st_mode) == stat.S_IMODE(reference.stat().st_mode)


def test_a_leftover_from_a_killed_build_does_not_break_the_next(tmp_path):
    out, _ = good_output(tmp_path)
    leftover = out.parent / f".{out.name}.old-{os.getpid()}"
    leftover.mkdir()
    (leftover / "records.parquet").write_bytes(b"half of an old build")
    path = write_manifest(tmp_path, [alpaca_source(tmp_path, "b", 3)])
    try:
        composer.build(path, output_dir=out)
    finally:
        assert not [p.name for p in out.parent.iterdir() if ".tmp-" in p.name]
    assert pq.read_metadata(out / "records.parquet").num_rows == 3


def test_cli_build_errors_exit_2_and_keep_the_output(tmp_path):
    out, before = good_output(tmp_path)
    rows = [{"instruction": "bad", "output": ""}]
    bad = strict_manifest(tmp_path, rows)
    result = invoke("build", str(bad), "-o", str(out), "-q")
    assert result.exit_code == 2
    assert result.output.startswith("Error: sources[0] (strict): strict.jsonl:line 1: empty turn")
    assert "Traceback" not in result.output
    assert snapshot(out) == before


def test_output_dir_defaults_to_the_manifest_setting(tmp_path):
    path = write_manifest(tmp_path, [alpaca_source(tmp_path, "a", 3)], output={"dir": "built/x"})
    result = composer.build(path)
    assert result.output_dir == (tmp_path / "built" / "x").resolve()
    assert pq.read_metadata(tmp_path / "built" / "x" / "records.parquet").num_rows == 3
    assert sorted(p.name for p in (tmp_path / "built").iterdir()) == ["x"]


# ---------------------------------------------------------------- the writer's threads


def written(folder: Path, threads: int, fail_at: int | None = None) -> dict[str, bytes]:
    """Batches of rows for two formats and two splits through a RowWriter on `threads`
    threads (a batch without a `format` column at `fail_at`); each file's bytes."""
    import pyarrow as pa

    from composer.output import RowWriter

    schema = pa.schema([("text", pa.string()), ("split", pa.string())])
    sets = {"formats/a/sft": schema, "formats/b/sft": schema}
    with RowWriter(folder, sets, ["train", "validation"], jsonl=True, threads=threads) as writer:
        for k in range(12):
            rows = [f"batch {k} row {i} " + "words " * (i % 50) for i in range(2_000)]
            table = pa.table(
                {
                    "text": rows,
                    "split": ["validation" if i % 7 == 0 else "train" for i in range(2_000)],
                    "format": ["a" if i % 3 else "b" for i in range(2_000)],
                }
            )
            writer.write_rendered("sft", table if k != fail_at else table.drop_columns("format"))
        writer.close()
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.*"))}


def test_the_writer_threads_write_the_bytes_one_thread_writes(tmp_path):
    one = written(tmp_path / "one", threads=1)
    assert len(one) == 8  # 2 formats x 2 splits x (parquet, jsonl)
    assert pq.read_table(tmp_path / "one" / "formats/a/sft/train.parquet").num_rows > 10_000
    assert written(tmp_path / "four", threads=4) == one


def test_the_writer_holds_at_most_its_bytes_of_rows_in_flight(tmp_path, monkeypatch):
    """Rows in writes not done stay under WRITE_BYTES (one part may pass it), however many
    the batches: the writer's memory does not grow with a build; the bytes are the same."""
    from composer import output

    one = written(tmp_path / "one", threads=1)
    monkeypatch.setattr(output, "WRITE_BYTES", 60_000)
    held: list[tuple[int, int]] = []  # (bytes in flight, the part just given)
    real = output.RowWriter._submit

    def submit(self, key, part):
        real(self, key, part)
        held.append((self._held, part.nbytes))

    monkeypatch.setattr(output.RowWriter, "_submit", submit)
    assert written(tmp_path / "small", threads=2) == one
    assert len(held) == 48 and all(h <= 60_000 or h == part for h, part in held)
    assert sum(part for _, part in held) > 4 * 60_000


def test_a_failed_write_stops_the_writer_and_closes_its_files(tmp_path):
    import threading

    with pytest.raises(KeyError):
        written(tmp_path, threads=4, fail_at=5)
    assert not [t for t in threading.enumerate() if t.name.startswith("composer-write")]
