"""Hostile input, one test per class (issue 14): each build ends with exit 0 or 2 and no
traceback; a build that succeeds accounts for every row (`assert_accounted`); a build that
fails leaves the previous output folder byte-identical."""

from __future__ import annotations

import gzip
import json
import os
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from tests.helpers import assert_accounted, invoke, snapshot, write_jsonl, write_manifest

GOOD = {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]}
DEEP = "[" * 5_000 + "]" * 5_000


def chat(question: str, answer: str = "an answer") -> dict:
    return {
        "conversations": [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]
    }


def hostile_build(tmp_path: Path, source: dict, **manifest):
    """Build a good manifest into out/, then `source` into the same folder.

    Returns (result, report or None): on exit 2, out/ is checked to be unchanged and the
    error to be one line; on exit 0, every row is checked to be accounted for.
    """
    write_jsonl(tmp_path / "good.jsonl", [chat("first"), chat("second")])
    good = write_manifest(
        tmp_path, [{"name": "g", "plugin": "sharegpt", "path": "good.jsonl"}], "good.yaml",
        output={"dir": "out"},
    )  # fmt: skip
    assert invoke("build", str(good)).exit_code == 0
    before = snapshot(tmp_path / "out")
    source = {"name": "s", "plugin": "sharegpt", **source}
    path = write_manifest(tmp_path, [source], output={"dir": "out"}, **manifest)
    result = invoke("build", str(path))
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 2), result.output
    if result.exit_code == 2:
        assert snapshot(tmp_path / "out") == before
        errors = [line for line in result.stderr.splitlines() if "Error" in line]
        assert len(errors) == 1 and errors[0].startswith("Error: "), result.stderr
        return result, None
    return result, assert_accounted(tmp_path / "out")


