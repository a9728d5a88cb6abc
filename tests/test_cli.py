"""The `composer` command, driven in-process with click's CliRunner.

Basics (version, help, sources, validate/preview/build on the demo manifest), then the
row-level errors of a build on small files each test writes: invalid rows are rejected with
a reason and counted (`on_invalid: skip`), or stop the build with exit code 2 naming
file:line (`on_invalid: fail`), and an output folder is never left half-written.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from composer import __version__
from composer.cli import cli
from tests.helpers import (
    DEMO,
    assert_user_error,
    invoke,
    snapshot,
    write_jsonl,
    write_manifest,
    write_manifest_text,
)

GENERIC_PLUGINS = ["alpaca", "dpo", "messages", "oasst", "sharegpt", "text"]


def leftovers(folder: Path) -> list[str]:
    """Hidden temporary folders an interrupted build would leave beside its output."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def one_source(folder: Path, plugin: str = "alpaca", on_invalid: str = "skip") -> Path:
    """A manifest with one source `a` read from a.jsonl by `plugin`, rendered in chatml."""
    return write_manifest_text(
        folder,
        f"""\
        name: rows
        sources:
          - name: a
            plugin: {plugin}
            path: a.jsonl
            on_invalid: {on_invalid}
        formats: [chatml]
        """,
    )


def turns(*pairs: tuple[str, str]) -> dict:
    return {"conversations": [{"from": r, "value": v} for r, v in pairs]}


GOOD = {"instruction": "Say hi.", "output": "Hi!"}
BROKEN = '{"instruction": "Broken", "output": '  # a JSON line cut short


def json_error(line: str) -> str:
    """The detail a build gives for a JSON line that does not parse."""
    try:
        json.loads(line)
    except json.JSONDecodeError as exc:
        return f"invalid JSON: {exc}"
    raise AssertionError(f"{line!r} is valid JSON")


# ---------------------------------------------------------------- basics


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout == f"composer, version {__version__}\n"


@pytest.mark.parametrize("command", [None, *sorted(cli.commands)])
@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_on_every_command(command, flag):
    args = [command, flag] if command else [flag]
    result = invoke(*args)
    assert result.exit_code == 0
    usage = f"Usage: composer {command} " if command else "Usage: composer "
    assert result.stdout.startswith(usage)
    target = cli.commands[command] if command else cli
    assert target.help.strip().splitlines()[0] in result.stdout


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_command_has_help_text(command):
    help_text = cli.commands[command].help
    assert help_text and len(help_text.strip()) > 20


def test_the_four_documented_commands_exist():
    assert {"build", "validate", "sources", "preview"} <= set(cli.commands)


def test_no_command_shows_usage():
    result = invoke()
    assert result.exit_code in (0, 2)  # click 8.2+ exits 2 for a group without a command
    assert "Usage: composer" in result.output
    assert "Traceback" not in result.output


def test_sources_lists_the_generic_plugins():
    result = invoke("sources")
    assert result.exit_code == 0
    header, *lines = result.stdout.splitlines()
    assert header.split() == [
        "NAME", "KIND", "CONF", "UPSTREAM", "REVISION", "LICENSE", "FLAGS", "ORIGIN"
    ]  # fmt: skip
    names = [line.split()[0] for line in lines]
    assert set(GENERIC_PLUGINS) <= set(names)
    assert len(names) == len(set(names))
    line = next(x for x in lines if x.startswith("oasst "))
    assert line.split() == [
        "oasst",
        "sft",
        "2",
        "OpenAssistant/oasst1",
        "-",
        "apache-2.0",
        "-",
        "built-in",
    ]


def test_sources_json():
    result = invoke("sources", "--json")
    assert result.exit_code == 0
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert set(GENERIC_PLUGINS) <= set(rows)
    assert {name: rows[name]["kind"] for name in GENERIC_PLUGINS} == {
        "alpaca": "sft",
        "dpo": "dpo",
        "messages": "sft",
        "oasst": "sft",
        "sharegpt": "sft",
        "text": "text",
    }
    assert rows["text"]["options"] == ["max_chunk_size"]
    assert all(r["description"] for r in rows.values())


def test_validate_demo():
    result = invoke("validate", str(DEMO))
    assert result.exit_code == 0
    assert result.stdout == f"{DEMO}: ok (6 sources, 4 formats)\n"
    assert result.stderr == ""


