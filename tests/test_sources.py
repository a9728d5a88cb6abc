"""The six generic source plugins, fed by real files read with `composer.readers`.

Every fixture is written by the test into tmp_path in the upstream schema, read back with
`read_local` (or `read_hub` for a local folder in hub layout), converted by the plugin the
registry returns, and checked with `record_problem`, as the build does.
"""

from __future__ import annotations

import csv
import gzip
import json
import unicodedata
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from composer.errors import InputError
from composer.plugins import get_plugin
from composer.readers import BadRow, file_type, read_hub, read_local, resolve_files
from composer.records import record_problem
from tests.helpers import write_jsonl

# ---------------------------------------------------------------- writers and helpers


def write_jsonl_gz(path: Path, rows: list[dict]) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def write_json(path: Path, rows: list[dict]) -> None:
    path.write_text(json.dumps(rows, ensure_ascii=False, indent=1), "utf-8")


def write_json_wrapped(path: Path, rows: list[dict]) -> None:
    path.write_text(json.dumps({"version": "1", "data": rows}, ensure_ascii=False), "utf-8")


def write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def write_parquet(path: Path, rows: list[dict]) -> None:
    pq.write_table(pa.Table.from_pylist(rows), path)


def write_arrow_file(path: Path, rows: list[dict]) -> None:
    table = pa.Table.from_pylist(rows)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def write_arrow_stream(path: Path, rows: list[dict]) -> None:
    """The IPC stream format, which is what `datasets` cache files are."""
    table = pa.Table.from_pylist(rows)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)


def write_disk(path: Path, rows: list[dict]) -> None:
    import datasets

    datasets.Dataset.from_list(rows).save_to_disk(str(path))


WRITERS = {
    "data.jsonl": write_jsonl,
    "data.ndjson": write_jsonl,
    "data.jsonl.gz": write_jsonl_gz,
    "data.json": write_json,
    "wrapped.json": write_json_wrapped,
    "data.csv": write_csv,
    "data.parquet": write_parquet,
    "data.arrow": write_arrow_file,
    "stream.arrow": write_arrow_stream,
    "saved": write_disk,
}
NESTED_WRITERS = [name for name in WRITERS if not name.endswith(".csv")]


def write(folder: Path, name: str, rows: list[dict]) -> Path:
    """Write `rows` to folder/name in the format its suffix says (no suffix: save_to_disk)."""
    path = folder / name
    writer = WRITERS.get(name) or WRITERS.get("data" + "".join(path.suffixes)) or write_disk
    writer(path, rows)
    return path


def read(path: Path):
    """All rows of one file as a batch, as the build hands it to a plugin."""
    upstream = read_local([str(path)])
    assert upstream.bad_rows == []
    return upstream.batch(0, upstream.table.num_rows)


def convert(plugin: str, batch: dict[str, list], **options) -> list[dict]:
    """The plugin's output, one dict per record."""
    out = get_plugin(plugin).convert(batch, **options)
    out.pop("linked", None)  # rows joined into other records: a list of its own length
    n = len(out["text"] if "text" in out else out["conversations"])
    assert all(len(column) == n for column in out.values())
    return [{k: v[i] for k, v in out.items()} for i in range(n)]


def reason(kind: str, record: dict) -> str | None:
    """Why the build would reject `record` (the plugin's own `error` first), or None."""
    if record.get("error"):
        return "error"
    problem = record_problem(
        kind,
        record.get("conversations"),
        record.get("chosen"),
        record.get("rejected"),
        record.get("text"),
    )
    return problem and problem[0]


def conv(*turns: tuple[str, str]) -> list[dict]:
    return [{"from": role, "value": value} for role, value in turns]


# ---------------------------------------------------------------- registry


@pytest.mark.parametrize(
    ("name", "kind", "options"),
    [
        ("sharegpt", "sft", {"system_column": None}),
        ("messages", "sft", {}),
        ("alpaca", "sft", {"input_separator": "\n\n"}),
        ("dpo", "dpo", {"shape": "auto"}),
        ("oasst", "sft", {"best_only": False}),
        ("text", "text", {"max_chunk_size": 2000}),
    ],
)
def test_generic_plugins_are_registered(name, kind, options):
    plugin = get_plugin(name)
    assert (plugin.name, plugin.kind, plugin.options, plugin.origin) == (
        name,
        kind,
        options,
        "built-in",
    )
    assert plugin.columns, "a generic plugin names the columns it reads"


def test_oasst_reads_the_whole_dataset_as_one_batch():
    """A tree's messages may be far apart, so oasst must not be batched."""
    assert get_plugin("oasst").batch_size is None


# ---------------------------------------------------------------- readers

FLAT_ROWS = [
    {"instruction": "Name a colour, please.", "input": "", "output": "Blue, like the sky."},
    {"instruction": 'Quote "this"', "input": "line one\nline two", "output": '"this", done'},
    {"instruction": "한국어로 인사해 주세요.", "input": "상황: 아침", "output": "좋은 아침입니다!"},
    {"instruction": "用中文回答。", "input": "问题：天空是什么颜色？", "output": "天空是蓝色的。"},
]
NESTED_ROWS = [
    {"id": "a", "conversations": conv(("human", "Hi"), ("gpt", "Hello!"))},
    {
        "id": "b",
        "conversations": conv(
            ("system", "Be brief."),
            ("human", "안녕?"),
            ("gpt", "안녕하세요."),
            ("human", "你好"),
            ("gpt", "你好！"),
        ),
    },
]


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("a.jsonl", "jsonl"),
        ("a.ndjson", "jsonl"),
        ("A.JSONL.GZ", "jsonl"),
        ("a.jsonl.zst", "jsonl"),
        ("a.json", "json"),
        ("a.json.bz2", "json"),
        ("a.csv", "csv"),
        ("a.csv.gz", "csv"),
        ("a.parquet", "parquet"),
        ("a.arrow", "arrow"),
        ("a.txt", None),
        ("a.jsonl.xz", None),
        ("a.parquet.zip", None),
        ("no_suffix", None),
    ],
)
def test_file_type(path, kind):
    assert file_type(path) == kind