def rejected(tmp_path: Path) -> list[dict]:
    text = (tmp_path / "out" / "rejected.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


# ---------------------------------------------------------------- JSON


def test_json_nested_5000_deep_is_a_rejected_line(tmp_path):
    deep = '{"conversations": [{"from": "human", "value": ' + DEEP + "}]}"
    write_jsonl(
        tmp_path / "a.jsonl", [chat("q1"), deep, {"extra": json.loads("[" * 150 + "]" * 150)}]
    )
    result, _ = hostile_build(tmp_path, {"path": "a.jsonl"})
    assert result.exit_code == 0
    reasons = {r["where"]: r["detail"] for r in rejected(tmp_path)}
    assert reasons == {
        "a.jsonl:line 2": "a value nested deeper than 100 levels",
        "a.jsonl:line 3": "a value nested deeper than 100 levels",
    }


def test_a_json_list_nested_5000_deep_is_one_error_line(tmp_path):
    (tmp_path / "a.json").write_text(f'[{json.dumps(GOOD)},\n{{"x": {DEEP}}}]')
    result, _ = hostile_build(tmp_path, {"path": "a.json"})
    assert result.stderr.endswith(
        "a.json:2: a value nested deeper than Python's JSON parser allows\n"
    )


BAD_TEXT = "invalid text: a byte that is not UTF-8, or an unpaired UTF-16 surrogate"


@pytest.mark.parametrize(
    ("element", "detail"),
    [
        (b'{"n": ' + b"9" * 30 + b"}", "a number too large to hold (30 digits)"),
        (b'{"n": ' + b"9" * 5000 + b"}", "a number too large to hold (5,000 digits)"),
        (b'{"x": "caf\xe9"}', BAD_TEXT),
        (b'{"x": "\\ud800"}', BAD_TEXT),
        (b"5", "expected a JSON object, got a number"),
        (b'{"x": ' + b"[" * 200 + b"]" * 200 + b"}", "a value nested deeper than 100 levels"),
    ],
)  # fmt: skip
def test_one_bad_element_of_a_json_list_is_one_rejected_row_with_its_line(
    tmp_path, element, detail
):
    good = json.dumps(GOOD).encode()
    (tmp_path / "a.json").write_bytes(b"[\n" + good + b",\n" + element + b",\n" + good + b"\n]")
    result, report = hostile_build(tmp_path, {"path": "a.json"})
    assert result.exit_code == 0, result.output
    assert [(r["where"], r["detail"]) for r in rejected(tmp_path)] == [("a.json:line 3", detail)]
    assert report["sources"][0]["rows_read"] == 3


def test_huge_integers_in_jsonl_are_rejected_lines(tmp_path):
    big = json.dumps(chat("q", "BIG")).replace('"BIG"', "9" * 5000)
    write_jsonl(tmp_path / "a.jsonl", [chat("q"), big])
    hostile_build(tmp_path, {"path": "a.jsonl"})
    assert [r["detail"] for r in rejected(tmp_path)] == [
        "a number too large to hold (5,000 digits)"
    ]


def test_a_file_where_every_line_is_broken_says_so(tmp_path):
    (tmp_path / "a.jsonl").write_text("{bad\n{worse\n")
    result, _ = hostile_build(tmp_path, {"path": "a.jsonl"})
    assert "a.jsonl: no readable row: all 2 unreadable; first: a.jsonl:line 1: invalid JSON" in (
        result.stderr
    )


# ---------------------------------------------------------------- columnar files


def _bad_utf8_strings() -> pa.Array:
    """Three strings, the second holding bytes that are not UTF-8."""
    offsets = pa.py_buffer(bytes([0, 0, 0, 0, 5, 0, 0, 0, 7, 0, 0, 0, 12, 0, 0, 0]))
    return pa.Array.from_buffers(
        pa.string(), 3, [None, offsets, pa.py_buffer(b"hello\xff\xfeworld")]
    )


@pytest.mark.parametrize("suffix", [".parquet", ".arrow"])
def test_invalid_utf8_in_a_columnar_file_is_a_rejected_row(tmp_path, suffix):
    table = pa.table({"text": _bad_utf8_strings()})
    if suffix == ".parquet":
        pq.write_table(table, tmp_path / "a.parquet")
    else:
        with pa.ipc.new_file(str(tmp_path / "a.arrow"), table.schema) as writer:
            writer.write_table(table)
    result, _ = hostile_build(tmp_path, {"plugin": "text", "path": f"a{suffix}"})
    assert result.exit_code == 0, result.output
    assert [(r["where"], r["detail"]) for r in rejected(tmp_path)] == [
        (f"a{suffix}:row 2", "invalid UTF-8 in a text column")
    ]


def test_duplicate_parquet_column_names_are_one_clear_error(tmp_path):
    table = pa.Table.from_arrays([pa.array(["a"]), pa.array(["b"])], names=["text", "text"])
    pq.write_table(table, tmp_path / "a.parquet")
    result, _ = hostile_build(tmp_path, {"plugin": "text", "path": "a.parquet"})
    assert result.stderr.endswith(
        "a.parquet: duplicate column name 'text'; each column needs its own name\n"
    )


@pytest.mark.parametrize("name", ["a.pq", "a.parquet.gz", "a.arrow.gz"])
def test_pq_and_compressed_columnar_files_are_read(tmp_path, name):
    table = pa.table({"text": ["hello there", "general kenobi"]})
    plain = tmp_path / "plain"
    if ".arrow" in name:
        with pa.ipc.new_file(str(plain), table.schema) as writer:
            writer.write_table(table)
    else:
        pq.write_table(table, plain)
    data = plain.read_bytes()
    (tmp_path / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    result, report = hostile_build(tmp_path, {"plugin": "text", "path": name})
    assert result.exit_code == 0, result.output
    assert report["sources"][0]["records"] == 2


# ---------------------------------------------------------------- CSV


def test_a_large_csv_with_quoted_multiline_cells_reads_every_row(tmp_path):
    rows = "".join(f'"first line\nsecond line {i}","answer\n{i}"\n' for i in range(60_000))
    (tmp_path / "a.csv").write_text("instruction,output\n" + rows)
    result, report = hostile_build(tmp_path, {"plugin": "alpaca", "path": "a.csv"})
    assert result.exit_code == 0, result.output
    assert report["sources"][0]["records"] == 60_000


def test_a_4_mb_csv_cell_is_read(tmp_path):
    (tmp_path / "a.csv").write_text('instruction,output\n"' + "x" * 4_000_000 + '",y\nq,a\n')
    result, report = hostile_build(tmp_path, {"plugin": "alpaca", "path": "a.csv"})
    assert result.exit_code == 0, result.output
    assert report["sources"][0]["records"] == 2


def test_a_ragged_csv_row_is_a_rejected_row(tmp_path):
    (tmp_path / "a.csv").write_text("instruction,output\nq,a\nq2,a2,extra\nq3\nq4,a4\n")
    result, report = hostile_build(tmp_path, {"plugin": "alpaca", "path": "a.csv"})
    assert result.exit_code == 0, result.output
    assert [r["detail"] for r in rejected(tmp_path)] == [
        "expected 2 cells, got 3: q2,a2,extra",
        "expected 2 cells, got 1: q3",
    ]
    assert report["sources"][0]["records"] == 2
    assert pa_csv  # the reader is Arrow's own, with its invalid_row_handler


# ---------------------------------------------------------------- odd files and names


def test_a_named_pipe_is_named_as_one(tmp_path):
    os.mkfifo(tmp_path / "a.jsonl")
    result, _ = hostile_build(tmp_path, {"path": "a.jsonl"})
    assert result.stderr.endswith(
        "a.jsonl: a named pipe (FIFO), not a data file; point the source at a file\n"
    )


def test_a_link_to_dev_zero_is_named_as_a_device(tmp_path):
    os.symlink("/dev/zero", tmp_path / "a.jsonl")
    result, _ = hostile_build(tmp_path, {"path": "a.jsonl"})
    assert "a.jsonl: a character device (a link to /dev/zero), not a data file" in result.stderr


def test_a_file_name_that_is_not_utf8_is_read(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    write_jsonl(folder / os.fsdecode(b"caf\xe9.jsonl"), [chat("bonjour")])
    result, report = hostile_build(tmp_path, {"path": "d/*.jsonl"})
    assert result.exit_code == 0, result.output
    assert report["sources"][0]["records"] == 1


def test_a_file_reached_twice_is_read_once_with_a_warning(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", [chat("one"), chat("two")])
    os.symlink(".", folder / "loop")  # a symlink cycle: d/loop/loop/...
    result, report = hostile_build(tmp_path, {"path": ["d/**/*.jsonl", "d/a.jsonl"]})
    assert result.exit_code == 0, result.output
    assert report["sources"][0]["rows_read"] == 2
    [warning] = [w for w in report["warnings"] if "already read" in w]
    assert warning.startswith("s: ") and warning.endswith("d/a.jsonl; each file was read once")
    assert f"Warning: {warning}" in result.stderr


# ---------------------------------------------------------------- the manifest


@pytest.mark.parametrize(
    ("source", "top", "message"),
    [
        ({"sample": float("nan")}, {}, "sources[0].sample: expected a finite number"),
        ({"sample": float("inf")}, {}, "sources[0].sample: expected a finite number"),
        ({"confidence": float("nan")}, {}, "sources[0].confidence: expected a finite number"),
        ({"weight": float("inf")}, {"mix": {"total": 10}}, "sources[0].weight: expected a finite"),
        ({}, {"split": {"validation": float("nan")}}, "split.validation: expected a finite number"),
        (
            {"filters": {"response_chars": {"min": float("nan")}}},
            {},
            "sources[0].filters.response_chars.min: expected a finite number",
        ),
        (
            {"filters": {"score": {"scorer": "length", "max": float("-inf")}}},
            {},
            "sources[0].filters.score: expected a finite number",
        ),
        ({"sample": "1e9x"}, {}, "sources[0].sample: expected a number <= 1000, got 1000000000.0"),
        (
            {"filters": {"score": {"scorer": "builtins:len", "min": 1}}},
            {},
            "sources[0].filters.score[0].scorer: scorer 'builtins:len': 'builtins' is built",
        ),
    ],
)
def test_a_manifest_value_that_cannot_be_right_is_a_manifest_error_with_its_line(
    tmp_path, source, top, message
):
    write_jsonl(tmp_path / "a.jsonl", [GOOD])
    result, _ = hostile_build(tmp_path, {"path": "a.jsonl", **source}, **top)
    assert result.exit_code == 2
    assert re.search(r"\n  line \d+: " + re.escape(message), result.stderr), result.stderr


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        ("fraction", "composer's is sample"),
        ("val_ratio", "composer's is split.validation"),
        ("max_val_set", "composer's is split.validation as a row count"),
        ("max_chunk_size", "composer's is options.max_chunk_size"),
    ],
)
def test_other_tools_keys_name_composers_key(tmp_path, key, hint):
    write_jsonl(tmp_path / "a.jsonl", [GOOD])
    path = write_manifest(
        tmp_path, [{"name": "s", "plugin": "sharegpt", "path": "a.jsonl", key: 1}]
    )
    result = invoke("validate", str(path))
    assert result.exit_code == 2
    assert f"sources[0].{key}: unknown key (other tools' key; {hint}" in result.stderr


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [GOOD])
    lines = ["name: t", "sources: [{name: s, plugin: sharegpt, path: a.jsonl}]", "bomb:"]
    lines.append("  l0: &l0 [x, x, x, x, x, x, x, x, x, x]")
    lines += [f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 9)]
    (tmp_path / "manifest.yaml").write_text("\n".join(lines) + "\n")
    for command in ("validate", "build"):
        result = invoke(command, str(tmp_path / "manifest.yaml"))
        assert result.exit_code == 2, result.output
        assert "the manifest expands to 111,111 values (YAML aliases?)" in result.stderr