def test_validate_demo_json():
    result = invoke("validate", str(DEMO), "--json")
    assert result.exit_code == 0
    resolved = json.loads(result.stdout)
    assert resolved["name"] == "demo"
    assert [s["name"] for s in resolved["sources"]] == [
        "sharegpt",
        "alpaca",
        "chat",
        "hh",
        "dpo_pairs",
        "stories",
    ]
    assert [f["name"] for f in resolved["formats"]] == ["alpaca", "vicuna", "chatml", "llama2"]


def test_preview_demo_in_chatml():
    result = invoke("preview", str(DEMO), "-n", "1", "-f", "chatml")
    assert result.exit_code == 0
    headers = [line for line in result.stdout.splitlines() if line.startswith("=== ")]
    # One item per source; text sources have no format, every other row is chatml.
    assert [h.split(" · ")[0] for h in headers] == [
        "=== sharegpt",
        "=== alpaca",
        "=== chat",
        "=== hh",
        "=== dpo_pairs",
        "=== stories",
    ]
    assert {h.split(" · ")[1] for h in headers} == {"chatml", "text"}
    assert "<|im_start|>user\n" in result.stdout
    assert "<|im_start|>assistant\n" in result.stdout
    for part in ("--- prompt", "--- completion", "--- chosen", "--- rejected", "--- text"):
        assert part in result.stdout
    for other in ("### Instruction:", "[INST]", "ASSISTANT:"):
        assert other not in result.stdout


def test_preview_with_a_format_the_manifest_lacks():
    """Regression: an unknown `-f` used to print only the text rows and exit 0."""
    assert_user_error(
        invoke("preview", str(DEMO), "-f", "chatmll"),
        "format 'chatmll' is not in this manifest's formats (did you mean 'chatml'?); "
        "formats: alpaca, vicuna, chatml, llama2",
    )


@pytest.mark.parametrize("rows", ["0", "-1"])
def test_preview_needs_a_positive_row_count(rows):
    result = invoke("preview", str(DEMO), "-n", rows)
    assert result.exit_code == 2
    assert f"Error: Invalid value for '-n' / '--rows': {rows} is not in the range x>=1." in (
        result.stderr.splitlines()
    )