def test_file_type_of_a_folder_is_a_saved_dataset(tmp_path):
    assert file_type(str(tmp_path)) == "disk"


@pytest.mark.parametrize("name", list(WRITERS))
def test_every_file_type_gives_the_same_rows(tmp_path, name):
    path = write(tmp_path, name, FLAT_ROWS)
    upstream = read_local([str(path)])
    assert upstream.table.to_pylist() == FLAT_ROWS
    assert upstream.bad_rows == []
    assert upstream.files == [str(path)]
    assert len(upstream.line) == len(upstream.file_index) == len(FLAT_ROWS)


@pytest.mark.parametrize("name", NESTED_WRITERS)
def test_nested_turns_survive_every_file_type(tmp_path, name):
    path = write(tmp_path, name, NESTED_ROWS)
    records = convert("sharegpt", read(path))
    assert [r["conversations"] for r in records] == [r["conversations"] for r in NESTED_ROWS]
    assert [reason("sft", r) for r in records] == [None, None]


def test_broken_jsonl_line_becomes_a_bad_row_and_the_rest_is_read(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text(
        '{"text": "one"}\n'
        '{"text": "two"}\n'
        '{"text": "three\n'  # line 3: unterminated string
        " \t\n"  # line 4: blank, skipped
        '{"text": "five"}\n'
        '["not", "an", "object"]\n'  # line 6
        '{"text": "seven"}\n',
        "utf-8",
    )
    upstream = read_local([str(path)])
    assert upstream.table.column("text").to_pylist() == ["one", "two", "five", "seven"]
    assert [b.where for b in upstream.bad_rows] == ["broken.jsonl:line 3", "broken.jsonl:line 6"]
    assert isinstance(upstream.bad_rows[0], BadRow)
    assert "invalid JSON" in upstream.bad_rows[0].detail
    assert "expected a JSON object" in upstream.bad_rows[1].detail
    assert [upstream.where(i) for i in range(4)] == [
        "broken.jsonl:line 1",
        "broken.jsonl:line 2",
        "broken.jsonl:line 5",
        "broken.jsonl:line 7",
    ]


def test_jsonl_with_crlf_and_whitespace_lines(tmp_path):
    path = tmp_path / "windows.jsonl"
    path.write_bytes(b'{"text": "a"}\r\n   \r\n{"text": "b"}\r\n')
    upstream = read_local([str(path)])
    assert (upstream.table.to_pydict(), upstream.bad_rows) == ({"text": ["a", "b"]}, [])
    assert upstream.where(1) == "windows.jsonl:line 3"


def test_where_names_the_file_and_line_across_files(tmp_path):
    first = write(tmp_path, "a.jsonl", [{"text": "a1"}, {"text": "a2"}])
    (tmp_path / "b.jsonl.gz").write_bytes(gzip.compress(b'\n{"text": "b1"}\n{"text": "b2"}\n'))
    upstream = read_local([str(first), str(tmp_path / "b.jsonl.gz")])
    assert upstream.table.column("text").to_pylist() == ["a1", "a2", "b1", "b2"]
    assert [upstream.where(i) for i in range(4)] == [
        "a.jsonl:line 1",
        "a.jsonl:line 2",
        "b.jsonl.gz:line 2",
        "b.jsonl.gz:line 3",
    ]


@pytest.mark.parametrize("name", ["data.csv", "data.parquet", "data.arrow", "data.json", "saved"])
def test_where_names_the_file_and_row_for_other_types(tmp_path, name):
    upstream = read_local([str(write(tmp_path, name, FLAT_ROWS))])
    assert upstream.where(1).startswith(f"{name}:row ")
    assert upstream.where(1) != upstream.where(2)


def test_files_with_different_columns_are_concatenated(tmp_path):
    with_system = write(tmp_path, "a.jsonl", [{"instruction": "i", "output": "o", "system": "s"}])
    without = write(tmp_path, "b.parquet", [{"instruction": "j", "output": "p"}])
    upstream = read_local([str(with_system), str(without)])
    assert upstream.table.to_pylist() == [
        {"instruction": "i", "output": "o", "system": "s"},
        {"instruction": "j", "output": "p", "system": None},
    ]


def test_saved_dataset_dict_reads_the_requested_split(tmp_path):
    import datasets

    folder = tmp_path / "saved"
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_list([{"text": "train row"}]),
            "test": datasets.Dataset.from_list([{"text": "test row"}, {"text": "another"}]),
        }
    ).save_to_disk(str(folder))
    assert read_local([str(folder)], split="test").table.column("text").to_pylist() == [
        "test row",
        "another",
    ]
    with pytest.raises(InputError, match=r"no split 'validation'.*train, test"):
        read_local([str(folder)], split="validation")


def test_resolve_files_expands_globs_relative_to_the_base(tmp_path):
    (tmp_path / "data").mkdir()
    for name in ("b.jsonl", "a.jsonl", "c.csv"):
        (tmp_path / "data" / name).write_text("")
    assert resolve_files("data/*.jsonl", tmp_path) == [
        str(tmp_path / "data" / "a.jsonl"),
        str(tmp_path / "data" / "b.jsonl"),
    ]
    assert resolve_files(["data/c.csv", "data/a.jsonl"], tmp_path) == [
        str(tmp_path / "data" / "c.csv"),
        str(tmp_path / "data" / "a.jsonl"),
    ]


def test_a_missing_file_is_an_input_error_naming_it(tmp_path):
    missing = tmp_path / "nowhere" / "data.jsonl"
    with pytest.raises(InputError, match=r"nowhere/data\.jsonl"):
        read_local([str(missing)])


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        pytest.param(
            "data.json",
            '[\n{"text": "ok"},\n{"text": oops}\n]\n',
            r"data\.json:3: invalid JSON",
            id="invalid JSON list names the line",
        ),
        pytest.param(
            "data.json",
            '{"train": [{"text": "a"}], "test": [{"text": "b"}]}',
            "expected a JSON list of rows",
            id="JSON that is not a list of rows",
        ),
        pytest.param(
            "notes.txt",
            "just some notes, not a table\n",
            r"notes\.txt",
            id="unsupported suffix",
        ),
    ],
)
def test_an_unreadable_file_is_an_input_error(tmp_path, name, content, match):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InputError, match=match):
        read_local([str(path)])


