"""The engine's workers change nothing but the time: a build on one worker and on two
writes the same bytes, every file, with every stage at work; and where the time goes.

The mixture is small, so the thresholds below which a stage stays in the driver are
lowered for the two-worker build, which runs on a real pool of worker processes.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

import composer
from composer.cache import StageCache
from composer.engines.pool import PoolEngine
from tests.helpers import invoke, snapshot, write_jsonl, write_manifest
from tests.test_build import full_mixture
from tests.test_decontaminate import ITEMS, REWORDED, conv
from tests.test_packing import TOPICS

build_module = importlib.import_module("composer.build")
decontaminate_module = importlib.import_module("composer.decontaminate")


def every_stage(folder: Path) -> Path:
    """SFT, DPO and text sources with filters, duplicates across sources, a contaminated
    row, packing, a mix, validation and test splits, four formats."""
    sources = full_mixture(folder)
    for weight, s in enumerate(sources, 1):
        s.pop("sample", None)
        s["weight"] = weight
    sources[1]["filters"] = {"response_chars": {"min": 7}}  # "done 0" to "done 9"
    chats = [{"conversations": conv(ITEMS[0], "72")}, {"conversations": conv(REWORDED, "72")}]
    chats += [{"conversations": conv(f"chat question {i}", f"again {i}")} for i in range(6)]
    sources.append(
        {
            "name": "more",
            "plugin": "sharegpt",
            "path": write_jsonl(folder / "more.jsonl", chats),
            "weight": 2,
        }
    )
    questions = [q for qs in TOPICS.values() for q in qs]
    qa = [{"instruction": q, "output": f"An answer to: {q}"} for q in questions]
    sources.append(
        {
            "name": "qa",
            "plugin": "alpaca",
            "path": write_jsonl(folder / "qa.jsonl", qa),
            "packing": {"min_similarity": 0.6},
            "weight": 3,
        }
    )
    write_jsonl(folder / "bench.jsonl", [{"question": q, "answer": "x"} for q in ITEMS])
    return write_manifest(
        folder,
        sources,
        formats=["chatml", "alpaca", "vicuna", "llama3"],
        split={"validation": 0.15, "test": 0.1},
        mix={"total": 60, "upsample": True},
        filters={"response_chars": {"min": 2}},
        system_prompt={"default": "Be helpful.", "probability": 0.5},
        decontaminate={"benchmarks": [{"name": "gsm8k", "path": "bench.jsonl", "split": "test"}]},
        output={"jsonl": True},
    )


@pytest.fixture
def small_batches(monkeypatch):
    """Batches of a few records, and no size below which a stage stays in the driver."""
    monkeypatch.setattr(build_module, "RENDER_BATCH", 7)
    monkeypatch.setattr(build_module, "POOL_ROWS", 0)
    monkeypatch.setattr(build_module, "RENDER_POOL_WORKERS", 2)
    monkeypatch.setattr(build_module, "POOL_BYTES", 0)
    monkeypatch.setattr(decontaminate_module, "SCAN_CHUNK", 3)
    monkeypatch.setattr(decontaminate_module, "SCAN_TEXTS", 3)
    monkeypatch.setattr(decontaminate_module, "SCAN_POOL_TASKS", 2)


def test_one_and_two_workers_write_the_same_bytes(tmp_path, small_batches):
    path = every_stage(tmp_path)
    one = composer.build(path, tmp_path / "one", workers=1, cache=False)
    with PoolEngine(2) as engine:
        two = composer.build(path, tmp_path / "two", cache=False, engine=engine)
        assert engine._executor is not None  # the tasks ran in worker processes
    stages = {f["name"]: f for f in one.report["sources"]}
    assert stages["tasks"]["filtered"] and any(f["duplicates"] for f in stages.values())
    assert any(f["contaminated"] for f in stages.values())
    assert stages["qa"]["packed"] and one.report["mix"]["requested"] == 60
    assert {"pairs", "stories", "tasks"} <= set(stages)
    first, second = snapshot(one.output_dir), snapshot(two.output_dir)
    assert sorted(first) == sorted(second)
    assert "formats/llama3/dpo/test.parquet" in first
    for name in first:
        assert first[name] == second[name], name


def test_the_pool_renders_what_the_cache_gives_back(tmp_path, small_batches):
    """A second two-worker build reads the stages from the cache (rendered rows included)
    and still writes the same bytes."""
    path = every_stage(tmp_path)
    with PoolEngine(2) as engine:
        first = composer.build(path, tmp_path / "a", engine=engine, cache=True)
        StageCache().clear(["output"])
        again = composer.build(path, tmp_path / "b", engine=engine, cache=True)
    assert snapshot(first.output_dir) == snapshot(again.output_dir)
    assert "render" in again.cache_use


def test_where_the_time_goes(tmp_path):
    """`build --json` says each stage's seconds, rows in and rows a second; the summary
    names the slowest stages; none of it is in the output folder."""
    path = every_stage(tmp_path)
    result = invoke("build", str(path), "--json", "--no-cache", "--workers", "1")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    stages = data["stages"]
    assert list(stages) == [
        "load",
        "dedup",
        "decontaminate",
        "pack, mix, sample, split",
        "render and write",
        "report",
    ]
    for figures in stages.values():
        assert figures["seconds"] >= 0 and figures["rows"] > 0
    assert stages["load"]["rows"] == data["totals"]["rows_read"]
    assert stages["render and write"]["rows"] == data["files"]["records.parquet"]["rows"]
    slowest = data["slowest"]
    assert len(slowest) == 3 and stages[slowest[0]]["seconds"] == max(
        f["seconds"] for f in stages.values()
    )
    assert data["engine"] == "local"
    out = Path(data["output_dir"])
    for file in out.rglob("*"):
        if file.suffix in (".json", ".md", ".html", ".jsonl", ".lock"):
            assert "rows_per_s" not in file.read_text(encoding="utf-8"), file
    summary = invoke("build", str(path), "--no-cache", "--workers", "1")
    line = next(x for x in summary.stderr.splitlines() if x.startswith("  slowest: "))
    assert any(line.startswith(f"  slowest: {name} ") for name in stages)  # timings vary
    assert line.endswith("[local engine]") and line.count(" rows/s)") == 3
