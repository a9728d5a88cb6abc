"""Packing (orca-chat): similar single-turn items chained into conversations, with the real
distilled static model and faiss, on small tables of real records."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from composer.manifest import Packing
from composer.packing import pack
from composer.records import SCHEMA, dumps_meta, make_id

# Paraphrases on one topic: the static model puts each topic's questions at cosine >= 0.75
# of each other and below 0.5 of the other topics' (measured).
TOPICS = {
    "volcano": [
        "How do volcanoes erupt?",
        "What makes a volcano erupt?",
        "Why do volcanoes erupt?",
        "What causes a volcano to erupt?",
    ],
    "photosynthesis": [
        "How does photosynthesis work in plants?",
        "How do plants do photosynthesis?",
        "What is photosynthesis in plants?",
        "Explain how photosynthesis works in green plants.",
    ],
    "sourdough": [
        "How do I bake sourdough bread at home?",
        "What is the best way to bake sourdough bread?",
        "How can I make sourdough bread?",
        "Give me a recipe for sourdough bread.",
    ],
    "sorting": [
        "How do I sort a list in Python?",
        "What is the way to sort a Python list?",
        "How can I sort a list of numbers in Python?",
        "Sorting a list in Python: how?",
    ],
}
SPEC = Packing(min_similarity=0.6)


def record(
    turns: list[tuple[str, str]], kind: str = "sft", meta: dict | None = None, **fields
) -> dict:
    conversations = [{"from": role, "value": value} for role, value in turns]
    return {
        "id": make_id(json.dumps([kind, turns, fields])),
        "source": "s",
        "kind": kind,
        "conversations": conversations or None,
        "chosen": None,
        "rejected": None,
        "text": None,
        "meta": dumps_meta(meta),
        **fields,
    }


def sft(question: str, answer: str | None = None, system: str | None = None, **meta) -> dict:
    turns = [("system", system)] if system else []
    turns += [("human", question), ("gpt", answer or f"An answer to: {question}")]
    return record(turns, meta=meta)


def topic_rows(**meta) -> list[dict]:
    return [sft(q, topic=t, **meta) for t, questions in TOPICS.items() for q in questions]


def table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def packed_from(row: dict) -> list[str]:
    """The ids a record stands for: its packed_from, else its own id."""
    return json.loads(row["meta"]).get("packed_from", [row["id"]])


def exchanges(row: dict) -> list[tuple[str, str]]:
    turns = [t for t in row["conversations"] if t["from"] != "system"]
    return [(h["value"], g["value"]) for h, g in zip(turns[::2], turns[1::2])]


def assert_accounted(rows: list[dict], result) -> list[dict]:
    """Every input item in exactly one output record; returns the output rows."""
    out = result.table.to_pylist()
    covered = [i for row in out for i in packed_from(row)]
    assert sorted(covered) == sorted(r["id"] for r in rows)
    assert result.table.num_rows == len(rows) - result.packed
    assert result.table.schema == SCHEMA
    return out


def test_paraphrases_on_one_topic_make_one_conversation():
    rows = topic_rows()
    topic_of = {r["id"]: json.loads(r["meta"])["topic"] for r in rows}
    question_of = {r["id"]: r["conversations"][0]["value"] for r in rows}
    result = pack(table(rows), SPEC, 42, "s")
    out = assert_accounted(rows, result)
    assert (result.conversations, result.packed) == (4, 12)
    assert len(out) == 4
    for row in out:
        ids = packed_from(row)
        assert len({topic_of[i] for i in ids}) == 1  # no unrelated question joined
        assert row["id"] == ids[0]  # the first item's id
        assert json.loads(row["meta"])["topic"] == topic_of[ids[0]]  # and its meta
        # The turns are the items' exchanges, in packed_from's order.
        assert exchanges(row) == [(question_of[i], f"An answer to: {question_of[i]}") for i in ids]
    assert sorted(topic_of[packed_from(r)[0]] for r in out) == sorted(TOPICS)


def test_unrelated_questions_are_not_packed():
    rows = [
        sft("What is the capital of Australia?"),
        sft("How do I change a flat tyre on a bicycle?"),
        sft("Who wrote the novel Moby-Dick?"),
        sft("What is the boiling point of water at sea level?"),
    ]
    result = pack(table(rows), SPEC, 42, "s")
    assert (result.packed, result.conversations) == (0, 0)
    assert result.table.to_pylist() == rows


def test_max_turns_caps_the_exchanges():
    rows = topic_rows()
    result = pack(table(rows), SPEC.model_copy(update={"max_turns": 2}), 42, "s")
    out = assert_accounted(rows, result)
    # Four topics of four questions, all close: each makes two conversations of two.
    assert all(len(exchanges(r)) == 2 for r in out)
    assert (result.conversations, result.packed) == (8, 8)


def test_max_chars_caps_the_characters():
    answer = "x" * 300
    rows = [sft(q, answer) for q in TOPICS["volcano"] + TOPICS["sorting"]]
    budget = 2 * (300 + 45)  # two exchanges fit, never three
    result = pack(table(rows), SPEC.model_copy(update={"max_chars": budget}), 7, "s")
    out = assert_accounted(rows, result)
    assert result.conversations == 4
    for row in out:
        assert sum(len(t["value"]) for t in row["conversations"]) <= budget
        assert len(exchanges(row)) == 2


def test_an_item_over_the_budget_stays_alone():
    long = sft(TOPICS["volcano"][0], "y" * 500)
    rows = [long, *(sft(q) for q in TOPICS["volcano"][1:])]
    result = pack(table(rows), SPEC.model_copy(update={"max_chars": 400}), 42, "s")
    out = assert_accounted(rows, result)
    assert long in out  # untouched
    assert result.conversations == 1 and result.packed == 2


def test_system_prompts_rule():
    first, second = "You are a geologist.", "Answer like a pirate."
    rows = [sft(q, system=first, group="first") for q in TOPICS["volcano"][:2]]
    rows += [sft(q, system=second, group="second") for q in TOPICS["volcano"][2:]]
    rows += [sft(q, group="none") for q in TOPICS["sorting"][:2]]
    rows += [sft(q, system=first, group="first") for q in TOPICS["sorting"][2:]]
    group_of = {r["id"]: json.loads(r["meta"])["group"] for r in rows}
    system_of = {"first": first, "second": second}
    for seed in range(5):
        result = pack(table(rows), SPEC, seed, "s")
        out = assert_accounted(rows, result)
        assert result.conversations == 4
        for row in out:
            ids = packed_from(row)
            (group,) = {group_of[i] for i in ids}  # one system prompt (or none) per conversation
            systems = [t["value"] for t in row["conversations"] if t["from"] == "system"]
            assert systems == ([system_of[group]] if group in system_of else [])
            assert row["conversations"][0]["from"] == ("system" if systems else "human")


def test_other_items_pass_through_unchanged():
    volcano = TOPICS["volcano"]
    others = [
        record([("human", volcano[0]), ("gpt", "Magma."), ("human", volcano[1]), ("gpt", "Gas.")]),
        record([("human", volcano[1]), ("function_call", '{"name": "erupt"}')]),
        record([("human", volcano[2]), ("gpt", "Pressure.")], kind="dpo"),  # kind rules
        record([("human", volcano[3])], kind="dpo", chosen="Heat.", rejected="Ice."),
        record([], kind="text", text=volcano[0]),
    ]
    rows = [sft(q) for q in volcano] + others
    result = pack(table(rows), SPEC, 42, "s")
    out = assert_accounted(rows, result)
    assert result.conversations == 1 and result.packed == 3
    assert out[1:] == others  # unchanged and in their order, after the packed conversation


def test_output_keeps_the_input_order():
    rows = [sft(q) for q in TOPICS["volcano"][:2]]
    rows.insert(1, sft("Who wrote the novel Moby-Dick?"))
    rows.append(sft("What is the capital of Australia?"))
    rows.append(sft(TOPICS["sorting"][0]))
    rows.append(sft(TOPICS["sorting"][1]))
    for seed in range(6):
        out = pack(table(rows), SPEC, seed, "s").table.to_pylist()
        # Each packed conversation sits where its first item was; the rest keep their order.
        index = {r["id"]: i for i, r in enumerate(rows)}
        positions = [index[r["id"]] for r in out]
        assert positions == sorted(positions)
        assert [r for r in out if r in rows] == [rows[1], rows[3]]


def test_same_seed_same_packing_and_seeds_differ():
    rows = topic_rows()
    first = pack(table(rows), SPEC, 42, "s").table
    assert pack(table(rows), SPEC, 42, "s").table.equals(first)
    assert any(not pack(table(rows), SPEC, seed, "s").table.equals(first) for seed in range(10))
    # The source's name is part of the draw too.
    assert any(not pack(table(rows), SPEC, 42, f"s{i}").table.equals(first) for i in range(10))


def test_similarity_one_packs_nothing():
    rows = topic_rows()
    result = pack(table(rows), SPEC.model_copy(update={"min_similarity": 1.0}), 42, "s")
    assert (result.packed, result.conversations) == (0, 0)
    assert result.table.equals(table(rows))


@pytest.mark.parametrize("rows", [[], [sft("How do volcanoes erupt?")]])
def test_too_few_items(rows):
    result = pack(table(rows), SPEC, 42, "s")
    assert result.table.equals(table(rows)) and result.packed == 0


def test_large_sets_use_a_seeded_inverted_index():
    """Above 20,000 items the index is approximate (IVF): it still finds near twins, and
    builds the same way twice (packing must be reproducible)."""
    from composer.packing import _index

    rng = np.random.default_rng(0)
    base = rng.standard_normal((10_000, 64)).astype(np.float32)
    twins = base + 0.05 * rng.standard_normal(base.shape).astype(np.float32)
    vectors = np.concatenate([base, twins])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    first, again = _index(vectors), _index(vectors)
    assert first.ntotal == 20_000 and hasattr(first, "nprobe")  # not the flat index
    _, found = first.search(vectors[:2000], 2)
    assert (found == (np.arange(2000) + 10_000)[:, None]).any(1).mean() > 0.95
    assert np.array_equal(found, again.search(vectors[:2000], 2)[1])


def test_a_build_packs_a_source_and_counts_it_in_the_funnel(tmp_path):
    """`packing:` on a source, through the real build: the funnel's `packed` and the
    rendered conversations (one row per assistant turn of a packed conversation)."""
    import composer
    from tests.helpers import read_parquet, read_rendered, write_jsonl, write_manifest

    questions = [q for qs in TOPICS.values() for q in qs]
    rows = [{"instruction": q, "output": f"An answer to: {q}"} for q in questions]
    write_jsonl(tmp_path / "qa.jsonl", rows)
    source = {"name": "qa", "plugin": "alpaca", "path": "qa.jsonl"}
    path = write_manifest(tmp_path, [{**source, "packing": {"min_similarity": 0.6}}])
    result = composer.build(path, output_dir=tmp_path / "out")
    funnel = result.report["sources"][0]
    records = read_parquet(tmp_path / "out" / "records.parquet")
    assert funnel["packed"] == len(questions) - len(records) > 0
    assert funnel["sampled"] == len(records)
    merged = [json.loads(r["meta"])["packed_from"] for r in records if "packed_from" in r["meta"]]
    assert sorted(i for ids in merged for i in ids) == sorted(
        {make_id(q) for q in questions}
        - {r["id"] for r in records if "packed_from" not in r["meta"]}
    )
    sft_rows = read_rendered(tmp_path / "out", "sft")
    assert len(sft_rows) == len(questions)  # every answer is still an output row
    # report.md's funnel shows the packed count, between contaminated and sampled.
    header, row = funnel_table(tmp_path / "out" / "report.md", "qa")
    assert header[header.index("contaminated") + 1 : header.index("sampled")] == ["packed"]
    assert row[header.index("packed")] == f"{funnel['packed']:,}"

    unpacked = composer.build(write_manifest(tmp_path, [source], "plain.yaml"), tmp_path / "o2")
    assert unpacked.report["sources"][0]["packed"] == 0
    assert "packed" not in funnel_table(tmp_path / "o2" / "report.md", "qa")[0]


def funnel_table(report_md, source: str) -> tuple[list[str], list[str]]:
    """report.md's funnel table: its header and `source`'s row, as cells."""
    lines = report_md.read_text(encoding="utf-8").splitlines()
    cells = [[c.strip() for c in x.strip("|").split("|")] for x in lines if x.startswith("|")]
    header = next(c for c in cells if c[:2] == ["source", "kind"])
    return header, next(c for c in cells if c[0] == source and len(c) == len(header))