def test_a_template_that_is_not_utf8_is_a_clear_error(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [GOOD])
    (tmp_path / "mine.jinja").write_bytes(b"{{ caf\xe9 }}")
    path = write_manifest(
        tmp_path,
        [{"name": "s", "plugin": "sharegpt", "path": "a.jsonl"}],
        formats=[{"name": "mine", "template": "mine.jinja"}],
    )
    for command in ("validate", "build"):
        result = invoke(command, str(path))
        assert "Traceback" not in result.output
        assert result.exit_code == 2, result.output
        assert (
            "mine.jinja: cannot read template: byte 0xe9 at offset 6 is not UTF-8" in result.stderr
        )


def test_a_lock_file_that_is_not_utf8_is_a_clear_error(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [GOOD])
    path = write_manifest(tmp_path, [{"name": "s", "plugin": "sharegpt", "path": "a.jsonl"}])
    (tmp_path / "composer.lock").write_bytes(b'{"caf\xe9": 1}')
    result = invoke("build", str(path), "--locked", str(tmp_path / "composer.lock"))
    assert "Traceback" not in result.output
    assert result.exit_code == 2, result.output
    assert "composer.lock: not a composer.lock: byte 0xe9 at offset 5 is not UTF-8" in result.stderr


# ---------------------------------------------------------------- rows the plugins see


