"""composer.lock: written by every build, checked by `composer build --locked`."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from composer.build import build
from composer.errors import UserError
from composer.lock import LOCK_NAME, redact
from tests.helpers import invoke, snapshot, write_jsonl, write_manifest

ALPACA = [
    {"instruction": f"Question {i}?", "output": f"Answer {i}.", "input": ""} for i in range(8)
]
CHATS = [
    {"conversations": [{"from": "human", "value": f"Hi {i}"}, {"from": "gpt", "value": f"Yo {i}"}]}
    for i in range(5)
]
ZEPHYR = """{#- composer
description: Zephyr
vars: {eos_token: "</s>"}
-#}
{%- for m in messages -%}
{{- "<|" ~ m["role"] ~ "|>\\n" ~ m["content"] ~ eos_token ~ "\\n" -}}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- "<|assistant|>\\n" -}}{%- endif -%}
"""


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def project(tmp_path) -> Path:
    """A manifest with two local sources and a format from templates_dir."""
    data = tmp_path / "data"
    data.mkdir()
    write_jsonl(data / "alpaca.jsonl", ALPACA)
    write_jsonl(data / "chats.jsonl", CHATS)
    (tmp_path / "formats").mkdir()
    (tmp_path / "formats" / "zephyr.jinja").write_text(ZEPHYR, encoding="utf-8")
    write_manifest(
        tmp_path,
        [
            {"name": "alpaca", "path": "data/alpaca.jsonl"},
            {"name": "chats", "plugin": "sharegpt", "path": "data/chats.jsonl"},
        ],
        formats=["chatml", "zephyr"],
        templates_dir="formats",
        split={"validation": 0.25},
        output={"dir": "out"},
    )
    return tmp_path


def build_cli(folder: Path, *args: str):
    return invoke("build", str(folder / "manifest.yaml"), "-q", *args)


def keep_lock(folder: Path) -> Path:
    """The first build's lock, copied out of the output folder (which a build replaces)."""
    return Path(shutil.copy(folder / "out" / LOCK_NAME, folder / "locked.json"))


