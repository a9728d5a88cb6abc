"""The dataset card (OUT/README.md), `composer push` and `composer stats`.

Cards are checked on real builds: parsed as YAML and by huggingface_hub, and loaded back
with `datasets.load_dataset` from the output folder. Push runs offline: the Hub calls are
the one stand-in (there is no network), so the tests check what would be uploaded.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

import composer
from composer.card import (
    card_data,
    data_configs,
    dataset_card,
    license_fields,
    size_category,
    write_card,
)
from composer.cli import cli
from composer.errors import UserError
from composer.hub_push import push
from composer.manifest import load_manifest
from composer.plugins import registry
from composer.stats import column_stats, load_values, text_histogram
from tests.helpers import assert_user_error, invoke, read_parquet, write_jsonl, write_manifest

BENCH_ITEM = (
    "A farmer has seventeen sheep and all but nine run away through a hole in the fence, "
    "so how many sheep does the farmer have left in the field?"
)
TOKEN = "hf_TopSecretToken123"


def conv(question: str, answer: str) -> list[dict]:
    return [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]


def write_sources(folder: Path) -> None:
    chats = [
        {"conversations": conv(f"Question {i}: " + "why? " * i, "Because. " * (i + 1))}
        for i in range(1, 15)
    ]
    chats.append({"conversations": conv(BENCH_ITEM, "Nine.")})
    chats.append({"conversations": conv("Question 3: " + "why? " * 3, "A repeat.")})  # duplicate
    write_jsonl(folder / "chats.jsonl", chats)
    write_jsonl(
        folder / "prefs.jsonl",
        [
            {"prompt": f"Pick a colour number {i}", "chosen": "Blue " * i, "rejected": "No."}
            for i in range(1, 9)
        ],
    )
    write_jsonl(folder / "notes.jsonl", [{"text": f"Note {i}. " + "words " * i} for i in range(6)])
    write_jsonl(folder / "bench.jsonl", [{"question": BENCH_ITEM, "answer": "9"}])


def demo_manifest(folder: Path, **keys) -> Path:
    write_sources(folder)
    return write_manifest(
        folder,
        [
            {"name": "chats", "plugin": "sharegpt", "path": "chats.jsonl", "confidence": 2},
            {"name": "prefs", "plugin": "dpo", "path": "prefs.jsonl"},
            {"name": "notes", "plugin": "text", "path": "notes.jsonl"},
        ],
        formats=["chatml", "alpaca"],
        split={"validation": 0.25},
        output={"dir": "out"},
        decontaminate={
            "benchmarks": [{"name": "gsm8k", "path": "bench.jsonl", "split": "test"}],
            "embedding": False,
        },
        **keys,
    )


@pytest.fixture
def built(tmp_path):
    """A real build of three small sources, with its card written beside the report."""
    path = demo_manifest(tmp_path)
    result = composer.build(path)
    manifest = load_manifest(path)
    write_card(result.output_dir, result.report, manifest)
    return result, manifest


def split_card(text: str) -> tuple[dict, str]:
    assert text.startswith("---\n")
    header, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(header), body


# ---------------------------------------------------------------- the card


def test_the_card_header_is_valid_dataset_card_metadata(built):
    result, _ = built
    text = (result.output_dir / "README.md").read_text(encoding="utf-8")
    header, _ = split_card(text)
    assert header["pretty_name"] == "t"
    assert header["tags"] == ["composer", "sft", "dpo", "text"]
    assert header["task_categories"] == ["text-generation"]
    assert header["size_categories"] == ["n<1K"]
    assert header["license"] == "unknown"  # generic plugins on local files: nothing known
    configs = {c["config_name"]: c for c in header["configs"]}
    shapes = ["sft", "alpaca", "dpo", "text"]
    rendered = ["chatml-sft", "chatml-dpo", "alpaca-sft", "alpaca-dpo"]
    assert list(configs) == shapes + rendered
    assert configs["sft"]["default"] is True
    assert configs["sft"]["data_files"] == [
        {"split": "train", "path": "sft/messages/train.parquet"},
        {"split": "validation", "path": "sft/messages/validation.parquet"},
    ]
    assert configs["chatml-sft"]["data_files"][0]["path"] == "formats/chatml/sft/train.parquet"
    hub = pytest.importorskip("huggingface_hub")
    card = hub.DatasetCard(text)  # parses the header as the Hub does, offline
    assert card.data.pretty_name == "t" and card.data.license == "unknown"
    assert [c["config_name"] for c in card.data.to_dict()["configs"]] == shapes + rendered


def test_datasets_loads_every_config_the_card_declares(built):
    from datasets import load_dataset

    result, _ = built
    outputs = result.report["outputs"]
    folders = {
        "sft": "sft/messages",
        "alpaca": "sft/alpaca",
        "dpo": "dpo/pairs",
        "text": "text",
        "chatml-sft": "formats/chatml/sft",
        "alpaca-dpo": "formats/alpaca/dpo",
    }
    for config, folder in folders.items():
        loaded = load_dataset(str(result.output_dir), config)
        for split, data in loaded.items():
            assert data.num_rows == outputs[f"{folder}/{split}.parquet"] > 0
    sft = load_dataset(str(result.output_dir), "sft")["train"]
    assert sft.column_names == ["id", "source", "messages"]
    assert (
        load_dataset(str(result.output_dir))["train"].num_rows
        == outputs["sft/messages/train.parquet"]
    )


def test_the_card_body_accounts_for_the_mixture(built):
    result, _ = built
    report = result.report
    _, body = split_card((result.output_dir / "README.md").read_text(encoding="utf-8"))
    sources = {s["name"]: s for s in report["sources"]}
    items = sum(s["sampled"] for s in sources.values())
    chats = sources["chats"]
    assert chats["contaminated"] == 1 and chats["duplicates"] == 1
    rows = sum(n for by_format in chats["rows_out"].values() for n in by_format.values())
    share = f"{chats['sampled'] / items:.1%}"
    row = f"| chats | sharegpt | `chats.jsonl` | unknown | 2 | {chats['sampled']} | {share} |"
    assert f"{row} {rows} |" in body
    assert "## Deduplication" in body and "| chats | chats | 1 |" in body
    assert "## Decontamination" in body
    assert "Checked against gsm8k (1 benchmark item): 1 record removed." in body
    assert "| chats | 1 | 1 |" in body
    for path, n in report["outputs"].items():
        if "/" in path and n:
            assert f"`{path}` | {n:,} |" in body
    assert 'load_dataset(repo, "sft")' in body and 'load_dataset(repo, "dpo")' in body
    assert 'load_dataset(repo, "chatml-sft")' in body and "SFTTrainer(" in body
    assert dataset_card(report, load_manifest(result.output_dir.parent / "manifest.yaml")) == (
        (result.output_dir / "README.md").read_text(encoding="utf-8")
    )  # no timestamps: a rebuild writes the same card


def test_the_loading_example_names_the_repo_when_given(built):
    result, manifest = built
    text = dataset_card(result.report, manifest, repo_id="me/mix")
    assert 'repo = "me/mix"' in text
    assert 'repo = "<user>/t"' in dataset_card(result.report, manifest)


def test_filters_in_the_card_show_settings_and_what_each_dropped(built):
    result, _ = built
    manifest = load_manifest(
        demo_manifest(
            result.output_dir.parent,
            filters={"response_chars": {"min": 5}, "language": ["en"]},
        )
    )
    report = json.loads(json.dumps(result.report))
    chats = report["sources"][0]
    chats["filtered"], chats["filtered_by"] = 3, {"response_chars": 2, "language": 1}
    text = dataset_card(report, manifest)
    header, body = split_card(text)
    assert header["language"] == ["en"]  # every source is filtered to English
    assert "## Filters" in body and "Filters dropped 3 records before dedup." in body
    assert "- every source: `{response_chars: {min: 5.0}, language: [en]}`" in body
    assert "| chats | response_chars | 2 |" in body and "| chats | language | 1 |" in body


def test_a_real_build_with_filters_shows_them_in_the_card(tmp_path):
    pytest.importorskip("composer.filters")
    path = demo_manifest(tmp_path, filters={"response_chars": {"min": 30}})
    result = composer.build(path)
    dropped = {s["name"]: s["filtered_by"] for s in result.report["sources"]}
    assert sum(sum(d.values()) for d in dropped.values()) > 0
    _, body = split_card(dataset_card(result.report, load_manifest(path)))
    for name, by_filter in dropped.items():
        for filter_name, n in by_filter.items():
            assert f"| {name} | {filter_name} | {n} |" in body


def test_the_licence_is_the_sources_one_or_other_with_each_listed(built):
    result, _ = built
    assert license_fields({"a": "mit", "b": "mit"}) == {"license": "mit"}
    assert license_fields({"a": "unknown"}) == {"license": "unknown"}
    mixed = license_fields({"a": "mit", "b": "cc-by-4.0", "c": "mit", "d": "unknown"})
    assert mixed == {
        "license": "other",
        "license_name": "mixed",
        "license_details": "cc-by-4.0: b; mit: a, c; unknown: d",
    }
    # Catalogue plugins carry their upstream's licence.
    plugins = registry()
    licensed = [p for p in plugins.values() if p.license not in (None, "unknown")]
    first, second = licensed[0], next(p for p in licensed if p.license != licensed[0].license)
    report = json.loads(json.dumps(result.report))
    for source in report["sources"]:
        source["plugin"] = first.name
    assert card_data(report)["license"] == first.license
    report["sources"][1]["plugin"] = second.name
    header, body = split_card(dataset_card(report))
    assert header["license"] == "other"
    assert f"{first.license}: chats, notes" in header["license_details"]
    assert f"{second.license}: prefs" in header["license_details"]
    assert "## Licences" in body


def test_configs_leave_out_empty_files_and_sizes_follow_the_hub():
    outputs = {
        "records.parquet": 10,
        "formats/chatml/sft/train.parquet": 8,
        "sft/messages/train.parquet": 8,
        "sft/messages/validation.parquet": 0,
        "text/test.parquet": 0,
        "dpo/pairs/test.parquet": 1,
        "dpo/pairs/train.parquet": 4,
        "rejected.jsonl": 2,
    }
    assert data_configs(outputs) == [
        {
            "config_name": "sft",
            "data_files": [{"split": "train", "path": "sft/messages/train.parquet"}],
            "default": True,
        },
        {
            "config_name": "dpo",
            "data_files": [
                {"split": "train", "path": "dpo/pairs/train.parquet"},
                {"split": "test", "path": "dpo/pairs/test.parquet"},
            ],
        },
        {
            "config_name": "chatml-sft",
            "data_files": [{"split": "train", "path": "formats/chatml/sft/train.parquet"}],
        },
    ]
    assert [size_category(n) for n in (0, 999, 1000, 250_000, 10**13)] == [
        "n<1K",
        "n<1K",
        "1K<n<10K",
        "100K<n<1M",
        "n>1T",
    ]


# ---------------------------------------------------------------- push


class FakeHub:
    """Records the Hub calls push makes (the one stand-in: there is no network here)."""

    def __init__(self, monkeypatch, error: Exception | None = None):
        from huggingface_hub import HfApi, RepoUrl

        self.calls: list[tuple[str, dict]] = []
        hub = self

        def create_repo(api, repo_id, **kwargs):
            hub.calls.append(("create_repo", {"repo_id": repo_id, "token": api.token, **kwargs}))
            if error is not None:
                raise error
            full = repo_id if "/" in repo_id else f"someone/{repo_id}"
            return RepoUrl(f"https://huggingface.co/datasets/{full}")

        def create_branch(api, repo_id, **kwargs):
            hub.calls.append(("create_branch", {"repo_id": repo_id, **kwargs}))

        def upload_folder(api, **kwargs):
            hub.calls.append(("upload_folder", kwargs))

        monkeypatch.setattr(HfApi, "create_repo", create_repo)
        monkeypatch.setattr(HfApi, "create_branch", create_branch)
        monkeypatch.setattr(HfApi, "upload_folder", upload_folder)

    def call(self, name: str) -> dict:
        [found] = [kwargs for n, kwargs in self.calls if n == name]
        return found


def test_push_creates_the_dataset_repo_and_uploads_the_folder(built, monkeypatch):
    result, _ = built
    hub = FakeHub(monkeypatch)
    url = push(result.output_dir, "me/mix", private=True, token=TOKEN)
    assert url == "https://huggingface.co/datasets/me/mix"
    assert [n for n, _ in hub.calls] == ["create_repo", "upload_folder"]
    assert hub.call("create_repo") == {
        "repo_id": "me/mix",
        "token": TOKEN,
        "repo_type": "dataset",
        "private": True,
        "exist_ok": True,
    }
    upload = hub.call("upload_folder")
    assert Path(upload["folder_path"]) == result.output_dir
    assert (upload["repo_id"], upload["repo_type"], upload["revision"]) == (
        "me/mix",
        "dataset",
        None,
    )
    assert upload["commit_message"] == "composer: t (seed 42)"
    # What goes up: the card, the report and the parquet files the card's configs name.
    uploaded = {p.relative_to(result.output_dir).as_posix() for p in result.output_dir.rglob("*")}
    header, _ = split_card((result.output_dir / "README.md").read_text(encoding="utf-8"))
    named = {f["path"] for c in header["configs"] for f in c["data_files"]}
    assert {"README.md", "report.json", "records.parquet"} | named <= uploaded


def test_push_to_a_branch_and_to_a_bare_name(built, monkeypatch):
    result, _ = built
    hub = FakeHub(monkeypatch)
    url = push(result.output_dir, "mix", revision="v2")
    assert url == "https://huggingface.co/datasets/someone/mix/tree/v2"
    assert hub.call("create_branch") == {
        "repo_id": "someone/mix",
        "branch": "v2",
        "repo_type": "dataset",
        "exist_ok": True,
    }
    upload = hub.call("upload_folder")
    assert (upload["repo_id"], upload["revision"]) == ("someone/mix", "v2")
    assert hub.call("create_repo")["private"] is False


def test_push_refuses_a_folder_that_is_not_a_composer_output(built, tmp_path, monkeypatch):
    result, _ = built
    hub = FakeHub(monkeypatch)
    other = tmp_path / "other"
    other.mkdir()
    (other / "data.parquet").write_bytes(b"x")
    with pytest.raises(UserError, match="not a composer output folder"):
        push(other, "me/x")
    with pytest.raises(UserError, match="no such folder"):
        push(tmp_path / "missing", "me/x")
    card = result.output_dir / "README.md"
    card.write_text("# no header\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"README\.md: not a dataset card"):
        push(result.output_dir, "me/x")
    card.unlink()
    with pytest.raises(UserError, match=r"README\.md: missing"):
        push(result.output_dir, "me/x")
    assert hub.calls == []


def http_error(status: int, message: str):
    """A real HfHubHTTPError around a real response of the HTTP library huggingface_hub uses
    (httpx, or its successor, by version)."""
    from huggingface_hub.errors import HfHubHTTPError

    http = importlib.import_module(HfHubHTTPError.__mro__[1].__module__.split(".")[0])
    request = http.Request("POST", "https://huggingface.co/api/repos/create")
    return HfHubHTTPError(message, response=http.Response(status, request=request))


def test_a_hub_error_becomes_one_line_without_the_token(built, monkeypatch):
    result, _ = built
    FakeHub(
        monkeypatch,
        http_error(401, f"401 Client Error: Unauthorized (token {TOKEN})\n\nInvalid credentials"),
    )
    with pytest.raises(UserError) as caught:
        push(result.output_dir, "me/mix", token=TOKEN)
    message = str(caught.value)
    assert TOKEN not in message and "\n" not in message
    assert message == (
        "push to me/mix: 401 Client Error: Unauthorized (token ***) "
        "(log in with `hf auth login`, set HF_TOKEN, or pass --token)"
    )
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_push_offline_is_a_user_error(built):
    """No stand-in: the test session runs huggingface_hub in offline mode (conftest)."""
    result, _ = built
    with pytest.raises(UserError, match=r"push to me/mix: .*offline") as caught:
        push(result.output_dir, "me/mix", token=TOKEN)
    assert TOKEN not in str(caught.value)


@pytest.mark.skipif("push" not in cli.commands, reason="wired by the lead")
def test_push_command(built, monkeypatch, tmp_path):
    result, _ = built
    hub = FakeHub(monkeypatch)
    out = invoke("push", str(result.output_dir), "me/mix", "--private", "--token", TOKEN)
    assert out.exit_code == 0, out.output
    assert "https://huggingface.co/datasets/me/mix" in out.stdout
    assert TOKEN not in out.output
    assert hub.call("create_repo")["private"] is True
    assert_user_error(
        invoke("push", str(tmp_path), "me/mix"),
        f"{tmp_path}: not a composer output folder (no valid report.json); "
        "push the folder `composer build` wrote",
    )


# ---------------------------------------------------------------- stats


def test_column_stats_counts_missing_values_and_percentiles():
    values = np.array([4.0, np.nan, 1.0, 3.0, 2.0, np.nan, 10.0])
    stats = column_stats(values)
    present = np.array([4.0, 1.0, 3.0, 2.0, 10.0])
    assert (stats["count"], stats["missing"]) == (5, 2)
    assert (stats["min"], stats["max"], stats["mean"]) == (1.0, 10.0, 4.0)
    for p in (1, 5, 25, 50, 75, 95, 99):
        assert stats[f"p{p}"] == pytest.approx(np.percentile(present, p))
    assert stats["p50"] == 3.0
    empty = column_stats(np.array([np.nan]))
    assert empty["count"] == 0 and empty["missing"] == 1 and empty["p50"] is None


def test_the_histogram_has_a_row_per_bin_and_bars_scaled_to_the_fullest():
    values = np.array([1] * 8 + [2] * 4 + [3] * 1, dtype=float)
    rows = text_histogram(values, bins=20, width=16).splitlines()
    assert [r.split("│")[0].strip() for r in rows] == ["1", "2", "3"]  # one bin per value
    bars = [r.split("│")[1].rsplit(" ", 1)[0].rstrip() for r in rows]
    assert bars[0] == "█" * 16 and bars[1] == "█" * 8 and bars[2] == "██"
    assert [int(r.rsplit(" ", 1)[1]) for r in rows] == [8, 4, 1]
    wide = np.arange(1000, dtype=float)
    rows = text_histogram(wide, bins=10).splitlines()
    assert len(rows) == 10 and rows[0].startswith("  0 –  99 │")
    assert sum(int(r.rsplit(" ", 1)[1]) for r in rows) == 1000
    rows = text_histogram(np.array([0.5, 0.25, 0.75, 1.0]), bins=3).splitlines()
    assert rows[0].startswith("[0.25,  0.5) │") and rows[-1].startswith("[0.75,    1] │")
    assert [int(r.rsplit(" ", 1)[1]) for r in rows] == [1, 1, 2]  # the last bin is closed
    logged = text_histogram(np.geomspace(1, 10_000, 500), bins=4, log=True).splitlines()
    assert [int(r.rsplit(" ", 1)[1]) for r in logged] == [125, 125, 125, 125]
    assert text_histogram(np.array([np.nan])) == "(no values)"


def test_values_of_output_files_strings_are_lengths_numbers_as_they_are(built):
    result, _ = built
    path = result.output_dir / "formats" / "chatml" / "sft" / "train.parquet"
    rows = read_parquet(path)
    assert list(load_values(str(path), "completion")) == [len(r["completion"]) for r in rows]
    assert list(load_values(str(path), "turn")) == [r["turn"] for r in rows]
    records = result.output_dir / "records.parquet"
    chats = [r for r in read_parquet(records) if r["source"] == "chats"]
    assert list(load_values(str(records), "conversations", "chats")) == [
        len(r["conversations"]) for r in chats
    ]


def test_values_of_input_files_with_missing_values(tmp_path):
    write_jsonl(
        tmp_path / "in.jsonl",
        [{"q": "abc", "n": 1.5}, {"q": None, "n": None}, {"q": "héllo", "n": 3}],
    )
    got = load_values(str(tmp_path / "in.jsonl"), "q")
    assert np.isnan(got[1]) and list(got[[0, 2]]) == [3, 5]
    got = load_values(str(tmp_path / "in.jsonl"), "n")
    assert np.isnan(got[1]) and list(got[[0, 2]]) == [1.5, 3]
    (tmp_path / "in.csv").write_text("q,score\nhi,0.5\nthere,2\n", encoding="utf-8")
    assert list(load_values(str(tmp_path / "in.csv"), "score")) == [0.5, 2.0]
    assert list(load_values(str(tmp_path / "in.csv"), "q")) == [2, 5]


def test_unknown_columns_and_sources_are_user_errors(built, tmp_path):
    result, _ = built
    path = result.output_dir / "formats" / "chatml" / "sft" / "train.parquet"
    with pytest.raises(UserError) as caught:
        load_values(str(path), "completin")
    assert str(caught.value) == (
        f"{path}: no column 'completin' (did you mean 'completion'?); columns: id, source, "
        "turn, prompt, completion; a scorer (length, words, ...) needs records: "
        "records.parquet, or a manifest and --source"
    )
    records = result.output_dir / "records.parquet"
    with pytest.raises(UserError, match=r"no column 'lenght' \(did you mean 'length'\?\)"):
        load_values(str(records), "lenght")
    with pytest.raises(UserError, match=r"no rows of source 'chat' \(did you mean 'chats'\?\)"):
        load_values(str(records), "text", "chat")
    write_jsonl(tmp_path / "in.jsonl", [{"q": "a"}])
    with pytest.raises(UserError, match="--source needs a `source` column"):
        load_values(str(tmp_path / "in.jsonl"), "q", "chats")
    with pytest.raises(UserError, match="no such file"):
        load_values(str(tmp_path / "none.parquet"), "q")


def test_values_of_a_manifest_source_are_its_converted_records(tmp_path):
    path = demo_manifest(tmp_path)
    notes = load_values(str(path), "text", "notes")
    built = composer.build(path)  # no sampling: the records are the converted ones, less none
    texts = [r["text"] for r in read_parquet(built.output_dir / "records.parquet")]
    assert sorted(notes) == sorted(len(t) for t in texts if t is not None)
    assert len(notes) == 6
    chats = load_values(str(path), "conversations", "chats")
    assert len(chats) == 16 and set(chats) == {2}  # before dedup and decontamination
    with pytest.raises(UserError, match="a manifest needs --source, one of: chats, prefs, notes"):
        load_values(str(path), "text")
    with pytest.raises(UserError, match=r"no source 'note' \(did you mean 'notes'\?\)"):
        load_values(str(path), "text", "note")


def test_scorers_are_computed_on_records_each_kind_in_its_rows(built):
    pytest.importorskip("composer.filters")
    from composer.filters import score

    result, manifest = built
    records = result.output_dir / "records.parquet"
    table = pq.read_table(records)
    words = load_values(str(records), "words")
    kinds = table.column("kind").to_pylist()
    assert len(set(kinds)) == 3  # sft, dpo and text rows, scored apart and put back in place
    for kind in ("sft", "dpo", "text"):
        index = [i for i, k in enumerate(kinds) if k == kind]
        expected = np.asarray(score(table.take(index), kind, "words", manifest.base_dir), float)
        assert list(words[index]) == list(expected)
    notes = [r for r in read_parquet(records) if r["source"] == "notes"]
    assert list(load_values(str(records), "words", "notes")) == [
        len(r["text"].split()) for r in notes
    ]
    chats = load_values(str(manifest.path), "words", "chats")
    assert len(chats) == 16 and np.all(chats > 0)


def test_meta_fields_are_read_from_records(built):
    pytest.importorskip("composer.filters")
    result, _ = built
    records = result.output_dir / "records.parquet"
    rows = [json.loads(r["meta"])["row"] for r in read_parquet(records)]
    assert list(load_values(str(records), "meta.row")) == rows


@pytest.mark.skipif("stats" not in cli.commands, reason="wired by the lead")
def test_stats_command(built):
    result, _ = built
    path = str(result.output_dir / "formats" / "chatml" / "sft" / "train.parquet")
    out = invoke("stats", path, "completion", "--bins", "5")
    assert out.exit_code == 0, out.output
    lines = out.stdout.splitlines()
    assert lines[0].startswith("completion: ") and " values, 0 missing" in lines[0]
    assert sum(int(r.rsplit(" ", 1)[1]) for r in lines if "│" in r) == len(read_parquet(path))
    out = invoke("stats", path, "completion", "--json")
    assert json.loads(out.stdout)["count"] == len(read_parquet(path))
    assert_user_error(
        invoke("stats", path, "completin"),
        f"{path}: no column 'completin' (did you mean 'completion'?); columns: id, source, "
        "turn, prompt, completion; a scorer (length, words, ...) needs records: "
        "records.parquet, or a manifest and --source",
    )
