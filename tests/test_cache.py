"""The stage cache: what a rebuild reuses, what it recomputes, and corrupt entries."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from composer.build import build
from composer.cache import StageCache
from composer.lock import LOCK_NAME
from tests.helpers import (
    assert_user_error,
    invoke,
    read_rendered,
    snapshot,
    write_jsonl,
    write_manifest,
)

BENCH_ITEMS = [
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips "
    "in May. How many clips did Natalia sell altogether in April and May?",
    "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of "
    "babysitting. How much did she earn?",
]


def chats(prefix: str, n: int) -> list[dict]:
    return [
        {
            "conversations": [
                {"from": "human", "value": f"{prefix} question number {i}: why is the sky blue?"},
                {"from": "gpt", "value": f"{prefix} answer {i}: light scatters off air."},
            ]
        }
        for i in range(n)
    ]


@pytest.fixture
def project(tmp_path) -> Path:
    """Three local sources (one with a bad line and a filter), two formats, a split."""
    data = tmp_path / "data"
    data.mkdir()
    write_jsonl(data / "a.jsonl", chats("alpha", 30))
    write_jsonl(data / "b.jsonl", [*chats("beta", 20), "{not json"])
    alpaca = [
        {"instruction": f"Task {i}: list {i} colours.", "input": "", "output": "Red. " * i}
        for i in range(25)
    ]
    write_jsonl(data / "c.jsonl", alpaca)
    write_manifest(
        tmp_path,
        [
            {"name": "a", "plugin": "sharegpt", "path": "data/a.jsonl", "confidence": 3},
            {"name": "b", "plugin": "sharegpt", "path": "data/b.jsonl", "confidence": 2},
            {
                "name": "c",
                "plugin": "alpaca",
                "path": "data/c.jsonl",
                "filters": {"response_chars": {"min": 10}},
            },
        ],
        formats=["chatml", "alpaca"],
        split={"validation": 0.2},
        output={"dir": "out"},
    )
    return tmp_path


def events(cache: Path, since: int = 0) -> Counter:
    """(stage, name, event) counts in the cache's log, from line `since` on."""
    return Counter((e["stage"], e["name"], e["event"]) for e in StageCache(cache).events()[since:])


def log_length(cache: Path) -> int:
    return len(StageCache(cache).events())


def clean_build(project: Path, tmp_path_factory, monkeypatch) -> dict[str, bytes]:
    """The same manifest built with no cache at all, into a folder of its own."""
    other = tmp_path_factory.mktemp("clean")
    monkeypatch.setenv("COMPOSER_CACHE", str(other / "cache"))
    build(project / "manifest.yaml", output_dir=other / "out", cache=False)
    assert not (other / "cache").exists()  # --no-cache stores nothing
    return snapshot(other / "out")


def test_a_rebuild_reuses_everything_and_gives_the_same_bytes(
    project, composer_cache_env, tmp_path_factory, monkeypatch
):
    first = build(project / "manifest.yaml")
    assert first.cache_use == "source 0 reused, 3 computed; render 0 reused, 3 computed"
    cold = snapshot(project / "out")
    mark = log_length(composer_cache_env)
    again = build(project / "manifest.yaml")
    assert again.cache_use == "output copied from the cache (no input changed)"
    assert events(composer_cache_env, mark) == {("output", "t", "hit"): 1}
    assert again.report == first.report
    assert snapshot(project / "out") == cold
    assert clean_build(project, tmp_path_factory, monkeypatch) == cold