def test_a_turn_that_is_not_an_object_rejects_the_whole_conversation(tmp_path):
    shortened = {"conversations": [GOOD["conversations"][0], 5, GOOD["conversations"][1]]}
    write_jsonl(tmp_path / "a.jsonl", [chat("kept"), shortened, {"conversations": "hi"}])
    result, report = hostile_build(tmp_path, {"path": "a.jsonl"})
    assert result.exit_code == 0, result.output
    assert [(r["where"], r["reason"], r["detail"]) for r in rejected(tmp_path)] == [
        ("a.jsonl:line 2", "malformed turn", "turn 1 is int, not an object"),
        ("a.jsonl:line 3", "malformed turn", "the conversation is str, not a list of turns"),
    ]
    assert report["sources"][0]["records"] == 1


def test_a_message_that_is_not_an_object_rejects_the_whole_chat(tmp_path):
    good = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    rows = [{"messages": good}, {"messages": [good[0], "stray", good[1]]}, {"messages": 7}]
    write_jsonl(tmp_path / "a.jsonl", rows)
    _, report = hostile_build(tmp_path, {"plugin": "messages", "path": "a.jsonl"})
    assert [(r["where"], r["reason"], r["detail"]) for r in rejected(tmp_path)] == [
        ("a.jsonl:line 2", "malformed turn", "turn 1 is str, not an object"),
        ("a.jsonl:line 3", "malformed turn", "the conversation is int, not a list of turns"),
    ]
    assert report["sources"][0]["records"] == 1


@pytest.mark.parametrize(
    ("value", "what"), [(["a"], "a list"), ({"a": 1}, "an object"), (True, "true/false")]
)
def test_a_turn_value_that_is_not_text_is_a_non_text_turn(tmp_path, value, what):
    row = {"conversations": [{"from": "human", "value": value}, {"from": "gpt", "value": "yo"}]}
    write_jsonl(tmp_path / "a.jsonl", [chat("kept"), row])
    hostile_build(tmp_path, {"path": "a.jsonl"})
    assert [(r["reason"], r["detail"]) for r in rejected(tmp_path)] == [
        ("non-text turn", f"turn 0 (human) is {what}, not text")
    ]


def test_a_dpo_pair_with_chosen_equal_to_rejected_is_rejected(tmp_path):
    rows = [
        {"prompt": "p", "chosen": "Same answer", "rejected": " same answer "},
        {"prompt": "p", "chosen": "good", "rejected": "bad"},
    ]
    write_jsonl(tmp_path / "a.jsonl", rows)
    _, report = hostile_build(tmp_path, {"plugin": "dpo", "path": "a.jsonl"})
    assert [(r["where"], r["reason"]) for r in rejected(tmp_path)] == [
        ("a.jsonl:line 1", "chosen equals rejected")
    ]
    assert report["sources"][0]["records"] == 1
