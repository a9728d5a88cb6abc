"""Confidence-ranked exact dedup, end to end: real files in, `composer.build`, real parquet out.

Every fixture is written by the test into tmp_path in its upstream schema (Alpaca JSONL,
ShareGPT JSON, prompt/chosen/rejected JSONL); the build's records.parquet, rendered files
and report.json are read back with pyarrow and json and checked against what the test
computes on its own (uuid5 of the dedup key, the highest-confidence source of each key).
"""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import composer
from composer.records import make_id
from tests.helpers import read_rendered, uuid5, write_jsonl, write_manifest

# ---------------------------------------------------------------- fixtures written by the tests


def write_json(path: Path, rows: list[dict]) -> str:
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    return path.name


def alpaca(pairs: list[tuple[str, str]]) -> list[dict]:
    return [{"instruction": q, "output": a} for q, a in pairs]


def sharegpt(conversations: list[list[tuple[str, str]]]) -> list[dict]:
    return [{"conversations": [{"from": r, "value": v} for r, v in conv]} for conv in conversations]


def build(folder: Path, sources: list[dict], **manifest) -> tuple[dict, Path]:
    """Write a manifest beside the data files, build it into folder/out, return the report."""
    out = folder / "out"
    result = composer.build(write_manifest(folder, sources, **manifest), output_dir=out)
    assert result.output_dir == out.resolve()
    return result.report, out


def by_name(report: dict) -> dict[str, dict]:
    return {s["name"]: s for s in report["sources"]}


def records(out: Path) -> list[dict]:
    return pq.read_table(out / "records.parquet").to_pylist()


def first_human(record: dict) -> str:
    return next(t["value"] for t in record["conversations"] if t["from"] == "human")


def answer(record: dict) -> str:
    return record["conversations"][-1]["value"]


# ---------------------------------------------------------------- the id


@given(st.text())
@settings(max_examples=300)
def test_make_id_is_uuid5_of_the_key(key):
    assert make_id(key) == uuid5(key)


@pytest.mark.parametrize(
    "key",
    [
        "",
        " ",
        "é",
        "naïve café",
        "日本語の指示",
        "🙂👍🏽",
        "a\x00b",
        "line\nbreak",
        "\u200b",
        "Ω" * 10_000,
    ],
)
def test_make_id_examples(key):
    assert make_id(key) == uuid5(key)
    assert uuid.UUID(make_id(key)).version == 5


# ---------------------------------------------------------------- confidence and order


def test_higher_confidence_wins_whatever_the_manifest_order(tmp_path):
    shared = [f"shared question {i}" for i in range(10)]
    low = [(q, f"low answer {i}") for i, q in enumerate(shared)] + [
        (f"only low {i}", f"low answer x{i}") for i in range(5)
    ]
    high = [(f"only high {i}", f"high answer x{i}") for i in range(3)] + [
        (q, f"high answer {i}") for i, q in enumerate(shared)
    ]
    sources = [  # the low-confidence source comes first in the manifest
        {
            "name": "low",
            "plugin": "alpaca",
            "path": write_jsonl(tmp_path / "low.jsonl", alpaca(low)),
            "confidence": 1,
        },
        {
            "name": "high",
            "plugin": "sharegpt",
            "path": write_json(
                tmp_path / "high.json", sharegpt([[("human", q), ("gpt", a)] for q, a in high])
            ),
            "confidence": 3,
        },
    ]
    report, out = build(tmp_path, sources)

    kept = {first_human(r): r for r in records(out)}
    assert len(kept) == len(records(out)) == 18
    for i, q in enumerate(shared):
        assert kept[q]["source"] == "high"
        assert answer(kept[q]) == f"high answer {i}"
        assert kept[q]["id"] == uuid5(q)
    assert {q for q, r in kept.items() if r["source"] == "low"} == {
        f"only low {i}" for i in range(5)
    }
    # The rendered rows say the same: every shared instruction answered by the conf-3 source.
    rows = read_rendered(out, "sft")
    shared_ids = {uuid5(q) for q in shared}
    mine = [r for r in rows if r["id"] in shared_ids]
    assert len(mine) == 10
    assert all(r["source"] == "high" and "high answer" in r["completion"] for r in mine)
    assert not any("low answer" in r["completion"] and r["id"] in shared_ids for r in rows)

    s = by_name(report)
    assert (s["low"]["records"], s["low"]["duplicates"], s["low"]["after_dedup"]) == (15, 10, 5)
    assert s["low"]["lost_to"] == {"high": 10}
    assert (s["high"]["duplicates"], s["high"]["lost_to"]) == (0, {})
    # records.parquet lists the sources in priority order
    assert [r["source"] for r in records(out)] == ["high"] * 13 + ["low"] * 5