def test_a_changed_file_is_named_by_the_lock_and_only_its_source_is_recomputed(
    project, composer_cache_env, tmp_path_factory, monkeypatch
):
    build(project / "manifest.yaml")
    locked = shutil.copy(project / "out" / LOCK_NAME, project / "locked.json")
    write_jsonl(project / "data" / "b.jsonl", chats("beta", 21))

    result = invoke("build", str(project / "manifest.yaml"), "-q", "--locked", locked)
    assert result.exit_code == 2
    assert "source 'b': file data/b.jsonl changed (sha256 " in result.stderr

    mark = log_length(composer_cache_env)
    result = build(project / "manifest.yaml")
    assert events(composer_cache_env, mark) == {
        ("output", "t", "miss"): 1,
        ("source", "a", "hit"): 1,
        ("source", "b", "miss"): 1,
        ("source", "b", "store"): 1,
        ("source", "c", "hit"): 1,
        ("render", "a", "hit"): 1,
        ("render", "b", "miss"): 1,
        ("render", "b", "store"): 1,
        ("render", "c", "hit"): 1,
        ("output", "t", "store"): 1,
    }
    # a and c kept the same records: their rendered rows are read, not rendered again
    assert result.cache_use == "source 2 reused, 1 computed; render 2 reused, 1 computed"
    [b] = [s for s in result.report["sources"] if s["name"] == "b"]
    assert (b["rows_read"], b["rejected"]) == (21, 0)
    assert snapshot(project / "out") == clean_build(project, tmp_path_factory, monkeypatch)


def test_a_changed_template_rerenders_without_reloading_any_source(project, composer_cache_env):
    folder = project / "formats"
    folder.mkdir()
    shutil.copy(Path(__file__).parents[1] / "templates" / "chatml.jinja", folder / "chatml.jinja")
    text = (project / "manifest.yaml").read_text() + "templates_dir: formats\n"
    (project / "manifest.yaml").write_text(text)
    build(project / "manifest.yaml")
    template = folder / "chatml.jinja"
    template.write_text(template.read_text().replace("<|im_start|>", "<|start|>"))
    mark = log_length(composer_cache_env)
    build(project / "manifest.yaml")
    seen = events(composer_cache_env, mark)
    assert {k for k in seen if k[2] == "miss"} == {
        ("output", "t", "miss"),
        *(("render", name, "miss") for name in "abc"),
    }
    assert sum(n for (stage, _, event), n in seen.items() if stage == "source") == 3
    rows = read_rendered(project / "out", "sft")
    chatml = [r["prompt"] for r in rows if r["format"] == "chatml"]
    assert chatml and all(r.startswith("<|start|>") and "<|im_start|>" not in r for r in chatml)


def entry_files(cache: Path, stage: str) -> list[Path]:
    return sorted(
        p for p in (cache / "stages" / stage).rglob("*") if p.is_file() and p.name != "entry.json"
    )


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("stage", ["source", "output"])
def test_a_corrupt_entry_is_recomputed_not_trusted(
    project, composer_cache_env, stage, tmp_path_factory, monkeypatch
):
    build(project / "manifest.yaml")
    if stage == "source":  # else the output entry would be used and no source read
        StageCache(composer_cache_env).clear(["output"])
    target = max(entry_files(composer_cache_env, stage), key=lambda p: p.stat().st_size)
    flip_a_byte(target)
    mark = log_length(composer_cache_env)
    result = build(project / "manifest.yaml")
    seen = events(composer_cache_env, mark)
    corrupt = [k for k in seen if k[2] == "corrupt"]
    assert len(corrupt) == 1 and corrupt[0][0] == stage
    assert (corrupt[0][0], corrupt[0][1], "miss") in seen
    assert (corrupt[0][0], corrupt[0][1], "store") in seen
    assert "1 corrupt entry recomputed" in result.cache_use or stage == "output"
    [line] = [e for e in StageCache(composer_cache_env).events()[mark:] if e["event"] == "corrupt"]
    assert "does not match its checksum" in line["why"]
    assert snapshot(project / "out") == clean_build(project, tmp_path_factory, monkeypatch)


def test_an_entry_json_that_is_not_json_is_corrupt(project, composer_cache_env):
    build(project / "manifest.yaml")
    [entry] = (composer_cache_env / "stages" / "output").rglob("entry.json")
    entry.write_text("{")
    mark = log_length(composer_cache_env)
    build(project / "manifest.yaml")
    assert events(composer_cache_env, mark)[("output", "t", "corrupt")] == 1


def test_no_cache_reads_and_stores_nothing(project, composer_cache_env):
    build(project / "manifest.yaml")
    stored = snapshot(composer_cache_env / "stages")
    mark = log_length(composer_cache_env)
    result = invoke("build", str(project / "manifest.yaml"), "--no-cache")
    assert result.exit_code == 0, result.output
    assert "cache: not used (--no-cache)" in result.stderr
    assert log_length(composer_cache_env) == mark
    assert snapshot(composer_cache_env / "stages") == stored


