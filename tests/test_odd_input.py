"""Odd and hostile input: each case once made composer lose data, hang or print a traceback."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import composer
from composer.convert import dedup_key
from composer.errors import ManifestError, TemplateError
from composer.formats import PromptFormat
from composer.plugins import get_plugin
from composer.readers import read_local
from tests.helpers import invoke, read_parquet, write_jsonl, write_manifest


def build(folder: Path, sources: list[dict], **manifest) -> dict:
    path = write_manifest(folder, sources, output={"dir": "out"}, **manifest)
    return composer.build(path).report


def test_a_column_missing_from_the_first_row_survives_the_mixed_type_fallback(tmp_path):
    """`output` is a number in row 1 and text in row 2 (mixed types); `input` only in row 2."""
    write_jsonl(
        tmp_path / "a.jsonl",
        [
            {"instruction": "Add 2 and 2.", "output": 4},
            {"instruction": "Translate", "input": "bonjour", "output": "hello"},
        ],
    )
    upstream = read_local([str(tmp_path / "a.jsonl")])
    batch = upstream.batch(0, 2)
    assert batch["input"] == [None, "bonjour"]
    records = get_plugin("alpaca").convert(batch)["conversations"]
    assert records[0][1]["value"] == "4"  # a number read as an answer is text
    assert records[1][0]["value"] == "Translate\n\nbonjour"


def test_a_typo_in_a_columns_key_is_a_manifest_error(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [{"instruction": "q", "output": "a", "context": "c"}])
    path = write_manifest(
        tmp_path,
        [{"name": "a", "plugin": "alpaca", "path": "a.jsonl", "columns": {"inptu": "context"}}],
    )
    with pytest.raises(ManifestError) as error:
        composer.load_manifest(path)
    assert (
        "sources[0].columns.inptu: plugin 'alpaca' reads no column 'inptu' (did you mean 'input'?)"
        in str(error.value)
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_chunk_size": 0}, "sources[0].options.max_chunk_size: expected a positive number"),
        ({"max_chunk_size": "big"}, "sources[0].options.max_chunk_size: expected int, got 'big'"),
    ],
)
def test_plugin_option_values_are_checked_up_front(tmp_path, options, message):
    write_jsonl(tmp_path / "t.jsonl", [{"text": "words"}])
    path = write_manifest(
        tmp_path, [{"name": "t", "plugin": "text", "path": "t.jsonl", "options": options}]
    )
    with pytest.raises(ManifestError, match=re.escape(message)):
        composer.load_manifest(path)


def test_dpo_shape_typo_is_a_manifest_error(tmp_path):
    write_jsonl(tmp_path / "d.jsonl", [{"prompt": "q", "chosen": "a", "rejected": "b"}])
    path = write_manifest(
        tmp_path,
        [{"name": "d", "plugin": "dpo", "path": "d.jsonl", "options": {"shape": "prompts"}}],
    )
    with pytest.raises(
        ManifestError, match=r"options\.shape: expected one of auto, prompt, question, hh"
    ):
        composer.load_manifest(path)


def test_a_row_the_plugin_fails_on_is_rejected_and_the_rest_kept(tmp_path):
    write_jsonl(
        tmp_path / "s.jsonl",
        [
            {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}]},
            {"conversations": 5},
            {"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}]},
        ],
    )
    report = build(tmp_path, [{"name": "s", "plugin": "sharegpt", "path": "s.jsonl"}])
    [source] = report["sources"]
    assert (source["rows_read"], source["rejected"], source["records"]) == (3, 1, 2)
    assert source["rejected_by_reason"] == {
        "malformed turn": 1
    }  # a conversation that is not a list
    assert source["rejected_examples"][0]["where"] == "s.jsonl:line 2"


def test_a_lone_surrogate_rejects_its_line_not_the_file(tmp_path):
    (tmp_path / "a.jsonl").write_text(
        '{"instruction": "ok", "output": "fine"}\n{"instruction": "bad \\ud800", "output": "x"}\n'
    )
    upstream = read_local([str(tmp_path / "a.jsonl")])
    assert upstream.table.num_rows == 1
    assert [b.where for b in upstream.bad_rows] == ["a.jsonl:line 2"]


def test_messages_keep_tool_calls_beside_content_and_merge_parallel_results():
    calls = [{"id": "1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    batch = {
        "messages": [
            [
                {"role": "user", "content": "Weather in Seoul and Paris?"},
                {"role": "assistant", "content": "Let me look.", "tool_calls": calls},
                {"role": "tool", "content": "Seoul: sun"},
                {"role": "tool", "content": "Paris: rain"},
                {"role": "assistant", "content": "Sun in Seoul, rain in Paris."},
            ]
        ]
    }
    [turns] = get_plugin("messages").convert(batch)["conversations"]
    assert [t["from"] for t in turns] == ["human", "function_call", "observation", "gpt"]
    assert json.loads(turns[1]["value"]) == {"content": "Let me look.", "tool_calls": calls}
    assert turns[2]["value"] == "Seoul: sun\nParis: rain"


def test_dedup_by_conversation_keeps_different_pairs_for_one_prompt():
    context = [{"from": "human", "value": "Q"}]
    assert dedup_key("dpo", "conversation", context, None, "a", "b") != dedup_key(
        "dpo", "conversation", context, None, "a", "c"
    )
    assert dedup_key("dpo", "instruction", context, None, "a", "b") == "Q"


def test_a_function_call_answer_reaches_the_template_with_its_role(tmp_path):
    template = tmp_path / "roles.jinja"
    template.write_text(
        '{%- for m in messages -%}{{ m["from"] }}:{{ m["content"] }};{%- endfor -%}'
    )
    fmt = PromptFormat.load("roles", template)
    context = ({"role": "user", "content": "q", "from": "human"},)
    assert fmt.render(context, "call()", "function_call") == ("human:q;", "function_call:call();")


@pytest.mark.parametrize("settings", ["- a\n- b", "vars: [a, b]"])
def test_template_settings_that_are_not_mappings_are_template_errors(tmp_path, settings):
    template = tmp_path / "odd.jinja"
    template.write_text("{#- composer\n" + settings + "\n-#}{{ messages[0]['content'] }}")
    with pytest.raises(TemplateError, match="must be a mapping"):
        PromptFormat.load("odd", template)


def test_a_yaml_key_that_is_a_list_is_a_clean_error(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("name: x\n? [a, b]\n: 1\nsources: []\n")
    result = invoke("validate", str(path))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "a key must be a plain name" in result.stderr


def test_an_output_path_under_a_file_is_a_clean_error_before_any_work(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [{"instruction": "q", "output": "a"}])
    path = write_manifest(tmp_path, [{"name": "a", "plugin": "alpaca", "path": "a.jsonl"}])
    (tmp_path / "file").write_text("x")
    result = invoke("build", str(path), "-q", "-o", str(tmp_path / "file" / "out"))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "cannot write the output here" in result.stderr


def test_a_source_that_is_mostly_rejected_is_a_warning(tmp_path):
    write_jsonl(
        tmp_path / "a.jsonl",
        [{"instruction": "q", "output": ""}] * 3 + [{"instruction": "q", "output": "a"}],
    )
    path = write_manifest(
        tmp_path, [{"name": "a", "plugin": "alpaca", "path": "a.jsonl"}], output={"dir": "out"}
    )
    result = invoke("build", str(path), "-q")
    assert result.exit_code == 0
    warning = "a: 3 of 4 rows rejected (75%); see rejected.jsonl"
    assert f"Warning: {warning}" in result.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["warnings"] == [warning]
    assert warning in (tmp_path / "out" / "report.md").read_text()


def test_hub_keys_beside_a_path_are_an_error(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [{"instruction": "q", "output": "a"}])
    path = write_manifest(
        tmp_path, [{"name": "a", "plugin": "alpaca", "path": "a.jsonl", "revision": "main"}]
    )
    with pytest.raises(
        ManifestError, match=r"sources\[0\]\.revision: revision applies to hub sources"
    ):
        composer.load_manifest(path)


def test_a_recursive_glob_finds_nested_files(tmp_path):
    (tmp_path / "data" / "deep").mkdir(parents=True)
    write_jsonl(tmp_path / "data" / "deep" / "a.jsonl", [{"instruction": "q1", "output": "a"}])
    write_jsonl(tmp_path / "data" / "b.jsonl", [{"instruction": "q2", "output": "a"}])
    report = build(tmp_path, [{"name": "a", "plugin": "alpaca", "path": "data/**/*.jsonl"}])
    assert report["sources"][0]["records"] == 2
    assert len(read_parquet(tmp_path / "out" / "sft" / "messages" / "train.parquet")) == 2
    # each record names its file relative to the manifest: the output is the same wherever
    # the project is checked out
    records = read_parquet(tmp_path / "out" / "records.parquet")
    files = sorted(json.loads(r["meta"])["file"] for r in records)
    assert files == ["data/b.jsonl", "data/deep/a.jsonl"]


def test_validate_json_uses_the_manifest_key_names(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [{"instruction": "q", "output": "a"}])
    path = write_manifest(
        tmp_path, [{"name": "a", "plugin": "alpaca", "path": "a.jsonl"}], output={"json": True}
    )
    result = invoke("validate", str(path), "--json")
    assert json.loads(result.stdout)["output"]["json"] is True