def test_where_says_line_for_compressed_ndjson(tmp_path):
    path = tmp_path / "data.ndjson.gz"
    write_jsonl_gz(path, [{"text": "a"}])
    assert read_local([str(path)]).where(0) == "data.ndjson.gz:line 1"


def test_csv_values_stay_strings(tmp_path):
    rows = [
        {"question": "2+2?", "answer": "4", "flag": "true", "note": "NA"},
        {"question": "3+3?", "answer": "6", "flag": "false", "note": ""},
    ]
    assert read(write(tmp_path, "data.csv", rows)) == {
        "question": ["2+2?", "3+3?"],
        "answer": ["4", "6"],
        "flag": ["true", "false"],
        "note": ["NA", ""],
    }


def test_jsonl_date_like_strings_stay_strings(tmp_path):
    rows = [{"text": "2024-01-02"}, {"text": "2023-12-31"}]
    assert read(write(tmp_path, "data.jsonl", rows)) == {"text": ["2024-01-02", "2023-12-31"]}


def test_jsonl_with_string_and_list_content_is_readable(tmp_path):
    rows = [
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]},
        {
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
                {"role": "assistant", "content": "Yo"},
            ]
        },
    ]
    records = convert("messages", read(write(tmp_path, "data.jsonl", rows)))
    assert [r["conversations"] for r in records] == [conv(("human", "Hi"), ("gpt", "Yo"))] * 2


# ---------------------------------------------------------------- sharegpt


@pytest.mark.parametrize(
    ("alias", "role"),
    [
        ("human", "human"),
        ("user", "human"),
        ("prompter", "human"),
        ("gpt", "gpt"),
        ("assistant", "gpt"),
        ("model", "gpt"),
        ("bot", "gpt"),
        ("chatgpt", "gpt"),
        ("bard", "gpt"),
        ("bing", "gpt"),
    ],
)
def test_sharegpt_role_aliases(alias, role):
    turns = [
        {"from": alias if role == "human" else "human", "value": "Q"},
        {"from": alias if role == "gpt" else "gpt", "value": "A"},
    ]
    [record] = convert("sharegpt", {"conversations": [turns]})
    assert record["conversations"] == conv(("human", "Q"), ("gpt", "A"))


def test_sharegpt_multi_turn_from_file_keeps_order_and_maps_roles(tmp_path):
    rows = [
        {
            "conversations": [
                {"from": "system", "value": "You are terse."},
                {"from": "user", "value": "Q1"},
                {"from": "assistant", "value": "A1"},
                {"from": "user", "value": "Q2"},
                {"from": "assistant", "value": "A2"},
                {"from": "user", "value": "Q3"},
                {"from": "assistant", "value": "A3"},
            ]
        }
    ]
    [record] = convert("sharegpt", read(write(tmp_path, "data.jsonl", rows)))
    assert record["conversations"] == conv(
        ("system", "You are terse."),
        ("human", "Q1"),
        ("gpt", "A1"),
        ("human", "Q2"),
        ("gpt", "A2"),
        ("human", "Q3"),
        ("gpt", "A3"),
    )
    assert reason("sft", record) is None


def test_sharegpt_role_content_keys(tmp_path):
    rows = [
        {
            "conversations": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"},
            ]
        }
    ]
    [record] = convert("sharegpt", read(write(tmp_path, "data.parquet", rows)))
    assert record["conversations"] == conv(("human", "Hi"), ("gpt", "Hello"))


def test_sharegpt_system_column(tmp_path):
    rows = [
        {
            "system_prompt": "Answer in French.",
            "conversations": conv(("human", "Hello"), ("gpt", "Bonjour")),
        },
        {"system_prompt": "", "conversations": conv(("human", "Hi"), ("gpt", "Hey"))},
        {"system_prompt": None, "conversations": conv(("human", "Yo"), ("gpt", "Sup"))},
    ]
    records = convert(
        "sharegpt", read(write(tmp_path, "data.jsonl", rows)), system_column="system_prompt"
    )
    assert [r["conversations"] for r in records] == [
        conv(("system", "Answer in French."), ("human", "Hello"), ("gpt", "Bonjour")),
        conv(("human", "Hi"), ("gpt", "Hey")),
        conv(("human", "Yo"), ("gpt", "Sup")),
    ]
    assert [reason("sft", r) for r in records] == [None, None, None]


@pytest.mark.parametrize(
    ("turns", "expected"),
    [
        (conv(("human", "Hi"), ("gpt", "Hello")), None),
        (conv(("narrator", "Once"), ("gpt", "upon")), "unknown role"),
        (conv(("human", "Hi")), "no answer"),
        (conv(("gpt", "Hello"), ("human", "Hi")), "wrong role order"),
        (conv(("human", "Hi"), ("gpt", "  ")), "empty turn"),
        ([], "no turns"),
        (None, "no turns"),
    ],
)
def test_sharegpt_invalid_rows_are_rejected_not_fixed(turns, expected):
    [record] = convert("sharegpt", {"conversations": [turns]})
    assert reason("sft", record) == expected


def test_sharegpt_file_mixing_from_value_and_role_content(tmp_path):
    rows = [
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "A"}]},
        {
            "conversations": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "A"},
            ]
        },
    ]
    records = convert("sharegpt", read(write(tmp_path, "data.jsonl", rows)))
    assert [r["conversations"] for r in records] == [conv(("human", "Hi"), ("gpt", "A"))] * 2


# ---------------------------------------------------------------- messages

TOOL_CALLS = [
    {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Seoul"}'},
    }
]


