"""The bad-input policy: a share of invalid rows a source may have (`max_invalid`), files
that are not what their name says, hub datasets that are gated or missing, and
`trust_remote_code`. Each problem is one clear line and exit code 2, never a traceback."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx2
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

import composer
from composer.errors import InputError, ManifestError
from composer.readers import hub_error_message, read_hub
from tests.helpers import assert_user_error, invoke, write_jsonl, write_manifest

GOOD = {"instruction": "q", "output": "a"}


def rejected_rows(folder: Path) -> list[dict]:
    text = (folder / "out" / "rejected.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def build_cli(folder: Path, path: str, **source):
    manifest = write_manifest(
        folder,
        [{"name": "a", "plugin": "alpaca", "path": path, **source}],
        output={"dir": "out"},
    )
    return invoke("build", str(manifest), "-q")


# ---------------------------------------------------------------- max_invalid


def alpaca_rows(good: int, empty: int, broken: int) -> list[dict | str]:
    rows: list[dict | str] = [{"instruction": f"q{i}", "output": "a"} for i in range(good)]
    rows[3:3] = ["{not json"] * broken
    rows[1:1] = [{"instruction": "q", "output": ""}] * empty
    return rows


def test_more_invalid_rows_than_max_invalid_fails_with_the_reasons(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", alpaca_rows(good=93, empty=5, broken=2))
    result = build_cli(tmp_path, "a.jsonl", max_invalid=0.05)
    assert_user_error(
        result,
        "sources[0] (a): 7 of 100 rows invalid (7%), more than max_invalid 5%: "
        "empty turn: 5, unreadable row: 2; first: a.jsonl:line 9: unreadable row: invalid JSON: "
        "Expecting property name enclosed in double quotes: line 1 column 2 (char 1); "
        "fix the data or raise max_invalid",
    )
    assert not (tmp_path / "out").exists()


def test_invalid_rows_within_max_invalid_are_rejected_and_kept_in_rejected_jsonl(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", alpaca_rows(good=93, empty=5, broken=2))
    result = build_cli(tmp_path, "a.jsonl", max_invalid=0.07)
    assert result.exit_code == 0, result.output
    rejected = [
        json.loads(x) for x in (tmp_path / "out" / "rejected.jsonl").read_text().split("\n") if x
    ]
    assert len(rejected) == 7
    assert rejected[0] == {
        "source": "a",
        "where": "a.jsonl:line 9",
        "reason": "unreadable row",
        "detail": "invalid JSON: Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)",
        "row": None,  # the line is not JSON: there is no row to keep
        "index": None,  # nor a row index (`where` has its line)
    }
    empty = rejected[2]
    assert (empty["source"], empty["where"], empty["index"], empty["reason"]) == (
        "a",
        "a.jsonl:line 2",
        1,  # the upstream row's 0-based index, as a record's meta.row
        "empty turn",
    )
    assert empty["row"] == {"instruction": "q", "output": ""}


def test_max_invalid_zero_allows_no_invalid_row_and_none_is_no_limit(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", alpaca_rows(good=9, empty=1, broken=0))
    result = build_cli(tmp_path, "a.jsonl", max_invalid=0)
    assert result.exit_code == 2
    assert "1 of 10 rows invalid (10%), more than max_invalid 0%: empty turn: 1" in result.stderr
    assert build_cli(tmp_path, "a.jsonl").exit_code == 0


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"max_invalid": 1.5}, "sources[0].max_invalid: expected a number <= 1, got 1.5"),
        ({"max_invalid": -0.1}, "sources[0].max_invalid: expected a number >= 0, got -0.1"),
        (
            {"max_invalid": 0.1, "on_invalid": "fail"},
            "sources[0].max_invalid: max_invalid applies with on_invalid: skip",
        ),
        (
            {"trust_remote_code": True},
            "sources[0].trust_remote_code: trust_remote_code applies to hub sources, not path",
        ),
    ],
)
def test_bad_max_invalid_and_trust_remote_code_are_manifest_errors(tmp_path, source, message):
    write_jsonl(tmp_path / "a.jsonl", [GOOD])
    path = write_manifest(
        tmp_path, [{"name": "a", "plugin": "alpaca", "path": "a.jsonl", **source}]
    )
    with pytest.raises(ManifestError) as error:
        composer.load_manifest(path)
    assert message in str(error.value)


def test_the_new_source_keys_parse(tmp_path):
    path = write_manifest(
        tmp_path,
        [{"name": "h", "plugin": "alpaca", "hub": "x/y", "trust_remote_code": True}],
    )
    [source] = composer.load_manifest(path).sources
    assert (source.trust_remote_code, source.max_invalid) == (True, None)


# ---------------------------------------------------------------- files that are not what they say


def write_parquet(path: Path, rows: int = 2000) -> None:
    table = pa.table({"instruction": [f"q{i}" for i in range(rows)], "output": ["a" * 40] * rows})
    pq.write_table(table, path)


def test_a_parquet_file_holding_json_text(tmp_path):
    write_jsonl(tmp_path / "a.parquet", [GOOD])
    assert_user_error(
        build_cli(tmp_path, "a.parquet"),
        f"{tmp_path / 'a.parquet'}: not a parquet file (JSON text); check the file or its suffix",
    )


def test_a_truncated_parquet_file(tmp_path):
    write_parquet(tmp_path / "full.parquet")
    data = (tmp_path / "full.parquet").read_bytes()
    (tmp_path / "a.parquet").write_bytes(data[: len(data) // 2])
    assert_user_error(
        build_cli(tmp_path, "a.parquet"),
        f"{tmp_path / 'a.parquet'}: truncated parquet file (no footer); write or copy it again",
    )


def test_invalid_utf8_on_one_line_rejects_that_line_only(tmp_path):
    (tmp_path / "a.jsonl").write_bytes(
        b'{"instruction": "q1", "output": "a"}\n'
        b'{"instruction": "bad \xff\xfe", "output": "a"}\n'
        b'{"instruction": "q2", "output": "a"}\n'
    )
    result = build_cli(tmp_path, "a.jsonl")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    [source] = report["sources"]
    assert (source["rows_read"], source["rejected"], source["records"]) == (3, 1, 2)
    [rejected] = [
        json.loads(x) for x in (tmp_path / "out" / "rejected.jsonl").read_text().split("\n") if x
    ]
    assert rejected["where"] == "a.jsonl:line 2"
    assert rejected["detail"] == "invalid UTF-8: byte 0xff at column 22"


def test_a_json_file_that_is_not_json(tmp_path):
    (tmp_path / "a.json").write_text("instruction,output\nq,a\n")
    assert_user_error(
        build_cli(tmp_path, "a.json"),
        f"{tmp_path / 'a.json'}:1: invalid JSON: Expecting value (column 1)",
    )


def test_a_gzip_file_that_is_not_gzip(tmp_path):
    write_jsonl(tmp_path / "a.jsonl.gz", [GOOD])
    assert_user_error(
        build_cli(tmp_path, "a.jsonl.gz"),
        f"{tmp_path / 'a.jsonl.gz'}: not gzip data, though the name ends in .gz",
    )


def test_a_real_gzip_still_reads(tmp_path):
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(json.dumps(GOOD).encode() + b"\n"))
    assert build_cli(tmp_path, "a.jsonl.gz").exit_code == 0


@pytest.mark.parametrize("name", ["a.jsonl", "a.json", "a.parquet", "a.csv"])
def test_an_empty_file(tmp_path, name):
    (tmp_path / name).write_bytes(b"")
    assert_user_error(build_cli(tmp_path, name), f"{tmp_path / name}: the file is empty (0 bytes)")


def test_a_compressed_file_with_no_rows(tmp_path):
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(b"\n\n"))
    assert_user_error(
        build_cli(tmp_path, "a.jsonl.gz"), f"{tmp_path / 'a.jsonl.gz'}: no rows in the data (empty)"
    )


def test_a_50_mb_row_is_read_with_sane_memory(tmp_path):
    """One JSON line holding a 50 MB answer builds, in a child process whose peak memory
    stays well under a gigabyte and a half (about ten copies of the row, at most)."""
    text = "word " * 10_000_000
    write_jsonl(tmp_path / "a.jsonl", [{"instruction": "q", "output": text}])
    manifest = write_manifest(
        tmp_path, [{"name": "a", "plugin": "alpaca", "path": "a.jsonl"}], output={"dir": "out"}
    )
    # The child reports its own peak memory (ru_maxrss is in KiB on Linux).
    script = (
        "import resource, sys\n"
        "from composer.cli import cli\n"
        "try:\n"
        "    cli(sys.argv[1:], prog_name='composer')\n"
        "finally:\n"
        "    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, "build", str(manifest), "-q"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    peak_mb = int(done.stderr.split()[-1]) / 1024
    assert peak_mb < 1500, peak_mb
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["sources"][0]["records"] == 1


# ---------------------------------------------------------------- hub datasets


def test_a_hub_dataset_that_cannot_be_loaded_is_one_line_naming_it(tmp_path):
    path = write_manifest(
        tmp_path,
        [{"name": "h", "plugin": "alpaca", "hub": "nobody/no-such-set"}],
        output={"dir": "out"},
    )
    result = invoke("build", str(path), "-q")
    assert_user_error(
        result,
        "cannot load hub dataset 'nobody/no-such-set' (split=train): not in the local cache, "
        "and HF_HUB_OFFLINE is set: go online once to download it",
    )


def http_response(status: int) -> httpx2.Response:
    url = "https://huggingface.co/api/datasets/org/set"
    return httpx2.Response(status, request=httpx2.Request("GET", url))


def test_a_gated_dataset_says_where_to_accept_its_terms():
    gated = GatedRepoError(
        "403 Client Error. Cannot access gated repo", response=http_response(403)
    )
    assert hub_error_message("org/set", gated) == (
        "hub dataset 'org/set' is gated: accept its terms at "
        "https://huggingface.co/datasets/org/set and log in (HF_TOKEN)"
    )
    # datasets wraps it: the cause is found through the chain.
    try:
        try:
            raise gated
        except GatedRepoError as exc:
            raise FileNotFoundError("could not load") from exc
    except FileNotFoundError as wrapped:
        assert "is gated: accept its terms" in hub_error_message("org/set", wrapped)


def test_a_missing_dataset_says_check_the_id():
    missing = RepositoryNotFoundError("404 Client Error.", response=http_response(404))
    assert hub_error_message("org/set", missing) == (
        "hub dataset 'org/set' not found (or private): check the id, or log in"
    )


def test_another_hub_error_is_one_line():
    message = hub_error_message("org/set", ValueError("two\nlines"), "split=train")
    assert message == "cannot load hub dataset 'org/set' (split=train): ValueError: two lines"


# ---------------------------------------------------------------- trust_remote_code


@pytest.mark.parametrize("trust", [False, True])
def test_read_hub_loads_a_local_folder_with_or_without_trust_remote_code(tmp_path, trust):
    write_jsonl(tmp_path / "train.jsonl", [GOOD, {"instruction": "q2", "output": "b"}])
    upstream = read_hub(str(tmp_path), None, "train", None, trust_remote_code=trust)
    assert upstream.table.num_rows == 2


def test_a_loading_script_is_refused_with_a_clear_line(tmp_path):
    """datasets 4 and later run no loading scripts, whatever trust_remote_code says."""
    folder = tmp_path / "scripted"
    folder.mkdir()
    (folder / "scripted.py").write_text("import datasets\n")
    with pytest.raises(InputError) as error:
        read_hub(str(folder), None, "train", None, trust_remote_code=True)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"hub dataset {str(folder)!r} is a loading script, which datasets")
    assert "trust_remote_code cannot help" in message