@pytest.mark.parametrize("confidence", [2, None])
@pytest.mark.parametrize("order", [("first", "second"), ("second", "first")])
def test_ties_go_to_the_source_listed_first(tmp_path, confidence, order):
    data = {
        "first": [(f"q{i}", f"first {i}") for i in range(6)],
        "second": [(f"q{i}", f"second {i}") for i in range(3, 9)],
    }
    sources = []
    for name in order:
        source = {
            "name": name,
            "plugin": "alpaca",
            "path": write_jsonl(tmp_path / f"{name}.jsonl", alpaca(data[name])),
        }
        if confidence is not None:  # None: both take the plugin's default confidence
            source["confidence"] = confidence
        sources.append(source)
    report, out = build(tmp_path, sources)

    winner, loser = order
    kept = {first_human(r): r for r in records(out)}
    assert len(kept) == 9
    for q in ("q3", "q4", "q5"):
        assert kept[q]["source"] == winner
        assert answer(kept[q]).startswith(winner)
    s = by_name(report)
    assert s[loser]["lost_to"] == {winner: 3}
    assert s[winner]["lost_to"] == {}
    assert s[loser]["after_dedup"] == 3


def test_duplicates_inside_one_source_collapse_to_the_first(tmp_path):
    pairs = [("a", "a1"), ("b", "b1"), ("a", "a2"), ("c", "c1"), ("a", "a3"), ("b", "b2")]
    report, out = build(
        tmp_path,
        [
            {
                "name": "only",
                "plugin": "alpaca",
                "path": write_jsonl(tmp_path / "x.jsonl", alpaca(pairs)),
            }
        ],
    )
    kept = records(out)
    assert [(first_human(r), answer(r)) for r in kept] == [("a", "a1"), ("b", "b1"), ("c", "c1")]
    assert [json.loads(r["meta"])["row"] for r in kept] == [0, 1, 3]
    s = by_name(report)["only"]
    assert (s["records"], s["duplicates"], s["after_dedup"]) == (6, 3, 3)
    assert s["lost_to"] == {"only": 3}


def test_kept_count_equals_an_independent_uuid5_count(tmp_path):
    """Three sources, overlapping at random, multi-turn and with system turns."""
    rnd = random.Random(7)
    pool = [f"instruction {i} — ünïcødé {'x' * (i % 5)}" for i in range(60)]
    everything: list[str] = []  # the first human turn of every valid row, in any source
    sources = []
    for n, (name, confidence) in enumerate([("s1", 1), ("s2", 3), ("s3", 2)]):
        conversations = []
        for k in range(40):
            q = rnd.choice(pool)
            conv = [("human", q), ("gpt", f"{name} answer {k}")]
            if k % 3 == 0:
                conv += [("human", f"follow-up {k}"), ("gpt", "more")]
            if k % 4 == 0:
                conv = [("system", f"system {n}"), *conv]
            conversations.append(conv)
            everything.append(q)
        conversations.append([("human", "no answer here")])  # invalid: rejected, never kept
        sources.append(
            {
                "name": name,
                "plugin": "sharegpt",
                "confidence": confidence,
                "path": write_json(tmp_path / f"{name}.json", sharegpt(conversations)),
            }
        )
    report, out = build(tmp_path, sources)

    expected = {uuid5(q) for q in everything}
    kept = records(out)
    assert len(kept) == len(expected) == report["totals"]["after_dedup"]
    assert {r["id"] for r in kept} == expected
    assert all(r["id"] == uuid5(first_human(r)) for r in kept)
    # Each instruction comes from the highest-confidence source that has it.
    rank = {"s2": 0, "s3": 1, "s1": 2}
    holders: dict[str, set[str]] = {}
    for s in sources:
        for row in json.loads((tmp_path / s["path"]).read_text(encoding="utf-8")):
            turns = row["conversations"]
            if turns[-1]["from"] == "gpt":
                q = next(t["value"] for t in turns if t["from"] == "human")
                holders.setdefault(q, set()).add(s["name"])
    for r in kept:
        assert r["source"] == min(holders[first_human(r)], key=rank.get)
    assert report["totals"]["rejected"] == 3


