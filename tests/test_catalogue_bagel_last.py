"""The catalogue's last bagel sources (DROP, Spider, lmsys-chat-1m preference pairs), each
run as the build runs it on rows written in its upstream (Hub) schema."""

from __future__ import annotations

import json

import pytest

from composer.plugins import registry
from tests.helpers import convert_upstream


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


# ---------------------------------------------------------------- DROP

PASSAGE = "The Bears scored 14 points in the first quarter and 7 in the second."


def drop_row(i: int, question: str, spans: list[str]) -> dict:
    # ucinlp/drop: section_id, query_id, passage, question, answers_spans{spans, types}
    return {
        "section_id": "nfl_1",
        "query_id": f"q{i}",
        "passage": PASSAGE,
        "question": question,
        "answers_spans": {"spans": spans, "types": ["span"] * len(spans)},
    }


def test_drop_passage_and_question_in_a_seeded_order_answer_spans_joined(tmp_path):
    rows = [drop_row(i, f"Which team scored in quarter {i}?", ["Bears"]) for i in range(40)]
    rows.append(drop_row(40, "Who scored and who lost?", ["Bears", "Lions"]))
    rows.append(drop_row(41, "How many points in total?", []))  # a number answer: no span
    converted = convert_upstream(tmp_path, "drop", rows, suffix=".parquet")
    assert [r.detail for r in converted.rejections] == ["no answer span"]
    got = rows_of(converted)
    assert len(got) == 41
    system = "You are a helpful assistant who answers as briefly as possible."
    orders = set()
    for r, row in zip(got, rows):
        sys_turn, human, _ = r["conversations"]
        assert sys_turn == {"from": "system", "value": system}
        assert human["value"] in (
            f"{PASSAGE}\n{row['question']}",
            f"{row['question']}\n{PASSAGE}",
        )
        orders.add(human["value"].startswith(PASSAGE))
        assert r["meta"]["query_id"] == row["query_id"]
    assert orders == {True, False}  # both orders, about half each
    assert got[40]["conversations"][2]["value"] == "Bears, Lions"
    (tmp_path / "again").mkdir()
    (tmp_path / "never").mkdir()
    again = rows_of(convert_upstream(tmp_path / "again", "drop", rows, suffix=".parquet"))
    assert again == got  # the coin is seeded
    never = convert_upstream(tmp_path / "never", "drop", rows, options={"question_first": 0.0})
    assert all(r["conversations"][1]["value"].startswith(PASSAGE) for r in rows_of(never))


# ---------------------------------------------------------------- Spider


def test_spider_question_to_sql_as_bagel(tmp_path):
    # xlangai/spider: db_id, query, question, query_toks, query_toks_no_value, question_toks
    rows = [
        {
            "db_id": "department_management",
            "query": "SELECT count(*) FROM head WHERE age > 56",
            "question": "How many heads of the departments are older than 56 ?",
            "query_toks": ["SELECT", "count", "(", "*", ")"],
            "query_toks_no_value": ["select", "count"],
            "question_toks": ["How", "many"],
        },
        {
            "db_id": "x",
            "query": "",
            "question": "Nothing?",
            "query_toks": [],
            "query_toks_no_value": [],
            "question_toks": [],
        },
    ]
    converted = convert_upstream(tmp_path, "spider", rows, suffix=".parquet")
    assert [r.detail for r in converted.rejections] == ["no query"]
    (got,) = rows_of(converted)
    assert got["conversations"] == [
        {
            "from": "human",
            "value": "Write a SQL query for the following:\n"
            "How many heads of the departments are older than 56 ?",
        },
        {"from": "gpt", "value": "SELECT count(*) FROM head WHERE age > 56"},
    ]
    assert got["meta"]["db_id"] == "department_management"


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
