"""DROP and Spider (issue 15's bagel sources), run as the build runs them on rows in each
upstream's own schema."""

from __future__ import annotations

import json

from composer.plugins import get_plugin
from tests.helpers import ROOT, convert_upstream, invoke


def rows_of(converted) -> list[dict]:
    return converted.records.to_pylist()


def values(record: dict) -> list[tuple[str, str]]:
    return [(t["from"], t["value"]) for t in record["conversations"]]


def drop_row(n: int, spans: list[str]) -> dict:
    # ucinlp/drop's schema: answers_spans is {spans: [...], types: [...]}.
    return {
        "section_id": f"nfl_{n}",
        "query_id": f"q{n}",
        "passage": f"Passage {n}: the Bears scored 7, then 3 more.",
        "question": f"Question {n}: how many points did the Bears score?",
        "answers_spans": {"spans": spans, "types": ["number"] * len(spans)},
    }


def test_drop_as_bagel_formats_it(tmp_path):
    rows = [drop_row(i, ["10"]) for i in range(40)] + [drop_row(99, ["Bears", "Lions"])]
    rows.append(drop_row(100, []))
    converted = convert_upstream(tmp_path, "drop", rows, suffix=".parquet")
    got = rows_of(converted)
    assert len(got) == 41
    assert [(r.reason, r.index) for r in converted.rejections] == [("invalid row", 41)]
    system = ("system", "You are a helpful assistant who answers as briefly as possible.")
    orders = set()
    for record, row in zip(got, rows):
        turns = values(record)
        assert turns[0] == system
        p, q = row["passage"], row["question"]
        assert turns[1][1] in (f"{p}\n{q}", f"{q}\n{p}")
        orders.add(turns[1][1].startswith("Passage"))
        assert turns[2] == ("gpt", ", ".join(row["answers_spans"]["spans"]))
    assert orders == {True, False}  # both orders, as bagel's coin flip
    assert values(got[40])[2] == ("gpt", "Bears, Lions")
    again = rows_of(convert_upstream(tmp_path, "drop", rows, suffix=".parquet"))
    assert again == got  # the order is seeded
    other = rows_of(convert_upstream(tmp_path, "drop", rows, suffix=".parquet", seed=7))
    assert [values(r)[1] for r in other] != [values(r)[1] for r in got]


def spider_row(n: int, **extra) -> dict:
    # xlangai/spider's schema.
    return {
        "db_id": "concert_singer",
        "query": f"SELECT count(*) FROM singer WHERE age > {n}",
        "question": f"How many singers are older than {n}?",
        "query_toks": ["SELECT"],
        "query_toks_no_value": ["select"],
        "question_toks": ["How"],
        **extra,
    }


def test_spider_as_bagel_formats_it(tmp_path):
    converted = convert_upstream(tmp_path, "spider", [spider_row(30)], suffix=".parquet")
    (record,) = rows_of(converted)
    assert values(record) == [
        ("human", "Write a SQL query for the following:\nHow many singers are older than 30?"),
        ("gpt", "SELECT count(*) FROM singer WHERE age > 30"),
    ]
    assert json.loads(record["meta"])["db_id"] == "concert_singer"


def test_spider_with_a_schema_column_puts_it_after_the_question(tmp_path):
    schema = "CREATE TABLE singer (singer_id int, name text, age int)"
    rows = [
        spider_row(30, schema=schema),
        spider_row(40, schema=""),
        {**spider_row(1), "query": ""},
    ]
    converted = convert_upstream(tmp_path, "spider", rows)
    with_schema, without = rows_of(converted)
    assert values(with_schema)[0][1] == (
        "Write a SQL query for the following:\nHow many singers are older than 30?\n"
        f"Schema:\n{schema}"
    )
    assert "Schema:" not in values(without)[0][1]
    assert [r.index for r in converted.rejections] == [2]


def test_drop_and_spider_in_the_catalogue_and_bagel_manifest():
    assert (get_plugin("drop").hub, get_plugin("drop").confidence) == ("ucinlp/drop", 2)
    assert (get_plugin("spider").hub, get_plugin("spider").confidence) == ("xlangai/spider", 1)
    text = (ROOT / "manifests" / "bagel.yaml").read_text()
    assert "{name: drop}" in text and "{name: spider}" in text
    result = invoke("validate", str(ROOT / "manifests" / "bagel.yaml"))
    assert result.exit_code == 0, result.output