@given(
    st.lists(st.tuples(st.integers(0, 2), st.integers(0, 12)), min_size=1, max_size=40),
    st.lists(st.integers(0, 3), min_size=3, max_size=3),
)
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_dedup_keeps_each_instruction_once_from_its_best_source(
    tmp_path_factory, rows, confidences
):
    """Any assignment of instructions to three sources of any confidences."""
    folder = tmp_path_factory.mktemp("prop")
    per_source: dict[int, list[tuple[str, str]]] = {0: [], 1: [], 2: []}
    for k, (source, q) in enumerate(rows):
        per_source[source].append((f"q{q}", f"s{source} answer {k}"))
    sources = [
        {
            "name": f"s{i}",
            "plugin": "alpaca",
            "confidence": confidences[i],
            "path": write_jsonl(folder / f"s{i}.jsonl", alpaca(per_source[i])),
        }
        for i in range(3)
        if per_source[i]
    ]
    report, out = build(folder, sources)

    rank = sorted(range(3), key=lambda i: (-confidences[i], i))
    best: dict[str, tuple[int, str]] = {}  # instruction -> (source, first answer there)
    for i in rank:
        for q, a in per_source[i]:
            best.setdefault(q, (i, a))
    kept = records(out)
    assert len(kept) == len(best)
    assert {first_human(r): (int(r["source"][1]), answer(r)) for r in kept} == best
    for s in report["sources"]:
        assert s["records"] == s["duplicates"] + s["after_dedup"]
        assert sum(s["lost_to"].values()) == s["duplicates"]


# ---------------------------------------------------------------- dedup key modes

# Six conversations sharing their first instruction, built so that each mode keeps a
# different number: instruction 1, user_turns 2, conversation 5, none 6.
MODE_CONVERSATIONS = {
    "A": [("human", "Q"), ("gpt", "A1")],
    "B": [("human", "Q"), ("gpt", "A2")],  # same user turns as A, other answer
    "C": [("human", "Q"), ("gpt", "A1"), ("human", "Q2"), ("gpt", "A3")],
    "D": [("human", "Q"), ("gpt", "A1"), ("human", "Q2"), ("gpt", "A4")],  # user turns of C
    "E": [("human", "Q"), ("gpt", "A1")],  # A again, exactly
    "F": [("system", "S"), ("human", "Q"), ("gpt", "A1")],  # A with a system prompt
}
MODE_KEPT = {"instruction": "A", "user_turns": "AC", "conversation": "ABCDF", "none": "ABCDEF"}


@pytest.mark.parametrize("mode", list(MODE_KEPT))
def test_dedup_key_modes(tmp_path, mode):
    names = list(MODE_CONVERSATIONS)
    rows = sharegpt(list(MODE_CONVERSATIONS.values()))
    for name, row in zip(names, rows):
        row["tag"] = name
    report, out = build(
        tmp_path,
        [{"name": "src", "plugin": "sharegpt", "path": write_json(tmp_path / "c.json", rows)}],
        dedup={"key": mode},
    )
    kept = records(out)
    assert "".join(names[json.loads(r["meta"])["row"]] for r in kept) == MODE_KEPT[mode]
    assert report["dedup_key"] == mode
    s = by_name(report)["src"]
    assert s["duplicates"] == 6 - len(MODE_KEPT[mode])
    assert len({r["id"] for r in kept}) == len(kept)
    if mode in ("instruction", "user_turns"):  # a single user turn: the id is uuid5 of it
        assert kept[0]["id"] == uuid5("Q")
    if mode == "none":
        assert s["lost_to"] == {}


def test_mode_none_keeps_repeats_across_sources(tmp_path):
    pairs = [("same", "answer")] * 3
    sources = [
        {
            "name": n,
            "plugin": "alpaca",
            "confidence": c,
            "path": write_jsonl(tmp_path / f"{n}.jsonl", alpaca(pairs)),
        }
        for n, c in (("x", 1), ("y", 2))
    ]
    report, out = build(tmp_path, sources, dedup={"key": "none"})
    assert len(records(out)) == 6
    assert report["totals"]["duplicates"] == 0


