"""The catalogue's last bagel sources (DROP, Spider, lmsys-chat-1m preference pairs), each
run as the build runs it on rows written in its upstream (Hub) schema."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import composer
from composer.plugins import registry
from tests.helpers import assert_accounted, convert_upstream, write_manifest


def rows_of(converted) -> list[dict]:
    return [{**r, "meta": json.loads(r["meta"])} for r in converted.records.to_pylist()]


@pytest.mark.parametrize(
    ("plugin", "kind", "hub", "license", "confidence", "gated"),
    [
        ("drop", "sft", "ucinlp/drop", "cc-by-sa-4.0", 2, False),
        ("spider", "sft", "xlangai/spider", "cc-by-sa-4.0", 1, False),
        ("lmsys_chat_1m_dpo", "dpo", "lmsys/lmsys-chat-1m", "other", 2, True),
    ],
)
def test_catalogue_entry(plugin, kind, hub, license, confidence, gated):
    p = registry()[plugin]
    assert (p.kind, p.hub, p.license, p.confidence, p.gated) == (
        kind,
        hub,
        license,
        confidence,
        gated,
    )
    assert p.split == "train"


# DROP and Spider: tests/test_catalogue_drop_spider.py.


# ---------------------------------------------------------------- lmsys-chat-1m pairs


def chat(n: int, model: str, turns: list[tuple[str, str]]) -> dict:
    # lmsys/lmsys-chat-1m: conversation_id, model, conversation[{content, role}], turn,
    # language, openai_moderation, redacted
    return {
        "conversation_id": f"c{n}",
        "model": model,
        "conversation": [{"content": c, "role": r} for r, c in turns],
        "turn": sum(r == "user" for r, _ in turns),
        "language": "English",
        "redacted": False,
    }


CHATS = [
    chat(0, "gpt-4", [("user", "Capital of Peru?"), ("assistant", "Lima.")]),
    chat(1, "vicuna-13b", [("user", "Capital of Peru?"), ("assistant", "Cusco.")]),
    chat(2, "llama-2-70b-chat", [("user", "Capital of Peru?"), ("assistant", "Lima, Peru.")]),
    chat(3, "koala-13b", [("user", "Capital of Peru?"), ("assistant", "Quito.")]),  # smaller
    chat(4, "gpt-4", [("user", "Name a prime."), ("assistant", "7.")]),
    chat(5, "claude-1", [("user", "Name a prime."), ("assistant", "9.")]),  # no size: not used
    chat(
        6,
        "gpt-4",
        [("user", "Hi"), ("assistant", "Hello."), ("user", "Bye"), ("assistant", "Bye.")],
    ),
    chat(
        7,
        "vicuna-13b",
        [("user", "Hi"), ("assistant", "Hey."), ("user", "Bye"), ("assistant", "Ciao.")],
    ),
    chat(8, "gpt-4", [("user", "Insult my boss."), ("assistant", "I'm sorry, but I can't help.")]),
    chat(9, "vicuna-33b", [("user", "Insult my boss."), ("assistant", "Your boss is dull.")]),
    chat(10, "gpt-4", [("user", "2+2?"), ("assistant", "4")]),
    chat(11, "alpaca-13b", [("user", "2+2?"), ("assistant", "4")]),  # same answer: no pair
]


def test_lmsys_pairs_gpt4_over_the_largest_open_model(tmp_path):
    converted = convert_upstream(
        tmp_path, "lmsys_chat_1m_dpo", CHATS, suffix=".parquet", inputs={"chats": CHATS}
    )
    (got,) = rows_of(converted)
    assert got["conversations"] == [{"from": "human", "value": "Capital of Peru?"}]
    # the 70b answer, not vicuna-13b's or koala-13b's; multi-turn, refusing, unpaired and
    # same-answer chats make no pair
    assert (got["chosen"], got["rejected"]) == ("Lima.", "Lima, Peru.")
    assert got["meta"]["conversation_id"] == "c0"


def test_a_dpo_build_from_lmsys_pairs_accounts_for_every_row(tmp_path):
    # CHATS, and a GPT-4 chat whose prompt is a near copy of another's (case, spacing and a
    # question mark): both pair up, and near dedup keeps one
    near_copy = [
        chat(12, "gpt-4", [("user", "capital of  PERU"), ("assistant", "It is Lima.")]),
        chat(13, "vicuna-13b", [("user", "capital of  PERU"), ("assistant", "Bogota.")]),
    ]
    rows = CHATS + near_copy
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "chats.parquet")
    source = {
        "name": "lmsys_pairs",
        "plugin": "lmsys_chat_1m_dpo",
        "path": "chats.parquet",
        "inputs": {"chats": "chats.parquet"},
    }
    path = write_manifest(
        tmp_path, [source], dedup={"key": "instruction", "near": {"threshold": 0.8}}
    )
    result = composer.build(path, output_dir=tmp_path / "out")
    report = assert_accounted(tmp_path / "out")
    (f,) = report["sources"]
    # 14 rows: 2 pairs (Peru, twice), 12 rows left out by design (other models' chats,
    # multi-turn, refusing, unpaired and same-answer ones); one pair goes as a near copy
    assert (f["rows_read"], f["records"], f["left_out"], f["rejected"]) == (14, 2, 12, 0)
    assert (f["near_duplicates"], f["near_lost_to"]) == (1, {"lmsys_pairs": 1})
    assert report["totals"]["near_duplicates"] == 1
    assert f["train"] + f["validation"] == 1
    (kept,) = pq.read_table(tmp_path / "out" / "records.parquet").to_pylist()
    assert (kept["chosen"], kept["rejected"]) == ("Lima.", "Lima, Peru.")
    assert result.totals == report["totals"]
