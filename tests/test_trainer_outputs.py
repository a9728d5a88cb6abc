"""What a build writes for trainers: the untemplated shapes (messages, Alpaca, pairs), the
LLaMA-Factory and axolotl configs beside them, and formats rendered by a tokenizer's own
chat template, measured in its tokens.

Real builds of sources written here; the configs are checked against the files they name
(the trainers' own loaders run in bench/trainers/run.py, TRL's in test_trainers.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

import composer
from composer.errors import ManifestError
from tests.helpers import chat_tokenizer, read_parquet, write_jsonl, write_manifest

SYSTEM = "Answer briefly."


def sources(folder: Path) -> list[dict]:
    chats = [
        {
            "conversations": [
                {"from": "system", "value": SYSTEM},
                {"from": "human", "value": "Two turns, first."},
                {"from": "gpt", "value": "First answer."},
                {"from": "human", "value": "Second?"},
                {"from": "gpt", "value": "Second answer."},
            ]
        },
        {
            "conversations": [
                {"from": "human", "value": "Weather in Oslo?"},
                {"from": "function_call", "value": '{"name": "weather", "city": "Oslo"}'},
                {"from": "observation", "value": '{"temp": 3}'},
                {"from": "gpt", "value": "3 degrees."},
            ]
        },
    ]
    tasks = [{"instruction": f"Task {i}.", "output": f"Done {i}."} for i in range(6)]
    pairs = [
        {"prompt": f"Pick {i}.", "chosen": f"Good {i}.", "rejected": f"Bad {i}."} for i in range(4)
    ]
    write_jsonl(folder / "chats.jsonl", chats)
    write_jsonl(folder / "tasks.jsonl", tasks)
    write_jsonl(folder / "pairs.jsonl", pairs)
    return [
        {"name": "chats", "plugin": "sharegpt", "path": "chats.jsonl"},
        {"name": "tasks", "plugin": "alpaca", "path": "tasks.jsonl"},
        {"name": "pairs", "plugin": "dpo", "path": "pairs.jsonl"},
    ]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("trainers")
    path = write_manifest(
        folder, sources(folder), formats=["chatml", "vicuna"], split={"validation": 2}
    )
    return composer.build(path, output_dir=folder / "out").output_dir


def both(out: Path, folder: str) -> list[dict]:
    return read_parquet(out / folder / "train.parquet") + read_parquet(
        out / folder / "validation.parquet"
    )


def test_conversations_are_one_row_each_with_openai_roles(built):
    rows = {r["source"] + str(len(r["messages"])): r for r in both(built, "sft/messages")}
    assert len(both(built, "sft/messages")) == 8  # 2 chats + 6 tasks: not one per turn
    two_turns = rows["chats5"]["messages"]
    assert [m["role"] for m in two_turns] == ["system", "user", "assistant", "user", "assistant"]
    assert two_turns[0]["content"] == SYSTEM and two_turns[-1]["content"] == "Second answer."
    tool = rows["chats4"]["messages"]
    assert [m["role"] for m in tool] == ["user", "assistant", "tool", "assistant"]
    assert {r["id"] for r in both(built, "sft/messages")} == {
        r["id"] for r in read_parquet(built / "records.parquet") if r["kind"] == "sft"
    }


def test_alpaca_holds_the_single_turn_items_only(built):
    rows = both(built, "sft/alpaca")
    assert sorted(r["instruction"] for r in rows) == [f"Task {i}." for i in range(6)]
    assert all(r["input"] == "" and r["system"] is None for r in rows)
    assert {r["output"] for r in rows} == {f"Done {i}." for i in range(6)}


def test_pairs_are_once_each_in_trl_and_llama_factory_shapes(built):
    rows = both(built, "dpo/pairs")
    assert len(rows) == 4 == len({r["id"] for r in rows})
    for r in rows:
        n = r["prompt"][-1]["content"].split()[-1].rstrip(".")
        assert [m["role"] for m in r["prompt"]] == ["user"]
        assert r["chosen"] == [{"role": "assistant", "content": f"Good {n}."}]
        assert r["rejected"] == [{"role": "assistant", "content": f"Bad {n}."}]
        assert r["chosen_message"] == r["chosen"][0]
        assert r["rejected_message"] == r["rejected"][0]
    # and once per format in the rendered files, each row with its record's id
    for fmt in ("chatml", "vicuna"):
        rendered = both(built, f"formats/{fmt}/dpo")
        assert sorted(r["id"] for r in rendered) == sorted(r["id"] for r in rows)


def test_system_prompt_policy_applies_to_the_shapes(tmp_path):
    path = write_manifest(
        tmp_path,
        sources(tmp_path),
        system_prompt={"mode": "drop"},
    )
    out = composer.build(path, output_dir=tmp_path / "out").output_dir
    roles = {
        m["role"] for r in read_parquet(out / "sft/messages/train.parquet") for m in r["messages"]
    }
    assert "system" not in roles
    path = write_manifest(
        tmp_path,
        sources(tmp_path),
        "all.yaml",
        system_prompt={"default": "Be kind.", "probability": 1.0},
    )
    out = composer.build(path, output_dir=tmp_path / "all").output_dir
    firsts = [r["messages"][0] for r in read_parquet(out / "sft/messages/train.parquet")]
    assert {(m["role"], m["content"]) for m in firsts} == {
        ("system", SYSTEM),
        ("system", "Be kind."),
    }
    alpaca = read_parquet(out / "sft/alpaca/train.parquet")
    assert {r["system"] for r in alpaca} == {"Be kind."}


def test_llama_factory_dataset_info_names_one_file_per_split(built):
    info = json.loads((built / "dataset_info.json").read_text(encoding="utf-8"))
    assert set(info) == {
        f"{name}_{split}" for name in ("sft", "alpaca", "dpo") for split in ("train", "validation")
    }
    for name, entry in info.items():
        path = built / entry["file_name"]
        assert path.is_file(), name  # a file, never a folder (it would merge the splits)
        assert path.stem == name.rsplit("_", 1)[1]
        columns = set(pq.read_schema(path).names)
        assert set(entry["columns"].values()) <= columns, name
    assert info["sft_train"]["formatting"] == "sharegpt"
    assert info["sft_train"]["tags"] == {
        "role_tag": "role",
        "content_tag": "content",
        "user_tag": "user",
        "assistant_tag": "assistant",
        "observation_tag": "tool",
        "system_tag": "system",
    }
    assert info["dpo_train"]["ranking"] is True
    assert info["dpo_train"]["columns"] == {
        "messages": "prompt",
        "chosen": "chosen_message",
        "rejected": "rejected_message",
    }
    assert info["alpaca_train"]["columns"] == {
        "prompt": "instruction",
        "query": "input",
        "response": "output",
        "system": "system",
    }


def test_axolotl_snippets_name_the_files_and_their_fields(built):
    sft = yaml.safe_load((built / "axolotl" / "sft.yaml").read_text(encoding="utf-8"))
    [train], [validation] = sft["datasets"], sft["test_datasets"]
    assert train["path"] == "sft/messages/train.parquet"
    assert validation["path"] == "sft/messages/validation.parquet"
    assert train["type"] == "chat_template" and train["field_messages"] == "messages"
    dpo = yaml.safe_load((built / "axolotl" / "dpo.yaml").read_text(encoding="utf-8"))
    assert dpo["rl"] == "dpo"
    [entry] = dpo["datasets"]
    assert entry["type"] == "chat_template.default"
    columns = set(pq.read_schema(built / entry["path"]).names)
    assert {entry["field_messages"], entry["field_chosen"], entry["field_rejected"]} <= columns
    alpaca = yaml.safe_load((built / "axolotl" / "alpaca.yaml").read_text(encoding="utf-8"))
    assert alpaca["datasets"][0]["type"] == "alpaca"
    assert {"instruction", "input", "output"} <= set(
        pq.read_schema(built / alpaca["datasets"][0]["path"]).names
    )


# ---------------------------------------------------------------- a model's own chat template


def tokenizer_project(folder: Path, template: str | None = None) -> Path:
    chat_tokenizer(folder / "tok", **({"template": template} if template else {}))
    return write_manifest(
        folder,
        sources(folder),
        formats=["chatml", {"name": "mini", "tokenizer": "tok", "max_seq_len": 12}],
    )


def test_a_format_renders_with_the_tokenizers_chat_template(tmp_path):
    from transformers import AutoTokenizer

    result = composer.build(tokenizer_project(tmp_path), output_dir=tmp_path / "out")
    out = result.output_dir
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "tok")
    rows = read_parquet(out / "formats/mini/sft/train.parquet")
    messages = {r["id"]: r["messages"] for r in read_parquet(out / "sft/messages/train.parquet")}
    for row in rows:
        chat = messages[row["id"]]
        answers = [k for k, m in enumerate(chat) if m["role"] == "assistant"]
        k = answers[row["turn"] - 1]
        expected = tokenizer.apply_chat_template(
            chat[:k], tokenize=False, add_generation_prompt=True
        )
        assert row["prompt"] == expected
        # the answer, less the end token the trainer adds (and ChatML's newline after it)
        assert row["completion"] == chat[k]["content"]
    # measured in its tokens, with the share over max_seq_len, in the report and its page
    tokens = result.report["token_lengths"]["mini"]
    assert tokens["tokenizer"] == "tok" and tokens["max_seq_len"] == 12
    lengths = [
        len(tokenizer(r["prompt"], add_special_tokens=False)["input_ids"])
        + len(tokenizer(r["completion"], add_special_tokens=False)["input_ids"])
        for r in rows
    ]
    assert max(lengths) <= tokens["max"]  # the longest of all, the pairs' rows too
    assert sum(n > 12 for n in lengths) <= tokens["over"]
    sft_rows = sum(
        n for k, n in result.report["outputs"].items() if k.startswith("formats/mini/sft/")
    )
    dpo_rows = sum(
        n for k, n in result.report["outputs"].items() if k.startswith("formats/mini/dpo/")
    )
    assert tokens["rows"] == sft_rows + dpo_rows
    assert 0 < tokens["over"] < tokens["rows"]
    html = (out / "report.html").read_text(encoding="utf-8")
    assert 'id="tokens"' in html and 'data-plot="tokens"' in html


def test_a_changed_chat_template_renders_again(tmp_path):
    """The render cache's key holds the tokenizer files' hash: a new template is no hit."""
    manifest = tokenizer_project(tmp_path)
    first = read_parquet(composer.build(manifest).output_dir / "formats/mini/sft/train.parquet")
    other = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}<|im_end|>{% endfor %}"
    other += "{% if add_generation_prompt %}[assistant] {% endif %}"
    chat_tokenizer(tmp_path / "tok", template=other)
    again = read_parquet(composer.build(manifest).output_dir / "formats/mini/sft/train.parquet")
    assert all(r["prompt"].startswith("<|im_start|>") for r in first)
    assert all(r["prompt"].startswith("[") for r in again)


def test_a_tokenizer_folder_without_a_chat_template_is_a_manifest_error(tmp_path):
    (tmp_path / "tok").mkdir()
    (tmp_path / "tok" / "tokenizer_config.json").write_text("{}", encoding="utf-8")
    path = write_manifest(tmp_path, sources(tmp_path), formats=[{"name": "m", "tokenizer": "tok"}])
    with pytest.raises(ManifestError, match=r"formats\[0\]\.tokenizer: .*no chat_template"):
        composer.build(path)
