"""Issue 5's must-show, end to end: the OpenOrca selection from the seeds (ratio >= 4,
response >= 10 characters, score in the top 25% of its range), reproduced with the real
`openorca` plugin on rows in the upstream schema that the test writes, and counted
independently here."""

from __future__ import annotations

import json
import random

import pyarrow as pa
import pyarrow.parquet as pq

import composer
from tests.helpers import invoke, read_parquet, write_manifest

WORDS = "the a of river stone light cold warm quick slow bird tree sea glass fire song".split()


def orca_rows(n: int, seed: int = 5) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        question = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 30))) + "?"
        answer = " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 120)))
        rows.append(
            {
                "id": f"niv.{i}",
                "system_prompt": "You are an AI assistant." if i % 3 else "",
                "question": question,
                "response": answer if i % 17 else "ok",  # some too short
            }
        )
    return rows


def lexical_diversity(text: str) -> float:
    words = text.lower().split()
    return len(set(words)) / len(words) if words else float("nan")


def test_the_openorca_selection_keeps_what_an_independent_count_keeps(tmp_path):
    rows = orca_rows(600)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "orca.parquet")
    filters = {
        "ratio": {"min": 4},
        "response_chars": {"min": 10},
        "score": {"scorer": "lexical_diversity", "top": 0.25, "by": "range"},
    }
    source = {"name": "openorca", "path": "orca.parquet", "filters": filters}
    result = composer.build(write_manifest(tmp_path, [source]), output_dir=tmp_path / "out")

    # independently: the first filters, then the top quarter of the score range of the rest
    passed = [
        r for r in rows if len(r["response"]) >= 10 and len(r["response"]) >= 4 * len(r["question"])
    ]
    scores = [lexical_diversity(r["response"]) for r in passed]
    cut = min(scores) + 0.75 * (max(scores) - min(scores))
    expected = {r["id"] for r, s in zip(passed, scores) if s >= cut}

    records = read_parquet(tmp_path / "out" / "records.parquet")
    kept = {json.loads(r["meta"])["id"] for r in records}
    assert kept == expected and 0 < len(expected) < len(passed) < len(rows)
    funnel = result.report["sources"][0]
    valid = [r for r in rows if r["response"]]  # an empty answer is rejected, not filtered
    assert funnel["rejected"] == len(rows) - len(valid) > 0
    assert funnel["filtered"] == len(valid) - len(expected)
    assert sum(funnel["filtered_by"].values()) == funnel["filtered"]
    assert funnel["filtered_by"]["score:lexical_diversity"] == len(passed) - len(expected)
    shown = funnel["distributions"]["score:lexical_diversity"]
    assert shown["min"] is not None and abs(shown["min"] - cut) < 1e-9
    md = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "## Filters" in md and "score:lexical_diversity" in md


def test_filter_mistakes_are_manifest_errors_before_any_data_is_read(tmp_path):
    source = {
        "name": "openorca",
        "path": "missing.parquet",
        "filters": {"score": {"scorer": "lenght", "min": 3}},
    }
    path = write_manifest(tmp_path, [source])
    result = invoke("validate", str(path))
    assert result.exit_code == 2
    assert "sources[0].filters.score[0].scorer: unknown scorer 'lenght'" in result.stderr
    assert "did you mean 'length'?" in result.stderr
    path = write_manifest(
        tmp_path,
        [{"name": "openorca", "path": "o.parquet"}],
        filters={"ratio": {"min": 5, "max": 2}},
    )
    result = invoke("validate", str(path))
    assert result.exit_code == 2 and "filters.ratio: " in result.stderr
    assert "min (5) is above max (2)" in result.stderr


def test_a_global_filter_is_overridden_by_a_sources_own(tmp_path):
    rows = orca_rows(200)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "orca.parquet")
    strict = {"response_chars": {"min": 400}}
    sources = [
        {"name": "a", "plugin": "openorca", "path": "orca.parquet"},
        {
            "name": "b",
            "plugin": "openorca",
            "path": "orca.parquet",
            "filters": {"response_chars": {"min": 10}},
        },
    ]
    path = write_manifest(tmp_path, sources, filters=strict, dedup={"key": "none"})
    report = composer.build(path, output_dir=tmp_path / "out").report
    a, b = report["sources"]
    valid = [r for r in rows if r["response"]]  # an empty answer is rejected, not filtered
    assert a["filtered"] == sum(len(r["response"]) < 400 for r in valid)
    assert b["filtered"] == sum(len(r["response"]) < 10 for r in valid)