def test_messages_roles_content_parts_and_tools(tmp_path):
    rows = [
        {
            "messages": [
                {"role": "system", "content": "You can call tools."},
                {"role": "user", "content": "Weather in Seoul?"},
                {"role": "assistant", "content": None, "tool_calls": TOOL_CALLS},
                {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 21}'},
                {"role": "assistant", "content": "It is 21°C in Seoul."},
            ]
        },
    ]
    [record] = convert("messages", read(write(tmp_path, "data.jsonl", rows)))
    roles = [t["from"] for t in record["conversations"]]
    assert roles == ["system", "human", "function_call", "observation", "gpt"]
    assert json.loads(record["conversations"][2]["value"]) == TOOL_CALLS
    assert record["conversations"][3]["value"] == '{"temp_c": 21}'
    assert record["conversations"][4]["value"] == "It is 21°C in Seoul."
    assert reason("sft", record) is None


def test_messages_content_as_a_list_of_parts(tmp_path):
    rows = [
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Describe "},
                        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                        {"type": "text", "text": "this picture."},
                    ],
                },
                {"role": "assistant", "content": [{"type": "text", "text": "A cat on a mat."}]},
            ]
        }
    ]
    [record] = convert("messages", read(write(tmp_path, "data.parquet", rows)))
    assert record["conversations"] == conv(
        ("human", "Describe this picture."), ("gpt", "A cat on a mat.")
    )
    assert reason("sft", record) is None


def test_messages_multi_turn_order_and_empty_rows():
    batch = {
        "messages": [
            [
                {"role": "user", "content": f"Q{i}"}
                if i % 2 == 0
                else {"role": "assistant", "content": f"A{i}"}
                for i in range(6)
            ],
            [],
            None,
        ]
    }
    records = convert("messages", batch)
    assert [t["value"] for t in records[0]["conversations"]] == ["Q0", "A1", "Q2", "A3", "Q4", "A5"]
    assert [reason("sft", r) for r in records] == [None, "no turns", "no turns"]


# ---------------------------------------------------------------- alpaca


def test_alpaca_joins_instruction_and_input(tmp_path):
    rows = [
        {
            "instruction": "Translate to French.",
            "input": "Good morning",
            "output": "Bonjour",
            "system": "",
        },
        {"instruction": "Say hi.", "input": "", "output": "Hi!", "system": ""},
        {"instruction": "Say bye.", "input": "   ", "output": "Bye!", "system": ""},
        {
            "instruction": "Be polite.",
            "input": "",
            "output": "Please.",
            "system": "You are a butler.",
        },
    ]
    records = convert("alpaca", read(write(tmp_path, "data.csv", rows)))
    assert [r["conversations"] for r in records] == [
        conv(("human", "Translate to French.\n\nGood morning"), ("gpt", "Bonjour")),
        conv(("human", "Say hi."), ("gpt", "Hi!")),
        conv(("human", "Say bye."), ("gpt", "Bye!")),
        conv(("system", "You are a butler."), ("human", "Be polite."), ("gpt", "Please.")),
    ]
    assert [reason("sft", r) for r in records] == [None] * 4


def test_alpaca_without_input_or_system_columns(tmp_path):
    rows = [{"instruction": "Count to three.", "output": "1, 2, 3"}]
    [record] = convert("alpaca", read(write(tmp_path, "data.json", rows)))
    assert record["conversations"] == conv(("human", "Count to three."), ("gpt", "1, 2, 3"))


def test_alpaca_input_separator_option():
    batch = {"instruction": ["Summarise:"], "input": ["A long text."], "output": ["Short."]}
    [record] = convert("alpaca", batch, input_separator="\n")
    assert record["conversations"][0]["value"] == "Summarise:\nA long text."


def test_alpaca_missing_output_is_rejected():
    batch = {"instruction": ["Q", "Q"], "input": [None, None], "output": ["", None]}
    assert [reason("sft", r) for r in convert("alpaca", batch)] == ["empty turn", "missing value"]


def test_alpaca_csv_with_numeric_answers(tmp_path):
    rows = [
        {"instruction": "What is 2+2?", "output": "4"},
        {"instruction": "What is 3+3?", "output": "6"},
    ]
    records = convert("alpaca", read(write(tmp_path, "data.csv", rows)))
    assert [reason("sft", r) for r in records] == [None, None]


# ---------------------------------------------------------------- dpo