def test_build_demo_writes_the_layout(tmp_path):
    out = tmp_path / "demo"
    result = invoke("build", str(DEMO), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""  # progress and the summary go to stderr
    assert "Built demo in " in result.stderr
    files = set(snapshot(out))
    splits = ("train", "validation")
    sets = ["sft/messages", "sft/alpaca", "dpo/pairs", "text"]
    sets += [
        f"formats/{f}/{k}" for f in ("alpaca", "vicuna", "chatml", "llama2") for k in ("sft", "dpo")
    ]
    assert files == {f"{s}/{split}.parquet" for s in sets for split in splits} | {
        "records.parquet",
        "report.json",
        "report.md",
        "report.html",
        "README.md",
        "composer.lock",
        "rejected.jsonl",
        "dataset_info.json",
        "axolotl/sft.yaml",
        "axolotl/alpaca.yaml",
        "axolotl/dpo.yaml",
    }
    report = json.loads((out / "report.json").read_text())
    for path, rows in report["outputs"].items():
        if path.endswith(".parquet"):
            assert pq.read_metadata(out / path).num_rows == rows, path
    assert len((out / "rejected.jsonl").read_text().splitlines()) == report["totals"]["rejected"]
    assert report["totals"]["rejected"] > 0  # the demo has broken rows on purpose
    assert pq.read_schema(out / "sft/messages/train.parquet").names == ["id", "source", "messages"]
    assert set(pq.read_schema(out / "formats/chatml/sft/train.parquet").names) >= {
        "id",
        "prompt",
        "completion",
    }
    assert set(pq.read_schema(out / "dpo/pairs/train.parquet").names) >= {
        "id",
        "prompt",
        "chosen",
        "rejected",
    }
    assert set(pq.read_schema(out / "text/train.parquet").names) >= {"id", "source", "text"}
    assert not leftovers(tmp_path)


def test_build_seed_override_and_quiet(tmp_path):
    result = invoke("build", str(DEMO), "-o", str(tmp_path / "demo"), "--seed", "7", "-q")
    assert result.exit_code == 0
    assert result.output == ""
    assert json.loads((tmp_path / "demo" / "report.json").read_text())["seed"] == 7


def test_build_json_prints_a_machine_readable_summary(tmp_path):
    out = tmp_path / "demo"
    result = invoke("build", str(DEMO), "-o", str(out), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # stdout is the JSON and nothing else
    report = json.loads((out / "report.json").read_text())
    assert "Built demo" not in result.stderr
    assert (summary["name"], summary["output_dir"]) == ("demo", str(out.resolve()))
    assert summary["totals"] == report["totals"]
    assert {k: v["rows"] for k, v in summary["files"].items()} == report["outputs"]
    assert all(Path(v["path"]).is_file() for v in summary["files"].values())
    for s in report["sources"]:
        counts = summary["sources"][s["name"]]
        assert counts["rows_read"] == s["rows_read"] and counts["train"] == s["train"]
        assert counts["sampled"] == counts["train"] + counts["validation"] + counts["test"]


def _build_with_stderr(tmp_path: Path, terminal: bool) -> str:
    """A real `composer build` in a child process, stderr a pipe or a terminal (a pty)."""
    import os
    import subprocess
    import sys

    write_jsonl(tmp_path / "a.jsonl", [GOOD, {"instruction": "Count to 3.", "output": "1 2 3"}])
    manifest = write_manifest(tmp_path, [{"name": "a", "plugin": "alpaca", "path": "a.jsonl"}])
    command = [sys.executable, "-m", "composer", "build", str(manifest), "-o", str(tmp_path / "o")]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    if not terminal:
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
        return done.stderr
    import fcntl
    import struct
    import termios

    reader, writer = os.openpty()
    fcntl.ioctl(writer, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # 120 columns
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=writer, env=env)
    os.close(writer)
    chunks = []
    while True:
        try:
            chunk = os.read(reader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(reader)
    assert child.wait() == 0
    return b"".join(chunks).decode("utf-8", "replace")


def test_progress_bars_only_when_stderr_is_a_terminal(tmp_path):
    (tmp_path / "pipe").mkdir()
    (tmp_path / "tty").mkdir()
    piped = _build_with_stderr(tmp_path / "pipe", terminal=False)
    assert "Built t in " in piped
    assert "\r" not in piped and "it/s" not in piped and "load:" not in piped
    shown = _build_with_stderr(tmp_path / "tty", terminal=True)
    for stage in ("load", "dedup", "render", "write"):
        assert f"{stage}: 100%" in shown, stage


# ---------------------------------------------------------------- invalid rows, skipped


NO_VALUE = "turn 1 (gpt) has no value (a missing or null field)"


def test_invalid_rows_are_rejected_counted_and_kept_aside(tmp_path):
    write_jsonl(
        tmp_path / "a.jsonl",
        [
            GOOD,  # line 1
            BROKEN,  # line 2: broken JSON line
            {"instruction": "No answer", "output": None},  # line 3: null output
            {"instruction": "No output field"},  # line 4: missing field
            {"instruction": "Count to 3.", "output": "1 2 3"},
        ],
    )
    write_jsonl(
        tmp_path / "chat.jsonl",
        [
            turns(("human", "Q1"), ("gpt", "A1")),
            turns(("gpt", "A first"), ("human", "Q")),  # line 2: wrong role order
            turns(("human", "Q3"), ("gpt", "   ")),  # line 3: empty turn
            turns(("human", "Q4"), ("gpt", "")),  # line 4: empty turn
        ],
    )
    path = write_manifest_text(
        tmp_path,
        """\
        name: rows
        sources:
          - name: a
            plugin: alpaca
            path: a.jsonl
          - name: chat
            plugin: sharegpt
            path: chat.jsonl
        formats: [chatml]
        output: {dir: out}
        """,
    )
    result = invoke("build", str(path), "-q")
    assert result.exit_code == 0, result.output

    out = tmp_path / "out"
    report = json.loads((out / "report.json").read_text())
    a, chat = report["sources"]
    broken_detail = json_error(BROKEN)
    assert (a["rows_read"], a["rejected"], a["records"]) == (5, 3, 2)
    assert a["rejected_by_reason"] == {"missing value": 2, "unreadable row": 1}
    assert a["rejected_examples"] == [
        {"where": "a.jsonl:line 2", "reason": "unreadable row", "detail": broken_detail},
        {"where": "a.jsonl:line 3", "reason": "missing value", "detail": NO_VALUE},
        {"where": "a.jsonl:line 4", "reason": "missing value", "detail": NO_VALUE},
    ]
    assert (chat["rows_read"], chat["rejected"], chat["records"]) == (4, 3, 1)
    assert chat["rejected_by_reason"] == {"empty turn": 2, "wrong role order": 1}
    assert [(e["where"], e["reason"], e["detail"]) for e in chat["rejected_examples"]] == [
        ("chat.jsonl:line 2", "wrong role order", "turn 0 should be human, got gpt"),
        ("chat.jsonl:line 3", "empty turn", "turn 1 (gpt) has an empty value"),
        ("chat.jsonl:line 4", "empty turn", "turn 1 (gpt) has an empty value"),
    ]
    assert (report["totals"]["rows_read"], report["totals"]["rejected"]) == (9, 6)

    rejected = [json.loads(line) for line in (out / "rejected.jsonl").read_text().splitlines()]
    assert [(r["source"], r["where"], r["reason"]) for r in rejected] == [
        ("a", "a.jsonl:line 2", "unreadable row"),
        ("a", "a.jsonl:line 3", "missing value"),
        ("a", "a.jsonl:line 4", "missing value"),
        ("chat", "chat.jsonl:line 2", "wrong role order"),
        ("chat", "chat.jsonl:line 3", "empty turn"),
        ("chat", "chat.jsonl:line 4", "empty turn"),
    ]
    assert rejected[0]["row"] is None  # an unreadable line has no row to keep
    assert rejected[2]["row"]["instruction"] == "No output field"
    assert rejected[3]["row"] == turns(("gpt", "A first"), ("human", "Q"))

    markdown = (out / "report.md").read_text()
    assert "## Rejected rows" in markdown
    assert "`chat.jsonl:line 2` wrong role order: turn 0 should be human, got gpt" in markdown

    sft = pq.read_table(out / "sft" / "messages" / "train.parquet")
    assert sorted(sft.column("source").to_pylist()) == ["a", "a", "chat"]


def test_text_rows_without_text_are_rejected(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [{"text": "A story."}, {"text": "  "}, {"text": None}])
    path = write_manifest_text(
        tmp_path,
        """\
        name: rows
        sources:
          - {name: a, plugin: text, path: a.jsonl}
        """,
    )
    result = invoke("build", str(path), "-q", "-o", str(tmp_path / "out"))
    assert result.exit_code == 0
    [source] = json.loads((tmp_path / "out" / "report.json").read_text())["sources"]
    assert source["rejected_by_reason"] == {"empty text": 2}
    assert [e["where"] for e in source["rejected_examples"]] == ["a.jsonl:line 2", "a.jsonl:line 3"]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("c.csv", "instruction,output\nFirst,\nSecond,ok\n", "c.csv:row 1"),
        ("c.json", '[{"instruction": "x", "output": ""}]', "c.json:row 1"),
    ],
)
def test_rejected_rows_of_other_files_are_numbered_from_one(tmp_path, name, content, expected):
    (tmp_path / name).write_text(content)
    path = write_manifest_text(
        tmp_path,
        f"name: rows\nsources:\n  - {{name: a, plugin: alpaca, path: {name}}}\nformats: [chatml]\n",
    )
    assert invoke("build", str(path), "-o", str(tmp_path / "out"), "-q").exit_code == 0
    [rejected] = (tmp_path / "out" / "rejected.jsonl").read_text().splitlines()
    assert json.loads(rejected)["where"] == expected


# ---------------------------------------------------------------- invalid rows, on_invalid: fail

FAIL_CASES = {
    "broken JSON line": (
        "alpaca",
        [GOOD, BROKEN, GOOD],
        f"a.jsonl:line 2: unreadable row: {json_error(BROKEN)}",
    ),
    "missing field": (
        "alpaca",
        [GOOD, GOOD, {"instruction": "No output"}],
        "a.jsonl:line 3: missing value: turn 1 (gpt) has no value (a missing or null field)",
    ),
    "null field": (
        "alpaca",
        [{"instruction": "Null output", "output": None}],
        "a.jsonl:line 1: missing value: turn 1 (gpt) has no value (a missing or null field)",
    ),
    "wrong role order": (
        "sharegpt",
        [
            turns(("human", "Q"), ("gpt", "A")),
            turns(("human", "Q"), ("human", "Again?"), ("gpt", "A")),
        ],
        "a.jsonl:line 2: wrong role order: turn 1 should be gpt, got human",
    ),
    "system turn after the start": (
        "sharegpt",
        [turns(("human", "Q"), ("system", "S"), ("gpt", "A"))],
        "a.jsonl:line 1: wrong role order: turn 1 is a system turn; only turn 0 may be",
    ),
    "empty turn": (
        "sharegpt",
        [turns(("human", ""), ("gpt", "A"))],
        "a.jsonl:line 1: empty turn: turn 0 (human) has an empty value",
    ),
    "empty DPO answer": (
        "dpo",
        [
            {"prompt": "Q", "chosen": "Good.", "rejected": "Bad."},
            {"prompt": "Q2", "chosen": "Good.", "rejected": " "},
        ],
        "a.jsonl:line 2: empty rejected: the rejected answer is empty",
    ),
    "HH transcripts without a shared context": (
        "dpo",
        [
            {
                "chosen": "\n\nHuman: Hi\n\nAssistant: Hello",
                "rejected": "\n\nHuman: Bye\n\nAssistant: Go",
            }
        ],
        "a.jsonl:line 1: invalid row: chosen and rejected transcripts do not share one context",
    ),
    "no answer": (
        "sharegpt",
        [turns(("human", "Q"))],
        "a.jsonl:line 1: no answer: the conversation ends with a human turn",
    ),
}


@pytest.mark.parametrize(
    ("plugin", "rows", "first"), list(FAIL_CASES.values()), ids=list(FAIL_CASES)
)
def test_on_invalid_fail_stops_the_build_naming_file_and_line(tmp_path, plugin, rows, first):
    write_jsonl(tmp_path / "a.jsonl", rows)
    path = one_source(tmp_path, plugin, on_invalid="fail")
    out = tmp_path / "out"
    result = invoke("build", str(path), "-o", str(out), "-q")
    assert_user_error(result, f"sources[0] (a): {first} (1 invalid row; on_invalid: fail)")
    assert not out.exists()
    assert not leftovers(tmp_path)


def test_on_invalid_fail_counts_every_invalid_row(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [BROKEN, GOOD, {"instruction": "x", "output": ""}, BROKEN])
    path = one_source(tmp_path, on_invalid="fail")
    result = invoke("build", str(path), "-o", str(tmp_path / "out"), "-q")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: sources[0] (a): a.jsonl:line 1: unreadable row: ")
    assert result.stderr.endswith(" (3 invalid rows; on_invalid: fail)\n")


def test_on_invalid_fail_leaves_an_earlier_output_byte_identical(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [GOOD, {"instruction": "Other", "output": "Yes."}])
    out = tmp_path / "out"
    assert invoke("build", str(one_source(tmp_path)), "-o", str(out), "-q").exit_code == 0
    before = snapshot(out)
    assert "report.json" in before and "sft/messages/train.parquet" in before

    write_jsonl(tmp_path / "a.jsonl", [GOOD, BROKEN])
    result = invoke("build", str(one_source(tmp_path, on_invalid="fail")), "-o", str(out), "-q")
    assert result.exit_code == 2
    assert "a.jsonl:line 2: unreadable row" in result.stderr
    assert snapshot(out) == before
    assert not leftovers(tmp_path)


def test_a_failure_while_writing_leaves_the_earlier_output(tmp_path, monkeypatch):
    """The output folder is replaced in one rename, only once everything is written."""
    # `composer.build` is also the name of the library function; fetch the module itself.
    build_module = importlib.import_module("composer.build")
    write_jsonl(tmp_path / "a.jsonl", [GOOD])
    out = tmp_path / "out"
    path = one_source(tmp_path)
    assert invoke("build", str(path), "-o", str(out), "-q").exit_code == 0
    before = snapshot(out)

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device (simulated)")

    monkeypatch.setattr(build_module, "write_report", fail)
    with pytest.raises(OSError, match="simulated"):  # not from the cache: written again
        invoke("build", str(path), "-o", str(out), "-q", "--no-cache")
    assert snapshot(out) == before
    assert not leftovers(tmp_path)


def test_a_folder_that_is_not_a_composer_output_is_not_replaced(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [GOOD])
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    result = invoke("build", str(one_source(tmp_path)), "-o", str(out), "-q")
    assert_user_error(
        result,
        f"{out}: exists and is not a composer output folder; "
        "choose another output.dir (or -o) or remove it",
    )
    assert snapshot(out) == {"notes.txt": b"keep me"}
    assert not leftovers(tmp_path)


# ---------------------------------------------------------------- whole-source input errors


def test_missing_required_column_names_it_and_lists_the_columns(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [{"prompt": "Say hi.", "response": "Hi!"}])
    result = invoke("build", str(one_source(tmp_path)), "-o", str(tmp_path / "out"), "-q")
    assert_user_error(
        result,
        "sources[0] (a): plugin 'alpaca' needs column 'instruction', which the data does not "
        "have; columns: prompt, response. Map it with `columns: {instruction: <column>}`",
    )
    assert not (tmp_path / "out").exists()


def test_missing_required_column_with_did_you_mean(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [{"instructoin": "Say hi.", "output": "Hi!"}])
    result = invoke("build", str(one_source(tmp_path)), "-o", str(tmp_path / "out"), "-q")
    assert_user_error(
        result,
        "sources[0] (a): plugin 'alpaca' needs column 'instruction', which the data does not "
        "have (did you mean 'instructoin'?); columns: instructoin, output. Map it with "
        "`columns: {instruction: <column>}`",
    )


def test_columns_mapping_to_a_column_the_data_lacks(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [{"prompt": "Say hi.", "output": "Hi!"}])
    path = write_manifest_text(
        tmp_path,
        """\
        name: rows
        sources:
          - name: a
            plugin: alpaca
            path: a.jsonl
            columns: {instruction: promt}
        """,
    )
    assert_user_error(
        invoke("build", str(path), "-o", str(tmp_path / "out"), "-q"),
        "sources[0] (a): columns.instruction: no column 'promt' in the data "
        "(did you mean 'prompt'?); columns: prompt, output",
    )


def test_columns_mapping_fixes_a_missing_column(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [{"prompt": "Say hi.", "response": "Hi!"}])
    path = write_manifest_text(
        tmp_path,
        """\
        name: rows
        sources:
          - name: a
            plugin: alpaca
            path: a.jsonl
            columns: {instruction: prompt, output: response}
        formats: [chatml]
        """,
    )
    result = invoke("build", str(path), "-o", str(tmp_path / "out"), "-q")
    assert result.exit_code == 0, result.output
    [row] = pq.read_table(tmp_path / "out" / "formats/chatml/sft/train.parquet").to_pylist()
    assert "Say hi." in row["prompt"] and row["completion"].startswith("Hi!")


def test_a_json_file_that_does_not_parse_names_file_and_line(tmp_path):
    data = tmp_path / "a.json"
    data.write_text('[\n  {"instruction": "a", "output": "b"},\n  {"instruction": \n]\n')
    path = write_manifest_text(
        tmp_path,
        """\
        name: rows
        sources:
          - {name: a, plugin: alpaca, path: a.json}
        """,
    )
    result = invoke("build", str(path), "-o", str(tmp_path / "out"), "-q")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {data}:4: invalid JSON: ")
    assert "Traceback" not in result.output


def test_hub_source_offline_is_a_user_error(tmp_path):
    """The conftest keeps the hub offline: a hub source fails fast, with exit code 2."""
    path = write_manifest_text(
        tmp_path,
        """\
        name: rows
        sources:
          - {name: a, plugin: alpaca, hub: nobody/no-such-dataset}
        """,
    )
    result = invoke("build", str(path), "-o", str(tmp_path / "out"), "-q")
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "Error: cannot load hub dataset 'nobody/no-such-dataset' (split=train): "
    )
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- known bugs


def test_an_error_gets_a_line_of_its_own_after_the_progress_bars(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [GOOD, BROKEN])
    path = one_source(tmp_path, on_invalid="fail")
    result = invoke("build", str(path), "-o", str(tmp_path / "out"))
    assert result.exit_code == 2
    message = f"Error: sources[0] (a): a.jsonl:line 2: unreadable row: {json_error(BROKEN)} "
    assert f"{message}(1 invalid row; on_invalid: fail)" in result.stderr.splitlines()