def test_a_killed_store_leaves_no_entry(composer_cache_env):
    cache = StageCache(composer_cache_env)
    with pytest.raises(KeyboardInterrupt), cache.put("source", "ab" * 32, "x") as folder:
        (folder / "half.arrow").write_bytes(b"half")
        raise KeyboardInterrupt
    assert cache.get("source", "ab" * 32) is None
    assert not list((composer_cache_env / "stages" / "source").rglob("half.arrow"))


def test_decontamination_is_cached_per_source(tmp_path, composer_cache_env):
    write_jsonl(tmp_path / "bench.jsonl", [{"question": q} for q in BENCH_ITEMS])
    leaked = [
        {
            "conversations": [
                {"from": "human", "value": BENCH_ITEMS[0]},
                {"from": "gpt", "value": "72"},
            ]
        }
    ]
    write_jsonl(tmp_path / "a.jsonl", chats("alpha", 10) + leaked)
    write_jsonl(tmp_path / "b.jsonl", chats("beta", 10))
    write_manifest(
        tmp_path,
        [
            {"name": "a", "plugin": "sharegpt", "path": "a.jsonl"},
            {"name": "b", "plugin": "sharegpt", "path": "b.jsonl"},
        ],
        output={"dir": "out"},
        decontaminate={
            "benchmarks": [{"name": "gsm8k", "path": "bench.jsonl", "fields": ["question"]}]
        },
    )
    first = build(tmp_path / "manifest.yaml")
    assert first.report["sources"][0]["contaminated"] == 1
    write_jsonl(tmp_path / "b.jsonl", chats("beta", 12))
    mark = log_length(composer_cache_env)
    again = build(tmp_path / "manifest.yaml")
    seen = events(composer_cache_env, mark)
    assert seen[("decontaminate", "a", "hit")] == 1
    assert seen[("decontaminate", "b", "miss")] == 1
    assert seen[("benchmarks", "benchmarks", "hit")] == 1  # read, not indexed again
    info = StageCache(composer_cache_env).info()["folders"]["benchmarks"]
    assert info["entries"] == 1 and info["bytes"] < 1 << 20  # n-gram flags not stored
    assert again.report["sources"][0]["contaminated"] == 1
    before, after = first.report["decontamination"], again.report["decontamination"]
    assert after["benchmark_items"] == before["benchmark_items"] == 2
    assert after["windows"] == before["windows"] + 4  # b's two new conversations' turns
    audit = [json.loads(line) for line in (tmp_path / "out" / "contamination.jsonl").open()]
    assert [a["source"] for a in audit] == ["a"]


def test_cache_info_and_clear(project, composer_cache_env):
    build(project / "manifest.yaml")
    build(project / "manifest.yaml")
    result = invoke("cache", "info", "--json")
    assert result.exit_code == 0, result.output
    folders = json.loads(result.stdout)["folders"]
    assert folders["source"]["entries"] == 3 and folders["source"]["store"] == 3
    assert folders["output"]["entries"] == 1 and folders["output"]["hit"] == 1
    assert folders["output"]["bytes"] > 0
    table = invoke("cache", "info").stdout
    assert str(composer_cache_env) in table and "source" in table and "entries" in table

    result = invoke("cache", "clear", "output")
    assert result.exit_code == 0 and "output" in result.stderr
    assert json.loads(invoke("cache", "info", "--json").stdout)["folders"]["output"]["entries"] == 0
    assert_user_error(
        invoke("cache", "clear", "outptu"),
        "unknown cache part 'outptu' (did you mean 'output'?); parts: source, near, "
        "benchmarks, decontaminate, render, output, embeddings, static, onnx",
    )
    invoke("cache", "clear")
    assert not (composer_cache_env / "stages").exists()
    assert not (composer_cache_env / "log.jsonl").exists()