def test_every_build_writes_a_deterministic_lock(project):
    build(project / "manifest.yaml")
    text = (project / "out" / LOCK_NAME).read_text(encoding="utf-8")
    lock = json.loads(text)
    assert text == json.dumps(lock, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert lock["manifest"]["file_sha256"] == sha(project / "manifest.yaml")
    assert lock["manifest"]["seed"] == 42
    assert lock["packages"]["pyarrow"] and "python" in lock["packages"]
    assert lock["packages"]["composer"]
    alpaca = lock["sources"]["alpaca"]
    assert alpaca["plugin"] == "alpaca" and alpaca["kind"] == "sft"
    assert alpaca["upstream"] == {
        "files": {"data/alpaca.jsonl": sha(project / "data/alpaca.jsonl")}
    }
    import composer.sources.alpaca as module
    from composer.codehash import module_sha

    assert alpaca["plugin_sha256"] == module_sha(module)
    assert lock["templates"]["zephyr"] == {
        "file": "zephyr.jinja",
        "sha256": sha(project / "formats" / "zephyr.jinja"),
        "vars": {"eos_token": "</s>"},
    }
    assert lock["decontamination"] is None
    out = project / "out"
    assert lock["outputs"] == {
        name: hashlib.sha256(data).hexdigest()
        for name, data in snapshot(out).items()
        if name != LOCK_NAME
    }
    assert "report.json" in lock["outputs"] and "sft/messages/train.parquet" in lock["outputs"]
    build(project / "manifest.yaml")
    assert (out / LOCK_NAME).read_text(encoding="utf-8") == text


def test_seed_override_is_the_seed_recorded(project):
    build(project / "manifest.yaml", seed=7)
    assert json.loads((project / "out" / LOCK_NAME).read_text())["manifest"]["seed"] == 7


def test_locked_build_gives_byte_identical_output(project):
    assert build_cli(project).exit_code == 0
    first = snapshot(project / "out")
    locked = keep_lock(project)
    for _ in range(2):
        result = build_cli(project, "--locked", str(locked))
        assert result.exit_code == 0, result.output
        assert snapshot(project / "out") == first
    # The lock inside the output folder itself works too (it is read before anything is written).
    assert build_cli(project, "--locked", str(project / "out" / LOCK_NAME)).exit_code == 0
    assert snapshot(project / "out") == first


def test_changed_source_file_fails_the_locked_build(project):
    build(project / "manifest.yaml")
    before = snapshot(project / "out")
    locked = keep_lock(project)
    old = sha(project / "data/alpaca.jsonl")
    write_jsonl(project / "data/alpaca.jsonl", ALPACA[:-1])
    new = sha(project / "data/alpaca.jsonl")
    result = build_cli(project, "--locked", str(locked))
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert result.stderr == (
        f"Error: {locked}: the build's inputs differ from this lock\n"
        f"  source 'alpaca': file data/alpaca.jsonl changed (sha256 {old[:8]}… -> {new[:8]}…)\n"
    )
    assert snapshot(project / "out") == before


def test_added_and_removed_files_are_named(project):
    write_manifest(
        project,
        [{"name": "chats", "plugin": "sharegpt", "path": "data/c*.jsonl"}],
        formats=["chatml"],
        output={"dir": "out"},
    )
    build(project / "manifest.yaml")
    locked = keep_lock(project)
    (project / "data/chats.jsonl").rename(project / "data/chats2.jsonl")
    with pytest.raises(UserError) as info:
        build(project / "manifest.yaml", locked=locked)
    assert str(info.value).splitlines()[1:] == [
        "  source 'chats': file data/chats.jsonl is gone",
        "  source 'chats': new file data/chats2.jsonl",
    ]


def test_changed_template_and_manifest_are_named(project):
    build(project / "manifest.yaml")
    locked = keep_lock(project)
    (project / "formats" / "zephyr.jinja").write_text(ZEPHYR.replace("<|", "<<|"))
    text = (project / "manifest.yaml").read_text()
    (project / "manifest.yaml").write_text(text.replace("validation: 0.25", "validation: 0.5"))
    result = build_cli(project, "--locked", str(locked))
    assert result.exit_code == 2
    assert result.stderr.splitlines()[1:] == ["  manifest changed", "  template 'zephyr' changed"]


def test_changed_seed_is_named(project):
    build(project / "manifest.yaml")
    locked = keep_lock(project)
    with pytest.raises(UserError) as info:
        build(project / "manifest.yaml", seed=1, locked=locked)
    assert str(info.value).splitlines()[1:] == ["  seed changed (42 -> 1)"]


def test_a_comment_in_the_manifest_is_not_a_change(project):
    build(project / "manifest.yaml")
    first = snapshot(project / "out")
    locked = keep_lock(project)
    path = project / "manifest.yaml"
    path.write_text("# a comment\n" + path.read_text())
    build(path, locked=locked)
    after = snapshot(project / "out")
    assert {k for k in first if first[k] != after[k]} == {LOCK_NAME}


def test_package_version_change_is_a_warning(project):
    build(project / "manifest.yaml")
    locked = keep_lock(project)
    lock = json.loads(locked.read_text())
    real = lock["packages"]["pyarrow"]
    lock["packages"]["pyarrow"] = "0.1"
    locked.write_text(json.dumps(lock))
    result = build_cli(project, "--locked", str(locked))
    assert result.exit_code == 0, result.output
    assert (
        f"Warning: package pyarrow 0.1 -> {real}: the output may differ from the locked build"
        in result.stderr
    )


def test_missing_or_broken_lock_is_a_user_error(project):
    result = build_cli(project, "--locked", str(project / "nope.lock"))
    assert result.exit_code == 2
    assert result.stderr == f"Error: {project / 'nope.lock'}: no such lock file\n"
    (project / "bad.lock").write_text("{not json")
    result = build_cli(project, "--locked", str(project / "bad.lock"))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {project / 'bad.lock'}:1: not a composer.lock")
    assert not (project / "out").exists()


def test_changed_plugin_code_is_named(project, monkeypatch):
    build(project / "manifest.yaml")
    locked = keep_lock(project)
    lock = json.loads(locked.read_text())
    lock["sources"]["chats"]["plugin_sha256"] = "0" * 64
    locked.write_text(json.dumps(lock))
    with pytest.raises(UserError, match=r"\n  plugin 'sharegpt' code changed$"):
        build(project / "manifest.yaml", locked=locked)


# ---------------------------------------------------------------- hub sources, credentials


@pytest.fixture
def hub_folder(tmp_path) -> Path:
    """A local dataset folder in hub layout, read by `datasets.load_dataset`."""
    folder = tmp_path / "org_dataset"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", ALPACA)
    write_jsonl(folder / "test.jsonl", ALPACA[:2])
    return folder


def test_hub_source_given_as_a_local_folder_gets_a_files_hash(tmp_path, hub_folder):
    write_manifest(
        tmp_path, [{"name": "a", "plugin": "alpaca", "hub": str(hub_folder)}], output={"dir": "out"}
    )
    build(tmp_path / "manifest.yaml")
    upstream = json.loads((tmp_path / "out" / LOCK_NAME).read_text())["sources"]["a"]["upstream"]
    assert upstream["hub"] == str(hub_folder)
    assert upstream["split"] == "train"
    assert upstream["files"] == {
        "test.jsonl": sha(hub_folder / "test.jsonl"),
        "train.jsonl": sha(hub_folder / "train.jsonl"),
    }
    first = snapshot(tmp_path / "out")
    locked = keep_lock(tmp_path)
    build(tmp_path / "manifest.yaml", locked=locked)
    assert snapshot(tmp_path / "out") == first
    write_jsonl(hub_folder / "train.jsonl", ALPACA[:3])
    with pytest.raises(UserError, match=r"  source 'a': file train.jsonl changed \(sha256 "):
        build(tmp_path / "manifest.yaml", locked=locked)


def test_no_token_or_url_credentials_in_the_lock(tmp_path, hub_folder, monkeypatch):
    token = "hf_SeCrEtToKeN1234567890"
    monkeypatch.setenv("HF_TOKEN", token)
    url = "https://user:hunter2pw@example.com/data/train.jsonl?token=abc123tok&x=1"
    write_manifest(
        tmp_path,
        [{"name": "a", "plugin": "alpaca", "hub": str(hub_folder)}],
        output={"dir": "out"},
    )
    from composer.build import load_formats, prepare
    from composer.lock import dumps, inputs

    manifest = prepare(tmp_path / "manifest.yaml")
    source = manifest.sources[0].model_copy(update={"data_files": {"train": [url]}})
    manifest = manifest.model_copy(update={"sources": [source]})
    text = dumps(inputs(manifest, load_formats(manifest)))
    assert token not in text
    assert "hunter2pw" not in text and "user:" not in text and "abc123tok" not in text
    data_files = json.loads(text)["sources"]["a"]["upstream"]["data_files"]
    assert data_files == {"train": ["https://***@example.com/data/train.jsonl?token=***&x=1"]}
    # A real build with the token set writes no token either.
    build(tmp_path / "manifest.yaml")
    assert token not in (tmp_path / "out" / LOCK_NAME).read_text()


def test_redact_leaves_plain_paths_alone():
    assert redact(["data/*.jsonl", {"a": "hf://datasets/x/y"}, None]) == [
        "data/*.jsonl",
        {"a": "hf://datasets/x/y"},
        None,
    ]


def test_decontamination_benchmarks_are_locked(project):
    write_jsonl(project / "bench.jsonl", [{"question": "What is the capital of Atlantis?"}])
    text = (project / "manifest.yaml").read_text()
    (project / "manifest.yaml").write_text(
        text
        + "decontaminate:\n"
        + "  benchmarks: [{name: mine, path: bench.jsonl, fields: [question]}]\n"
        + "  embedding: false\n"
    )
    build(project / "manifest.yaml")
    locked = keep_lock(project)
    entry = json.loads(locked.read_text())["decontamination"]
    assert entry["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert entry["benchmarks"] == {
        "mine": {"files": {"bench.jsonl": sha(project / "bench.jsonl")}, "fields": ["question"]}
    }
    write_jsonl(project / "bench.jsonl", [{"question": "What is the capital of Lemuria?"}])
    with pytest.raises(UserError, match=r"\n  benchmark 'mine': file bench.jsonl changed \("):
        build(project / "manifest.yaml", locked=locked)


def test_a_locked_build_reads_hub_sources_and_joined_inputs_at_the_locked_commits(
    tmp_path, monkeypatch
):
    """Resolving needs the hub; the pins taken from a lock, and what is asked of `datasets`
    with them, are checked here (the hub call itself is stopped where it would go online)."""
    from composer import convert
    from composer.lock import pinned
    from composer.manifest import Manifest, Source
    from composer.plugins import registry

    locked = {
        "sources": {
            "slim": {
                "upstream": {"hub": "Open-Orca/SlimOrca", "resolved": "c0ffee1"},
                "inputs": {"airoboros": {"hub": "jondurbin/airoboros-3.2", "resolved": "beef002"}},
            },
            "local": {"upstream": {"files": {"a.jsonl": "00"}}, "inputs": {}},
        }
    }
    manifest = Manifest(
        name="m",
        sources=[Source(name="slim", plugin="slimorca"), Source(name="local", path="a.jsonl")],
    )
    manifest = pinned(manifest, locked)
    slim, local = manifest.sources
    assert (slim.revision, slim._input_revisions) == ("c0ffee1", {"airoboros": "beef002"})
    assert (local.revision, local._input_revisions) == (None, {})

    asked = []

    def offline(hub, config, split, revision, *rest):
        asked.append((hub, revision))
        raise RuntimeError("stop: this would go online")

    monkeypatch.setattr(convert, "read_hub", offline)
    with pytest.raises(RuntimeError, match="stop"):
        convert.read_inputs(manifest, slim, registry()["slimorca"])
    assert asked == [("jondurbin/airoboros-3.2", "beef002")]
