"""Near-duplicate dedup (composer.near_dedup), end to end: real files in, `composer.build`,
the report's funnel and records.parquet read back; and `composer dedup`'s preview."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import composer
from composer.cache import StageCache
from composer.card import dataset_card
from composer.manifest import NearDedup
from composer.near_dedup import (
    Signatures,
    greedy,
    key_texts,
    minhash_pairs,
    normalise,
    shingled_pairs,
    signatures,
)
from tests.helpers import assert_accounted, invoke, snapshot, write_jsonl, write_manifest

ORIGINAL = (
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many in May."
)
NEAR = {
    "case and spacing": "natalia SOLD clips to 48 of  her friends in april,   and then she sold "
    "half as many in May.",
    "punctuation": "Natalia sold clips to 48 of her friends in April and then, she sold half as "
    "many in May!",
    "filler word": "Please: Natalia sold clips to 48 of her friends in April, and then she sold "
    "half as many in May.",
}
DISTINCT = [
    "Write a haiku about the sea at night.",
    "Explain how a bicycle gear works to a child.",
    "Weng earns $12 an hour for babysitting. How much did she earn for 50 minutes?",
    "Betty is saving money for a new wallet which costs $100.",
]


def alpaca(texts: list[str], tag: str) -> list[dict]:
    return [{"instruction": t, "output": f"{tag} answer {i}"} for i, t in enumerate(texts)]


def build(tmp_path: Path, sources: list[dict], near: dict | None = None, name: str = "out"):
    dedup = {"key": "instruction", **({"near": near} if near is not None else {})}
    path = write_manifest(tmp_path, sources, dedup=dedup)
    out = tmp_path / name
    result = composer.build(path, output_dir=out)
    return {s["name"]: s for s in result.report["sources"]}, result.report, out


def sources(tmp_path: Path) -> list[dict]:
    write_jsonl(tmp_path / "low.jsonl", alpaca([ORIGINAL, *DISTINCT], "low"))
    write_jsonl(tmp_path / "high.jsonl", alpaca(list(NEAR.values()), "high"))
    return [
        {"name": "low", "plugin": "alpaca", "path": "low.jsonl", "confidence": 1},
        {"name": "high", "plugin": "alpaca", "path": "high.jsonl", "confidence": 3},
    ]


@pytest.mark.parametrize("kind", sorted(NEAR))
def test_each_normalisation_kind_is_near(kind):
    pairs, sims = minhash_pairs([ORIGINAL, NEAR[kind], *DISTINCT], 0.8, 2, 64, 16, 0)
    found = {tuple(p): s for p, s in zip(pairs.tolist(), sims.tolist())}
    assert found.get((0, 1), 0) >= 0.8, kind
    assert all(s < 0.8 for p, s in found.items() if p != (0, 1))


def test_normalise_ignores_case_spacing_and_punctuation():
    assert normalise("  Hello,   WORLD!! it's\tme ") == normalise("hello world it s me")


def test_the_higher_confidence_copy_survives_and_lost_to_names_it(tmp_path):
    funnel, report, out = build(tmp_path, sources(tmp_path), near={"method": "minhash"})
    # the three near copies in `high` are near each other: the first stays, the others go
    # to it; the original in `low` goes to `high`
    assert funnel["low"]["near_duplicates"] == 1
    assert funnel["low"]["near_lost_to"] == {"high": 1}
    assert funnel["high"]["near_duplicates"] == 2
    assert funnel["high"]["near_lost_to"] == {"high": 2}
    kept = [
        r["conversations"][0]["value"] for r in pq.read_table(out / "records.parquet").to_pylist()
    ]
    assert ORIGINAL not in kept and NEAR["case and spacing"] in kept
    assert set(DISTINCT) <= set(kept)
    assert_accounted(out)  # every row of every source, rejected.jsonl included
    for s in funnel.values():  # every record accounted for
        assert (
            s["records"]
            == s["filtered"] + s["duplicates"] + s["near_duplicates"] + s["after_dedup"]
        )
        assert sum(s["near_lost_to"].values()) == s["near_duplicates"]
    (cluster, *_) = report["near_duplicates"]["clusters"]
    assert cluster["winner"] == {"source": "high", "text": NEAR["case and spacing"]}
    assert {(x["source"], x["similarity"] >= 0.8) for x in cluster["losers"]} == {
        ("high", True),
        ("low", True),
    }
    # report.md: a near duplicates column after duplicates, its total, and who lost to whom
    md = (out / "report.md").read_text("utf-8")
    header = next(line for line in md.splitlines() if line.startswith("| source | kind"))
    cells = [c.strip() for c in header.strip("|").split("|")]
    assert cells[cells.index("duplicates") + 1] == "near duplicates"
    total = next(line for line in md.splitlines() if line.startswith("| **total**"))
    assert [c.strip() for c in total.strip("|").split("|")][cells.index("near duplicates")] == "3"
    assert report["totals"]["near_duplicates"] == 3
    assert "## Near duplicates" in md and "| low | high | 1 |" in md
    # the dataset card says so too
    card = dataset_card(report)
    assert "Near duplicates (minhash, threshold 0.7): 3 records removed" in card  # default
    assert "| low | high | 1 |" in card.split("## Deduplication")[1]


def test_ties_go_to_manifest_order_then_row_order(tmp_path):
    # the same confidence: `first`, listed first, keeps its copy over `second`'s; inside
    # `second`, the earlier of two copies stays
    weng = DISTINCT[2]
    weng_copy = weng.upper().replace("?", "")
    write_jsonl(tmp_path / "first.jsonl", alpaca([NEAR["punctuation"], DISTINCT[0]], "first"))
    write_jsonl(tmp_path / "second.jsonl", alpaca([ORIGINAL, weng, weng_copy], "second"))
    srcs = [
        {"name": "first", "plugin": "alpaca", "path": "first.jsonl", "confidence": 2},
        {"name": "second", "plugin": "alpaca", "path": "second.jsonl", "confidence": 2},
    ]
    funnel, _, out = build(tmp_path, srcs, near={"method": "minhash"})
    assert funnel["first"]["near_duplicates"] == 0
    assert funnel["second"]["near_duplicates"] == 2
    assert funnel["second"]["near_lost_to"] == {"first": 1, "second": 1}
    rows = pq.read_table(out / "records.parquet").to_pylist()
    assert {r["conversations"][0]["value"] for r in rows} == {
        NEAR["punctuation"],
        DISTINCT[0],
        weng,
    }
    assert_accounted(out)


def test_without_near_nothing_changes(tmp_path):
    funnel, report, _ = build(tmp_path, sources(tmp_path))
    assert all(s["near_duplicates"] == 0 for s in funnel.values())
    assert "near_duplicates" not in report


def test_deterministic(tmp_path):
    srcs = sources(tmp_path)
    _, _, a = build(tmp_path, srcs, near={"method": "minhash"}, name="a")
    _, _, b = build(tmp_path, srcs, near={"method": "minhash"}, name="b")
    assert (a / "records.parquet").read_bytes() == (b / "records.parquet").read_bytes()
    assert (
        json.loads((a / "report.json").read_text())["near_duplicates"]
        == json.loads((b / "report.json").read_text())["near_duplicates"]
    )


def test_each_method_has_its_own_default_threshold():
    # a Jaccard of 0.7 finds the planted copies; a cosine of 0.7 would merge most problems
    assert NearDedup().threshold == 0.7
    assert NearDedup(method="embedding").threshold == 0.95
    assert NearDedup(method="embedding", threshold=0.9).threshold == 0.9


def test_key_texts_by_arrow_are_exact_dedups_keys():
    import pyarrow as pa

    from composer.convert import dedup_key

    convs = [
        [{"from": "system", "value": "Be brief."}, {"from": "human", "value": "Hi"}],
        [{"from": "gpt", "value": "Hello"}, {"from": "human", "value": "a"}],
        [{"from": "observation", "value": "tool says"}, {"from": "human", "value": "b"}],
        [{"from": "human", "value": "first"}, {"from": "gpt", "value": "x"}],
        [
            {"from": "human", "value": "c"},
            {"from": "gpt", "value": "y"},
            {"from": "human", "value": "d"},
        ],
    ]
    table = pa.table({"conversations": convs}).slice(1)  # an offset, as a filtered table's
    want = [dedup_key("sft", "instruction", c, None) for c in convs[1:]]
    assert key_texts(table, "sft", "instruction").to_pylist() == want
    want = [dedup_key("sft", "user_turns", c, None) for c in convs[1:]]
    assert key_texts(table, "sft", "user_turns").to_pylist() == want


def test_greedy_by_rank_does_not_chain():
    # 1 is near 0 and 2, but 0 and 2 are not near: 1 goes to 0, and 2 stays (its only near
    # record, 1, is gone); connected components would remove 2 as well
    import numpy as np

    pairs = np.array([[0, 1], [1, 2]])
    removed, winner, _ = greedy(pairs, np.array([0.9, 0.9]), 0.8, 3)
    assert removed.tolist() == [False, True, False] and winner.tolist() == [-1, 0, -1]


def test_embedding_method_removes_a_paraphrase(tmp_path):
    write_jsonl(
        tmp_path / "low.jsonl", alpaca(["How do I bake sourdough bread at home?", *DISTINCT], "low")
    )
    write_jsonl(
        tmp_path / "high.jsonl", alpaca(["How can I bake sourdough bread at home?"], "high")
    )
    srcs = [
        {"name": "low", "plugin": "alpaca", "path": "low.jsonl", "confidence": 1},
        {"name": "high", "plugin": "alpaca", "path": "high.jsonl", "confidence": 3},
    ]
    funnel, report, _ = build(tmp_path, srcs, near={"method": "embedding", "threshold": 0.9})
    assert funnel["low"]["near_lost_to"] == {"high": 1}
    assert funnel["low"]["after_dedup"] == len(DISTINCT)
    assert report["near_duplicates"]["clusters"][0]["losers"][0]["similarity"] >= 0.9


def test_composer_dedup_previews_and_removes_nothing(tmp_path):
    path = write_manifest(
        tmp_path, sources(tmp_path), dedup={"key": "instruction", "near": {"threshold": 0.8}}
    )
    result = invoke("dedup", str(path))
    assert result.exit_code == 0, result.output
    assert "low" in result.stdout and "high 1" in result.stdout
    assert "Similarity of the" in result.stdout
    assert not (tmp_path / "out").exists()


def test_build_json_counts_near_duplicates(tmp_path):
    path = write_manifest(
        tmp_path, sources(tmp_path), dedup={"key": "instruction", "near": {"threshold": 0.8}}
    )
    result = invoke("build", str(path), "-o", str(tmp_path / "out"), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["totals"]["near_duplicates"] == 3
    assert {k: v["near_duplicates"] for k, v in summary["sources"].items()} == {
        "low": 1,
        "high": 2,
    }
    summary_line = invoke("build", str(path), "-o", str(tmp_path / "b")).stderr
    assert ", 3 near duplicates, " in summary_line


def test_near_needs_a_dedup_key(tmp_path):
    path = write_manifest(tmp_path, sources(tmp_path), dedup={"key": "none", "near": {}})
    result = invoke("validate", str(path))
    assert result.exit_code == 2
    assert "near needs a dedup key" in result.output


def near_events(cache: Path, since: int = 0) -> list[str]:
    return [e["event"] for e in StageCache(cache).events()[since:] if e["stage"] == "near"]


def test_near_dedup_is_cached_like_the_other_stages(
    tmp_path, composer_cache_env, tmp_path_factory, monkeypatch
):
    srcs = sources(tmp_path)
    dedup = {"key": "instruction", "near": {"threshold": 0.8}}
    path = write_manifest(tmp_path, srcs, dedup=dedup)
    first = composer.build(path, output_dir=tmp_path / "a")
    assert near_events(composer_cache_env) == ["miss", "store"]
    assert StageCache(composer_cache_env).info()["folders"]["near"]["entries"] == 1
    # another format: the output and rendering change, near dedup's input does not
    path = write_manifest(tmp_path, srcs, dedup=dedup, formats=["chatml", "alpaca"])
    mark = len(StageCache(composer_cache_env).events())

    def recomputed(*args, **kwargs):
        raise AssertionError("near dedup ran again")

    with monkeypatch.context() as m:
        m.setattr(importlib.import_module("composer.build"), "near_dedup", recomputed)
        again = composer.build(path, output_dir=tmp_path / "b")
    assert near_events(composer_cache_env, mark) == ["hit"]
    assert "near 1 reused, 0 computed" in again.cache_use
    assert again.report["near_duplicates"] == first.report["near_duplicates"]
    # the same bytes as a build that reads and stores nothing
    clean = tmp_path_factory.mktemp("clean")
    monkeypatch.setenv("COMPOSER_CACHE", str(clean / "cache"))
    composer.build(path, output_dir=clean / "out", cache=False)
    assert not (clean / "cache").exists()
    assert snapshot(clean / "out") == snapshot(tmp_path / "b")


def test_a_changed_threshold_recomputes_near_dedup(tmp_path, composer_cache_env):
    srcs = sources(tmp_path)
    funnel, _, _ = build(tmp_path, srcs, near={"threshold": 0.8}, name="a")
    mark = len(StageCache(composer_cache_env).events())
    # at 1.0 only the copies that normalise to the same words are near: the filler word stays
    strict, _, _ = build(tmp_path, srcs, near={"threshold": 1.0}, name="b")
    assert near_events(composer_cache_env, mark) == ["miss", "store"]
    assert funnel["high"]["near_duplicates"] == 2
    assert strict["high"]["near_duplicates"] == 1


def test_one_or_two_workers_give_the_same_bytes(tmp_path, monkeypatch):
    monkeypatch.setattr("composer.near_dedup.ROWS_AT_ONCE", 2)  # several chunks, both threads
    path = write_manifest(
        tmp_path, sources(tmp_path), dedup={"key": "instruction", "near": {"threshold": 0.8}}
    )
    one = composer.build(path, output_dir=tmp_path / "one", workers=1, cache=False)
    two = composer.build(path, output_dir=tmp_path / "two", workers=2, cache=False)
    assert one.report["near_duplicates"] == two.report["near_duplicates"]
    assert sum(s["near_duplicates"] for s in one.report["sources"]) == 3
    assert snapshot(tmp_path / "one") == snapshot(tmp_path / "two")


def test_signatures_taken_in_parts_and_joined_are_those_of_the_whole(monkeypatch):
    """Near dedup on Ray takes each source's signatures in a task of its own: joined, they
    are (and so the pairs and similarities are) those of the kind's texts at once."""
    monkeypatch.setattr("composer.near_dedup.ROWS_AT_ONCE", 2)  # parts cut across chunks
    texts = [ORIGINAL, *NEAR.values(), "", *DISTINCT]
    whole = signatures(texts, 2, 64, 7)
    joined = Signatures.joined(
        [signatures(texts[a:b], 2, 64, 7) for a, b in [(0, 3), (3, 3), (3, 9)]]
    )
    for field in ("sig", "sets", "bounds"):
        assert np.array_equal(getattr(whole, field), getattr(joined, field)), field
    pairs, sims = minhash_pairs(texts, 0.7, 2, 64, 16, 7)
    again = shingled_pairs(joined, 0.7, 16)
    assert np.array_equal(pairs, again[0]) and np.array_equal(sims, again[1]) and len(pairs)