def test_rejected_rows_name_their_upstream_index(project):
    build(project / "manifest.yaml")
    rows = [json.loads(line) for line in (project / "out" / "rejected.jsonl").open()]
    assert [(r["source"], r["where"], r["index"], r["reason"]) for r in rows] == [
        ("b", "b.jsonl:line 21", None, "unreadable row"),  # not JSON: no row, no index
        ("c", "c.jsonl:line 1", 0, "empty turn"),
    ]


def test_two_builds_storing_the_same_entry_both_succeed(composer_cache_env):
    cache = StageCache(composer_cache_env)
    key = "cd" * 32
    with cache.put("source", key, "x") as first:
        (first / "a.txt").write_text("one")
        with cache.put("source", key, "x") as second:  # a concurrent build, finishing first
            (second / "a.txt").write_text("one")
    folder = cache.get("source", key)
    assert (folder / "a.txt").read_text() == "one"
    assert [p.name for p in folder.parent.iterdir()] == [key]  # no temporary folder left


def test_a_build_sweeps_what_killed_builds_left_half_written(project, composer_cache_env):
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = int(gone.stdout)
    host = socket.gethostname().replace("-", "_")
    stage = composer_cache_env / "stages" / "render" / "ab"
    killed, writing = stage / f".tmp-{host}-{dead}-x", stage / f".tmp-{host}-{os.getpid()}-y"
    elsewhere, old = stage / ".tmp-otherhost-1-z", stage / ".tmp-otherhost-2-w"
    for folder in (killed, writing, elsewhere, old):
        folder.mkdir(parents=True)
    (killed / "entry.json").write_text("{}")  # killed just before the rename
    os.utime(old, (time.time() - 2 * 24 * 3600,) * 2)  # another host's, two days old
    assert StageCache(composer_cache_env).info()["folders"]["render"]["entries"] == 0
    build(project / "manifest.yaml")
    assert not killed.exists() and not old.exists()
    assert writing.exists()  # a build still writing: left alone
    assert elsewhere.exists()  # another host's, recent: it may still be writing


def test_the_same_project_elsewhere_builds_the_same_bytes_without_borrowing_its_output(
    project, composer_cache_env, tmp_path_factory
):
    """Outputs do not depend on where the project is; entries are not shared between two
    checkouts all the same (a rejected row's detail may name a file's folder)."""
    write_jsonl(project / "data" / "a2.jsonl", chats("gamma", 5))
    text = (project / "manifest.yaml").read_text().replace("data/a.jsonl", "data/a*.jsonl")
    (project / "manifest.yaml").write_text(text)
    build(project / "manifest.yaml")
    elsewhere = tmp_path_factory.mktemp("checkout") / "project"
    shutil.copytree(project, elsewhere, ignore=shutil.ignore_patterns("out"))
    mark = log_length(composer_cache_env)
    build(elsewhere / "manifest.yaml")
    assert events(composer_cache_env, mark)[("output", "t", "miss")] == 1
    assert snapshot(elsewhere / "out") == snapshot(project / "out")


def test_code_hashes_cover_the_helpers_a_plugin_or_scorer_reaches(tmp_path, monkeypatch):
    """A plugin's (or scorer's) hash covers the modules of its own it reaches: another
    plugin whose function it calls, a shared helper, a module beside a lone scorer; not
    composer's own code (hashed whole, apart) nor third-party libraries."""
    import importlib

    from composer import codehash

    def files(name: str) -> list[str]:
        module = importlib.import_module(name)
        return sorted(Path(f).name for f in codehash.reached_files(module))

    assert files("composer.sources.fanfics") == ["fanfics.py", "text.py"]
    assert files("composer.sources.ai2_arc") == ["_choices.py", "ai2_arc.py"]
    assert files("composer.sources.camel_ai_biology") == ["_camel.py", "camel_ai_biology.py"]

    (tmp_path / "cachetest_score.py").write_text(
        "import numpy\nimport cachetest_helper\n\n"
        "def score(t):\n    return cachetest_helper.THRESH\n"
    )
    (tmp_path / "cachetest_helper.py").write_text("THRESH = 0.0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    scorer = importlib.import_module("cachetest_score")
    assert sorted(Path(f).name for f in codehash.reached_files(scorer)) == [
        "cachetest_helper.py",
        "cachetest_score.py",
    ]
    before = codehash.module_sha(scorer)
    (tmp_path / "cachetest_helper.py").write_text("THRESH = 1.0\n")
    codehash.file_sha.cache_clear()  # a fresh process: the edit is seen
    assert codehash.module_sha(scorer) != before


def test_a_cache_that_cannot_be_written_costs_a_warning_not_the_build(
    project, tmp_path_factory, monkeypatch
):
    cache = tmp_path_factory.mktemp("unwritable")
    (cache / "stages").write_text("not a folder")  # every store fails (root ignores modes)
    monkeypatch.setenv("COMPOSER_CACHE", str(cache))
    result = invoke("build", str(project / "manifest.yaml"), "-q")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if "cannot store" in line]
    assert len(warnings) == 1  # said once, not once per entry
    assert warnings[0].startswith(f"Warning: cannot store in the cache {cache} (source a): ")
    built = snapshot(project / "out")
    assert built == clean_build(project, tmp_path_factory, monkeypatch)