# ---------------------------------------------------------------- DPO


def dpo_rows(prompts: list[str], tag: str) -> list[dict]:
    return [
        {"prompt": p, "chosen": f"{tag} good {i}", "rejected": f"{tag} bad {i}"}
        for i, p in enumerate(prompts)
    ]


def test_dpo_is_deduplicated_separately_from_sft(tmp_path):
    prompts = [f"shared prompt {i}" for i in range(5)]
    sources = [
        {
            "name": "sft",
            "plugin": "alpaca",
            "confidence": 1,
            "path": write_jsonl(tmp_path / "sft.jsonl", alpaca([(p, "answer") for p in prompts])),
        },
        {
            "name": "pairs_hi",
            "plugin": "dpo",
            "confidence": 3,
            "path": write_jsonl(tmp_path / "hi.jsonl", dpo_rows(prompts[:3], "hi")),
        },
        {
            "name": "pairs_lo",
            "plugin": "dpo",
            "confidence": 2,
            "path": write_jsonl(tmp_path / "lo.jsonl", dpo_rows([*prompts, "lo only"], "lo")),
        },
    ]
    report, out = build(tmp_path, sources)

    s = by_name(report)
    # Same instructions in an SFT and a DPO source: both kept.
    assert (s["sft"]["after_dedup"], s["sft"]["duplicates"], s["sft"]["lost_to"]) == (5, 0, {})
    assert (s["pairs_hi"]["after_dedup"], s["pairs_hi"]["lost_to"]) == (3, {})
    # DPO against DPO: the higher-confidence pair source wins its three prompts.
    assert (s["pairs_lo"]["after_dedup"], s["pairs_lo"]["lost_to"]) == (3, {"pairs_hi": 3})

    kept = records(out)
    by_kind = Counter((r["kind"], r["id"]) for r in kept)
    for p in prompts:
        assert by_kind[("sft", uuid5(p))] == 1
        assert by_kind[("dpo", uuid5(p))] == 1  # a DPO pair's id is uuid5 of its prompt
    dpo = {first_human(r): r for r in kept if r["kind"] == "dpo"}
    assert {p: r["source"] for p, r in dpo.items()} == {
        **{p: "pairs_hi" for p in prompts[:3]},
        **{p: "pairs_lo" for p in prompts[3:]},
        "lo only": "pairs_lo",
    }
    assert all(r["chosen"].startswith("hi") for p, r in dpo.items() if p in prompts[:3])
    rendered = read_rendered(out, "dpo")
    assert len(rendered) == 6
    assert sorted(r["source"] for r in rendered) == ["pairs_hi"] * 3 + ["pairs_lo"] * 3


# ---------------------------------------------------------------- lost_to in the report


def test_report_says_to_which_source_each_duplicate_was_lost(tmp_path):
    a = [(f"a{i}", "A") for i in range(6)] + [("everywhere", "A")]
    b = (
        [(f"a{i}", "B") for i in range(4)]
        + [(f"b{i}", "B") for i in range(3)]
        + [("everywhere", "B")]
    )
    c = (
        [(f"a{i}", "C") for i in range(3)]
        + [(f"b{i}", "C") for i in range(2)]
        + [("c0", "C"), ("c0", "C again"), ("everywhere", "C")]
    )
    sources = [
        {
            "name": n,
            "plugin": "alpaca",
            "confidence": conf,
            "path": write_jsonl(tmp_path / f"{n}.jsonl", alpaca(rows)),
        }
        for n, conf, rows in (("c", 1, c), ("a", 3, a), ("b", 2, b))
    ]
    report, out = build(tmp_path, sources)

    s = by_name(report)
    assert s["a"]["lost_to"] == {}
    assert s["b"]["lost_to"] == {"a": 5}  # a0-a3 and "everywhere"
    assert s["c"]["lost_to"] == {"a": 4, "b": 2, "c": 1}  # "everywhere" goes to a, not b
    for f in report["sources"]:
        assert sum(f["lost_to"].values()) == f["duplicates"]
    assert report["totals"]["duplicates"] == 12
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "## Duplicates" in md
    for line in ("| b | a | 5 |", "| c | a | 4 |", "| c | b | 2 |", "| c | c | 1 |"):
        assert line in md
    assert json.loads((out / "report.json").read_text(encoding="utf-8")) == report