def test_dpo_prompt_chosen_rejected_strings(tmp_path):
    rows = [
        {"prompt": "What is 2+2?", "chosen": "4", "rejected": "5"},
        {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": ""},
    ]
    records = convert("dpo", read(write(tmp_path, "data.jsonl", rows)))
    assert [(r["conversations"], r["chosen"], r["rejected"]) for r in records] == [
        (conv(("human", "What is 2+2?")), "4", "5"),
        (conv(("human", "Capital of France?")), "Paris.", ""),
    ]
    assert [reason("dpo", r) for r in records] == [None, "empty rejected"]


def test_dpo_prompt_with_message_list_answers(tmp_path):
    """UltraFeedback-binarized: chosen/rejected are the whole exchange; the last is the answer."""
    rows = [
        {
            "prompt": "Write a haiku.",
            "chosen": [
                {"role": "user", "content": "Write a haiku."},
                {"role": "assistant", "content": "Autumn moonlight—"},
            ],
            "rejected": [
                {"role": "user", "content": "Write a haiku."},
                {"role": "assistant", "content": "No."},
            ],
        }
    ]
    [record] = convert("dpo", read(write(tmp_path, "data.parquet", rows)))
    assert record["conversations"] == conv(("human", "Write a haiku."))
    assert (record["chosen"], record["rejected"]) == ("Autumn moonlight—", "No.")
    assert reason("dpo", record) is None


def test_dpo_trl_conversational_prompt(tmp_path):
    rows = [
        {
            "prompt": [
                {"role": "system", "content": "Be kind."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": "Rate my poem."},
            ],
            "chosen": [{"role": "assistant", "content": "It has lovely imagery."}],
            "rejected": [{"role": "assistant", "content": "Bad."}],
        }
    ]
    [record] = convert("dpo", read(write(tmp_path, "data.jsonl", rows)))
    assert record["conversations"] == conv(
        ("system", "Be kind."), ("human", "Hi"), ("gpt", "Hello!"), ("human", "Rate my poem.")
    )
    assert (record["chosen"], record["rejected"]) == ("It has lovely imagery.", "Bad.")
    assert reason("dpo", record) is None


def test_dpo_system_question_chosen_rejected(tmp_path):
    rows = [
        {
            "system": "You are an AI assistant.",
            "question": "Solve 2x=4.",
            "chosen": "x = 2",
            "rejected": "x = 3",
        },
        {"system": "", "question": "Say hi.", "chosen": "Hi!", "rejected": "..."},
    ]
    records = convert("dpo", read(write(tmp_path, "data.parquet", rows)))
    assert [r["conversations"] for r in records] == [
        conv(("system", "You are an AI assistant."), ("human", "Solve 2x=4.")),
        conv(("human", "Say hi.")),
    ]
    assert [(r["chosen"], r["rejected"]) for r in records] == [("x = 2", "x = 3"), ("Hi!", "...")]
    assert [reason("dpo", r) for r in records] == [None, None]


HH_CONTEXT = "\n\nHuman: Hi there\n\nAssistant: Hello! How can I help?\n\nHuman: Tell me a joke."


def test_dpo_hh_transcripts(tmp_path):
    rows = [
        {
            "chosen": HH_CONTEXT + "\n\nAssistant: Why did the chicken cross the road?",
            "rejected": HH_CONTEXT + "\n\nAssistant: No.",
        },
        {
            "chosen": "\n\nHuman: A?\n\nAssistant: Yes.",  # contexts differ
            "rejected": "\n\nHuman: B?\n\nAssistant: No.",
        },
        {"chosen": "Just a string, no transcript.", "rejected": "Another one."},
        {"chosen": "\n\nHuman: Hello?", "rejected": "\n\nHuman: Hello?"},  # no answer
        {
            "chosen": "Preamble.\n\nHuman: A?\n\nAssistant: Yes.",  # text before Human:
            "rejected": "Preamble.\n\nHuman: A?\n\nAssistant: No.",
        },
    ]
    records = convert("dpo", read(write(tmp_path, "hh.jsonl", rows)))
    good = records[0]
    assert good["conversations"] == conv(
        ("human", "Hi there"), ("gpt", "Hello! How can I help?"), ("human", "Tell me a joke.")
    )
    assert (good["chosen"], good["rejected"]) == ("Why did the chicken cross the road?", "No.")
    assert [reason("dpo", r) for r in records] == [None, "error", "error", "error", "error"]
    assert "context" in records[1]["error"]
    assert "HH transcript" in records[2]["error"]
    assert "HH transcript" in records[4]["error"]


def test_dpo_hh_transcript_without_leading_newlines():
    [record] = convert(
        "dpo",
        {
            "chosen": ["Human: Hi\n\nAssistant: Hello"],
            "rejected": ["Human: Hi\n\nAssistant: Go away"],
        },
    )
    assert (record["conversations"], record["chosen"], record["rejected"]) == (
        conv(("human", "Hi")),
        "Hello",
        "Go away",
    )


def test_dpo_message_lists_without_prompt():
    chosen = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    rejected = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Go away."}]
    [record] = convert("dpo", {"chosen": [chosen], "rejected": [rejected]})
    assert (record["conversations"], record["chosen"], record["rejected"]) == (
        conv(("human", "Hi")),
        "Hello!",
        "Go away.",
    )


# ---------------------------------------------------------------- oasst

# A tree whose messages are out of order: r1 has a best answer a2 (followed up and answered),
# a second answer a1 (followed up, never answered) and a deleted answer a4 with a subtree;
# r2 was never answered.
OASST_ROWS = [
    {
        "message_id": "a2",
        "parent_id": "r1",
        "role": "assistant",
        "text": "Best answer.",
        "deleted": False,
        "rank": 0,
    },
    {
        "message_id": "r1",
        "parent_id": None,
        "role": "prompter",
        "text": "First question?",
        "deleted": False,
        "rank": None,
    },
    {
        "message_id": "a1",
        "parent_id": "r1",
        "role": "assistant",
        "text": "Second answer.",
        "deleted": False,
        "rank": 1,
    },
    {
        "message_id": "p2",
        "parent_id": "a1",
        "role": "prompter",
        "text": "Unanswered?",
        "deleted": False,
        "rank": None,
    },
    {
        "message_id": "p3",
        "parent_id": "a2",
        "role": "prompter",
        "text": "Follow-up?",
        "deleted": False,
        "rank": None,
    },
    {
        "message_id": "a3",
        "parent_id": "p3",
        "role": "assistant",
        "text": "Follow-up answer.",
        "deleted": False,
        "rank": 0,
    },
    {
        "message_id": "a4",
        "parent_id": "r1",
        "role": "assistant",
        "text": "Deleted answer.",
        "deleted": True,
        "rank": 2,
    },
    {
        "message_id": "p5",
        "parent_id": "a4",
        "role": "prompter",
        "text": "Under deleted?",
        "deleted": False,
        "rank": None,
    },
    {
        "message_id": "a5",
        "parent_id": "p5",
        "role": "assistant",
        "text": "Also gone.",
        "deleted": False,
        "rank": 0,
    },
    {
        "message_id": "r2",
        "parent_id": None,
        "role": "prompter",
        "text": "Nobody answered.",
        "deleted": False,
        "rank": None,
    },
]


def oasst_paths(records: list[dict]) -> list[list[str]]:
    """The message-id paths of the records, in the order the plugin gave them."""
    return [r["meta"]["message_ids"] for r in records if not r.get("error")]


def oasst_rejected(batch: dict, records: list[dict]) -> dict[str, str]:
    return {batch["message_id"][r["row"]]: r["error"][1] for r in records if r.get("error")}


def test_oasst_one_conversation_per_path_best_ranked_first(tmp_path):
    batch = read(write(tmp_path, "oasst.parquet", OASST_ROWS))
    records = convert("oasst", batch)
    # a2 (rank 0) before a1 (rank 1), though a1's path ends first in the file.
    assert oasst_paths(records) == [["r1", "a2", "p3", "a3"], ["r1", "a1"]]
    by_path = {tuple(r["meta"]["message_ids"]): r for r in records if r["meta"]}
    assert by_path["r1", "a2", "p3", "a3"]["conversations"] == conv(
        ("human", "First question?"),
        ("gpt", "Best answer."),
        ("human", "Follow-up?"),
        ("gpt", "Follow-up answer."),
    )
    # The path ending with the unanswered prompter message ends at the answer before it.
    assert by_path["r1", "a1"]["conversations"] == conv(
        ("human", "First question?"), ("gpt", "Second answer.")
    )
    for record in records:
        if not record["error"]:
            assert batch["message_id"][record["row"]] == record["meta"]["message_ids"][-1]
            assert reason("sft", record) is None


def test_oasst_every_message_is_a_record_end_linked_or_rejected_with_its_reason(tmp_path):
    batch = read(write(tmp_path, "oasst.parquet", OASST_ROWS))
    out = get_plugin("oasst").convert(batch)
    linked = {batch["message_id"][i] for i in out["linked"]}
    ends = {batch["message_id"][r] for r, e in zip(out["row"], out["error"]) if not e}
    rejected = {batch["message_id"][r]: e[1] for r, e in zip(out["row"], out["error"]) if e}
    assert linked == {"r1", "a2", "p3"}
    assert ends == {"a3", "a1"}
    assert rejected == {
        "p2": "unanswered: no reply below this message",
        "r2": "unanswered: no reply below this message",
        "a4": "deleted",
        "p5": "under a rejected row: deleted",
        "a5": "under a rejected row: deleted",
    }
    assert len(linked) + len(ends) + len(rejected) == len(OASST_ROWS)


def test_oasst_with_dedup_instruction_keeps_the_best_ranked_path_in_a_build(tmp_path):
    from composer.testing import convert_rows

    rows = [OASST_ROWS[i] for i in (1, 2, 3, 0, 4, 5)]  # the worse branch first in the file
    converted = convert_rows("oasst", rows, folder=tmp_path)
    assert converted.linked == 3 and len(converted.rejections) == 1
    assert converted.rows_read == converted.linked + converted.records.num_rows + 1
    first = converted.records.slice(0, 1).to_pylist()[0]
    assert [t["value"] for t in first["conversations"]][1] == "Best answer."


def test_oasst_best_only_follows_the_best_ranked_reply(tmp_path):
    batch = read(write(tmp_path, "oasst.jsonl", OASST_ROWS))
    records = convert("oasst", batch, best_only=True)
    assert oasst_paths(records) == [["r1", "a2", "p3", "a3"]]
    assert oasst_rejected(batch, records)["a1"] == "not the best-ranked reply"
    assert oasst_rejected(batch, records)["p2"] == "under a rejected row: not the best-ranked reply"


def test_oasst_best_only_prefers_ranked_over_unranked():
    batch = {
        "message_id": ["q", "x", "y"],
        "parent_id": [None, "q", "q"],
        "role": ["prompter", "assistant", "assistant"],
        "text": ["Q", "X", "Y"],
        "rank": [None, None, 3],
    }
    assert oasst_paths(convert("oasst", batch, best_only=True)) == [["q", "y"]]


def test_oasst_without_deleted_or_rank_columns():
    batch = {
        key: [row[key] for row in OASST_ROWS[:6]]
        for key in ("message_id", "parent_id", "role", "text")
    }
    assert sorted(oasst_paths(convert("oasst", batch))) == [["r1", "a1"], ["r1", "a2", "p3", "a3"]]


def tree(*rows: tuple[str, str | None, str]) -> dict[str, list]:
    """(message_id, parent_id, role) rows; the text is the id."""
    return {
        "message_id": [r[0] for r in rows],
        "parent_id": [r[1] for r in rows],
        "role": [r[2] for r in rows],
        "text": [f"text of {r[0]}" for r in rows],
    }


def test_oasst_broken_trees_are_rejected_rows_never_a_loop():
    batch = tree(
        ("q", None, "prompter"),
        ("a", "q", "assistant"),
        ("self", "self", "prompter"),  # its own parent
        ("orphan", "gone", "assistant"),  # parent not in the data
        ("c1", "c2", "prompter"),  # c1 -> c2 -> c1: a cycle
        ("c2", "c1", "assistant"),
        ("below", "c2", "prompter"),  # hangs under the cycle
        ("dup", "q", "assistant"),  # a duplicated id that makes a loop
        ("dup", "dup", "prompter"),
        ("kid", "dup", "assistant"),  # its parent id is on two rows
    )
    records = convert("oasst", batch)
    assert oasst_paths(records) == [["q", "a"]]
    rejected = {
        (batch["message_id"][r["row"]], r["row"]): r["error"][1] for r in records if r["error"]
    }
    assert rejected == {
        ("self", 2): "its own parent",
        ("orphan", 3): "orphan: parent 'gone' is not in the data",
        ("c1", 4): "a cycle of parent ids",
        ("c2", 5): "a cycle of parent ids",
        ("below", 6): "under a rejected row: a cycle of parent ids",
        ("dup", 7): "duplicate id: 'dup' is on 2 rows",
        ("dup", 8): "duplicate id: 'dup' is on 2 rows",
        ("kid", 9): "ambiguous parent: id 'dup' is on 2 rows",
    }


def test_oasst_a_chain_deeper_than_the_limit_is_rejected_not_a_recursion_error():
    n = 20_000
    batch = tree(
        *(
            (f"m{i}", f"m{i - 1}" if i else None, "prompter" if i % 2 == 0 else "assistant")
            for i in range(n)
        )
    )
    records = convert("oasst", batch)
    assert oasst_paths(records) == [[f"m{i}" for i in range(256)]]  # m255 answers last
    rejected = [r["error"][1] for r in records if r["error"]]
    assert rejected[:3] == [
        "unanswered: no reply below this message",  # m256, depth 256, the deepest allowed
        "too deep: deeper than max_depth 256",  # m257
        "under a rejected row: too deep: deeper than max_depth 256",
    ]
    assert len(rejected) == n - 256


# ---------------------------------------------------------------- text

WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "eta",
    "theta",
    "iota",
    "kappa",
    "lambda",
    "mu",
    "nu",
    "xi",
    "omicron",
    "pi",
    "rho",
    "sigma",
    "tau",
    "upsilon",
    "phi",
    "chi",
    "psi",
    "omega",
]


def sentences(n: int, start: int = 0) -> str:
    return " ".join(
        f"{WORDS[(start + i) % len(WORDS)].capitalize()} "
        f"{WORDS[(start + 3 * i + 1) % len(WORDS)]} goes here."
        for i in range(n)
    )


def test_text_packs_whole_paragraphs(tmp_path):
    paragraphs = [
        "First paragraph, short.",
        "Second paragraph, short.",
        "Third paragraph is a little longer than the others.",
    ]
    rows = [{"text": "\n\n".join(paragraphs)}]
    records = convert("text", read(write(tmp_path, "book.jsonl", rows)), max_chunk_size=60)
    assert [r["text"] for r in records] == [
        "First paragraph, short.\n\nSecond paragraph, short.",
        paragraphs[2],
    ]
    assert [r["meta"] for r in records] == [{"chunk": 0, "chunks": 2}, {"chunk": 1, "chunks": 2}]
    assert [r["row"] for r in records] == [0, 0]


def test_text_long_paragraph_is_cut_between_words():
    paragraph = sentences(40)
    records = convert("text", {"text": [paragraph]}, max_chunk_size=120)
    chunks = [r["text"] for r in records]
    assert len(chunks) > 5
    assert all(0 < len(c) <= 120 for c in chunks)
    assert " ".join(chunks).split() == paragraph.split()
    assert all(c == c.strip() for c in chunks)


def test_text_long_paragraph_is_cut_at_a_sentence_end():
    paragraph = "A sentence that is long enough. " + "x" * 50
    assert [r["text"] for r in convert("text", {"text": [paragraph]}, max_chunk_size=50)] == [
        "A sentence that is long enough.",
        "x" * 50,
    ]


@pytest.mark.parametrize(
    ("paragraph", "chunks"),
    [
        (
            "line one is here\nline two is here\nline three is here",
            ["line one is here\nline two is here", "line three is here"],
        ),
        (
            "Aaaa bbbb cccc dddd. Eeee ffff gggg hhhh iiii jjjj kkkk.",
            ["Aaaa bbbb cccc dddd.", "Eeee ffff gggg hhhh iiii jjjj kkkk."],
        ),
    ],
)
def test_text_prefers_line_breaks_then_sentence_ends_over_spaces(paragraph, chunks):
    assert [r["text"] for r in convert("text", {"text": [paragraph]}, max_chunk_size=40)] == chunks


def test_text_word_longer_than_the_limit_is_cut_as_a_last_resort():
    assert [r["text"] for r in convert("text", {"text": ["x" * 50]}, max_chunk_size=20)] == [
        "x" * 20,
        "x" * 20,
        "x" * 10,
    ]


def test_text_rows_map_back_and_empty_text_is_rejected():
    batch = {"text": [sentences(10), "", None, "Tiny."]}
    records = convert("text", batch, max_chunk_size=200)
    assert sorted({r["row"] for r in records}) == [0, 1, 2, 3]
    assert [reason("text", r) for r in records if r["row"] in (1, 2)] == [
        "empty text",
        "empty text",
    ]
    assert [r["text"] for r in records if r["row"] == 3] == ["Tiny."]
    assert all(reason("text", r) is None for r in records if r["row"] in (0, 3))


def test_text_without_spaces_is_cut_into_exact_pieces():
    """Chinese has no spaces: the pieces must still concatenate to the original."""
    text = "天空是蓝色的。" * 60
    chunks = [r["text"] for r in convert("text", {"text": [text]}, max_chunk_size=100)]
    assert all(len(c) <= 100 for c in chunks)
    assert "".join(chunks) == text


_word = st.text(alphabet="abcxyz가中", min_size=1, max_size=8)
_paragraph = st.lists(
    st.tuples(_word, st.sampled_from([" ", " ", "\n"])), min_size=1, max_size=60
).map(lambda ws: "".join(w + s for w, s in ws).strip())
_document = st.lists(_paragraph, min_size=1, max_size=8).map("\n\n".join)


@settings(max_examples=200, deadline=None)
@given(text=_document, size=st.integers(min_value=20, max_value=300))
def test_text_chunks_respect_size_and_keep_every_word(text, size):
    chunks = [r["text"] for r in convert("text", {"text": [text]}, max_chunk_size=size)]
    assert all(0 < len(c) <= size for c in chunks)
    assert " ".join(chunks).split() == text.split()


# ---------------------------------------------------------------- Korean and Chinese

KO = "안녕하세요. 오늘 날씨가 정말 좋네요!"
KO_NFD = unicodedata.normalize("NFD", "한국어 자모")  # decomposed jamo must not be recomposed
ZH = "你好，世界。这是一个测试：“引号”与全角标点！"
RARE = "𠀀𪚥 🙂 ㈜ 〜"  # astral-plane CJK, an emoji, enclosed and wave characters


@pytest.mark.parametrize("name", ["data.jsonl", "data.parquet", "data.csv", "saved"])
@pytest.mark.parametrize("ensure_ascii", [False, True])
def test_cjk_passes_through_alpaca_byte_for_byte(tmp_path, name, ensure_ascii):
    rows = [{"instruction": KO, "input": KO_NFD, "output": ZH + RARE}]
    path = tmp_path / name
    if name.endswith(".jsonl"):
        path.write_text(json.dumps(rows[0], ensure_ascii=ensure_ascii) + "\n", "utf-8")
    else:
        write(tmp_path, name, rows)
    [record] = convert("alpaca", read(path))
    values = [t["value"].encode() for t in record["conversations"]]
    assert values == [f"{KO}\n\n{KO_NFD}".encode(), (ZH + RARE).encode()]


def test_cjk_passes_through_every_chat_plugin(tmp_path):
    sharegpt = convert("sharegpt", {"conversations": [conv(("human", KO), ("gpt", ZH))]})
    messages = convert(
        "messages",
        read(
            write(
                tmp_path,
                "m.jsonl",
                [
                    {
                        "messages": [
                            {"role": "user", "content": [{"type": "text", "text": KO_NFD}]},
                            {"role": "assistant", "content": [{"type": "text", "text": RARE}]},
                        ]
                    }
                ],
            )
        ),
    )
    dpo = convert(
        "dpo",
        {
            "chosen": [f"\n\nHuman: {KO}\n\nAssistant: {ZH}"],
            "rejected": [f"\n\nHuman: {KO}\n\nAssistant: {RARE}"],
        },
    )
    oasst = convert(
        "oasst",
        {
            "message_id": ["1", "2"],
            "parent_id": [None, "1"],
            "role": ["prompter", "assistant"],
            "text": [ZH, KO_NFD],
        },
    )
    assert [t["value"].encode() for t in sharegpt[0]["conversations"]] == [KO.encode(), ZH.encode()]
    assert [t["value"].encode() for t in messages[0]["conversations"]] == [
        KO_NFD.encode(),
        RARE.encode(),
    ]
    assert (
        dpo[0]["conversations"][0]["value"].encode(),
        dpo[0]["chosen"].encode(),
        dpo[0]["rejected"].encode(),
    ) == (KO.encode(), ZH.encode(), RARE.encode())
    assert [t["value"].encode() for t in oasst[0]["conversations"]] == [
        ZH.encode(),
        KO_NFD.encode(),
    ]


def test_cjk_text_chunks_keep_every_character():
    text = f"{KO}\n\n{ZH}\n\n{KO_NFD} {RARE}"
    [record] = convert("text", {"text": [text]})
    assert record["text"].encode() == text.encode()


# ---------------------------------------------------------------- hub layout (offline)


@pytest.fixture
def hub_folder(tmp_path) -> Path:
    folder = tmp_path / "org_dataset"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", [{"text": "alpha"}, {"text": "beta"}])
    write_jsonl(folder / "test.jsonl", [{"text": "held out"}])
    write_jsonl(folder / "extra.jsonl", [{"text": "extra"}])
    return folder


def test_read_hub_local_folder(hub_folder):
    upstream = read_hub(str(hub_folder), None, "train", None)
    assert upstream.table.column("text").to_pylist() == ["alpha", "beta"]
    assert upstream.files == [str(hub_folder)]
    assert upstream.where(1) == "row 2"


def test_read_hub_local_folder_other_split(hub_folder):
    assert read_hub(str(hub_folder), None, "test", None).table.to_pydict() == {"text": ["held out"]}


@pytest.mark.parametrize("data_files", ["extra.jsonl", ["extra.jsonl"], {"train": "extra.jsonl"}])
def test_read_hub_with_data_files(hub_folder, data_files):
    upstream = read_hub(str(hub_folder), None, "train", None, data_files=data_files)
    assert upstream.table.to_pydict() == {"text": ["extra"]}


def test_read_hub_missing_split_is_an_input_error(hub_folder):
    with pytest.raises(InputError, match="validation"):
        read_hub(str(hub_folder), None, "validation", None)


def test_read_hub_unknown_dataset_offline_is_an_input_error():
    with pytest.raises(InputError, match="composer-tests/no-such-dataset"):
        read_hub("composer-tests/no-such-dataset", None, "train", None)


@pytest.fixture
def configs_folder(tmp_path) -> Path:
    folder = tmp_path / "with_configs"
    (folder / "a").mkdir(parents=True)
    (folder / "b").mkdir()
    write_jsonl(folder / "a" / "train.jsonl", [{"text": "from a"}])
    write_jsonl(folder / "b" / "part-0.jsonl", [{"text": "from b, part 0"}])
    write_jsonl(folder / "b" / "part-1.jsonl", [{"text": "from b, part 1"}])
    (folder / "README.md").write_text(
        "---\n"
        "configs:\n"
        "- config_name: a\n"
        "  data_files:\n"
        "  - split: train\n"
        "    path: a/train.jsonl\n"
        "- config_name: b\n"
        "  data_files:\n"
        "  - split: train\n"
        "    path: b/*.jsonl\n"
        "---\n"
        "# Two configs\n"
    )
    return folder


@pytest.mark.parametrize(
    ("config", "texts"), [("a", ["from a"]), ("b", ["from b, part 0", "from b, part 1"])]
)
def test_read_hub_config_picks_its_data_files(configs_folder, config, texts):
    upstream = read_hub(str(configs_folder), config, "train", None)
    assert sorted(upstream.table.column("text").to_pylist()) == texts


def test_read_hub_without_config_when_several_exist_is_an_input_error(configs_folder):
    with pytest.raises(InputError, match=r"(?s)Config name is missing.*'a', 'b'"):
        read_hub(str(configs_folder), None, "train", None)


def test_read_hub_unknown_config_is_an_input_error(configs_folder):
    with pytest.raises(InputError, match="config=c"):
        read_hub(str(configs_folder), "c", "train", None)


def test_read_hub_default_config(configs_folder):
    readme = configs_folder / "README.md"
    readme.write_text(
        readme.read_text().replace("- config_name: b\n", "- config_name: b\n  default: true\n")
    )
    assert read_hub(str(configs_folder), None, "train", None).table.num_rows == 2


def test_read_hub_mixed_content_types_reach_the_plugin_decoded(tmp_path):
    folder = tmp_path / "chat"
    folder.mkdir()
    write_jsonl(
        folder / "train.jsonl",
        [
            {
                "messages": [
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Yo"},
                ]
            },
            {
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
                    {"role": "assistant", "content": "Yo"},
                ]
            },
        ],
    )
    upstream = read_hub(str(folder), None, "train", None)
    records = convert("messages", upstream.batch(0, upstream.table.num_rows))
    assert [r["conversations"] for r in records] == [conv(("human", "Hi"), ("gpt", "Yo"))] * 2