def test_hub_data_at_no_known_commit_is_not_cached():
    """Offline, a hub dataset's commit is not known: what was read may change under the
    same manifest, so no stage that depends on it is cached (local files always are)."""
    from composer.stages import pinned

    local = {"upstream": {"files": {"a.jsonl": "ab12"}}, "inputs": {}}
    hub_folder = {"upstream": {"hub": "/data/x", "files": {"x.parquet": "cd34"}}, "inputs": {}}
    online = {"upstream": {"hub": "org/x", "resolved": "c0ffee"}, "inputs": {}}
    offline = {"upstream": {"hub": "org/x", "resolved": None}, "inputs": {}}
    joined_offline = {**online, "inputs": {"old": {"hub": "org/y", "resolved": None}}}
    assert pinned(local) and pinned(hub_folder) and pinned(online)
    assert not pinned(offline) and not pinned(joined_offline)
    lock = {"sources": {"a": local, "b": online}, "decontamination": None, "templates": {}}
    assert pinned(lock)
    assert not pinned({**lock, "sources": {"a": local, "b": offline}})


def test_an_empty_key_computes_and_says_so(composer_cache_env):
    cache = StageCache(composer_cache_env)
    assert cache.through("source", "", "x", lambda: 42, None, None) == 42
    assert cache.summary() == "1 not cached (hub data at no known commit)"
    assert not (composer_cache_env / "stages").exists()


def test_tuning_a_sample_size_or_confidence_does_not_convert_the_source_again(
    project, composer_cache_env, tmp_path_factory, monkeypatch
):
    build(project / "manifest.yaml")
    text = (project / "manifest.yaml").read_text()
    text = text.replace("confidence: 3", "confidence: 1\n  sample: 10")
    (project / "manifest.yaml").write_text(text)
    mark = log_length(composer_cache_env)
    result = build(project / "manifest.yaml")
    seen = events(composer_cache_env, mark)
    assert {n for (stage, n, e) in seen if stage == "source" and e == "hit"} == {"a", "b", "c"}
    [a] = [s for s in result.report["sources"] if s["name"] == "a"]
    assert (a["confidence"], a["sampled"]) == (1, 10)
    assert snapshot(project / "out") == clean_build(project, tmp_path_factory, monkeypatch)


def test_prune_removes_the_entries_no_build_used_lately(project, composer_cache_env):
    build(project / "manifest.yaml")
    [output] = (composer_cache_env / "stages" / "output").rglob("entry.json")
    month_ago = time.time() - 31 * 24 * 3600
    os.utime(output, (month_ago, month_ago))
    result = invoke("cache", "prune", "--days", "30")
    assert result.exit_code == 0, result.output
    assert "1 entry unused for 30 days" in result.stderr
    folders = StageCache(composer_cache_env).info()["folders"]
    assert folders["output"]["entries"] == 0 and folders["source"]["entries"] == 3
    mark = log_length(composer_cache_env)
    build(project / "manifest.yaml")  # a used entry is fresh again: nothing more to prune
    assert events(composer_cache_env, mark)[("output", "t", "miss")] == 1
    assert "0 entries" in invoke("cache", "prune", "--days", "30").stderr
