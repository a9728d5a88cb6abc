"""Message trees through a real build: every message is a record, a turn inside one
(`linked` in the funnel) or a rejected row with its reason, however the tree is broken."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from tests.helpers import assert_accounted, invoke, write_jsonl, write_manifest


def message(id, parent, role, text, rank=None, deleted=False):
    return {
        "message_id": id,
        "parent_id": parent,
        "role": role,
        "text": text,
        "rank": rank,
        "deleted": deleted,
    }


ROWS = [
    message("a1", "q", "assistant", "A worse answer.", rank=1),
    message("q", None, "prompter", "How do I boil an egg?"),
    message("a2", "q", "assistant", "Simmer it for nine minutes.", rank=0),
    message("f", "a2", "prompter", "And soft-boiled?"),
    message("a3", "f", "assistant", "Six minutes."),
    message("loop", "loop2", "prompter", "In a loop."),
    message("loop2", "loop", "assistant", "Also in it."),
    message("self", "self", "prompter", "My own parent."),
    message("orphan", "missing", "assistant", "Nobody's child."),
    message("gone", "q", "assistant", "Deleted.", deleted=True),
    message("q2", None, "prompter", "Never answered."),
]


def test_a_broken_openassistant_tree_accounts_for_every_message(tmp_path):
    write_jsonl(tmp_path / "oasst.jsonl", ROWS)
    manifest = write_manifest(tmp_path, [{"name": "oasst", "path": "oasst.jsonl"}])
    result = invoke("build", str(manifest), "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    (source,) = report["sources"]
    assert source["rows_read"] == len(ROWS)
    assert source["rejected"] + source["linked"] + source["records"] == source["rows_read"]
    assert (source["linked"], source["records"]) == (3, 2)  # q, a2, f inside; a1 and a3 end
    assert source["rejected_by_reason"] == {
        "a cycle of parent ids": 2,
        "deleted": 1,
        "its own parent": 1,
        "orphan": 1,
        "unanswered": 1,
    }
    rejected = [json.loads(line) for line in (tmp_path / "out" / "rejected.jsonl").open()]
    assert len(rejected) == source["rejected"]
    assert "linked" in (tmp_path / "out" / "report.md").read_text()
    # dedup by instruction keeps the best-ranked path, though the worse one is first in the file.
    kept = pq.read_table(tmp_path / "out" / "records.parquet").to_pylist()
    assert len(kept) == 1 and source["duplicates"] == 1
    assert [t["value"] for t in kept[0]["conversations"]][:2] == [
        "How do I boil an egg?",
        "Simmer it for nine minutes.",
    ]


# ---------------------------------------------------------------- the walker itself


def test_every_broken_shape_is_a_problem_with_its_reason():
    from composer.trees import build_forest

    ids = ["r", "a", "dup", "dup", "b", "x", "o", "c1", "c2", "u", None]
    parents = ["", "r", "r", "r", "dup", "x", "gone", "c2", "c1", "c1", "r"]
    forest = build_forest(ids, parents, rejected={1: "deleted"})
    assert forest.problem == [
        None,
        "deleted",
        "duplicate id: 'dup' is on 2 rows",
        "duplicate id: 'dup' is on 2 rows",
        "ambiguous parent: id 'dup' is on 2 rows",
        "its own parent",
        "orphan: parent 'gone' is not in the data",
        "a cycle of parent ids",
        "a cycle of parent ids",
        "under a rejected row: a cycle of parent ids",
        "missing id",
    ]
    assert forest.children[0] == []  # the rejected ones hang under no one
    started = build_forest(ids, parents, orphans="start")
    assert started.problem[6] is None and started.depth[6] == 0


def test_a_chain_past_max_depth_is_rejected_from_there_down_without_recursion():
    from composer.trees import build_forest

    n = 20_000  # far past Python's recursion limit: the walk is iterative
    ids = list(range(n))
    parents = [None, *range(n - 1)]
    forest = build_forest(ids, parents, max_depth=n)
    assert forest.depth[-1] == n - 1 and forest.problem[-1] is None
    assert forest.path(n - 1) == ids
    short = build_forest(ids[:6], parents[:6], max_depth=3)
    assert short.problem == [None] * 4 + [
        "too deep: deeper than max_depth 3",
        "under a rejected row: too deep: deeper than max_depth 3",
    ]


# ---------------------------------------------------------------- H2O chains in a build


def test_a_broken_h2o_chain_accounts_for_every_row_in_a_build(tmp_path):
    def row(id, parent, n):
        return {"id": id, "parent_id": parent, "instruction": f"Q{n}?", "output": f"A{n}."}

    rows = [
        row("a", None, 1),
        row("b", "a", 2),
        row("c", "b", 3),
        row("d", "nowhere", 4),  # an orphan
        row("e", "f", 5),  # e <-> f
        row("f", "e", 6),
        row("g", "e", 7),  # hangs below the cycle
        row("h", None, 8),
        row("h", None, 9),  # a duplicated id
    ]
    write_jsonl(tmp_path / "h2o.jsonl", rows)
    source = {"name": "h2o", "plugin": "h2o_sft", "path": "h2o.jsonl"}
    manifest = write_manifest(tmp_path, [source])
    result = invoke("build", str(manifest), "-o", str(tmp_path / "out"), "--json", "-q")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    (funnel,) = json.loads((tmp_path / "out" / "report.json").read_text())["sources"]
    assert funnel["rows_read"] == len(rows)
    assert (funnel["records"], funnel["linked"], funnel["rejected"]) == (1, 2, 6)
    assert funnel["rejected"] + funnel["linked"] + funnel["records"] == funnel["rows_read"]
    assert funnel["rejected_by_reason"] == {
        "a cycle of parent ids": 2,
        "duplicate id": 2,
        "orphan": 1,
        "under a rejected row": 1,
    }
    assert summary["totals"]["rejected"] == 6
    rejected = [json.loads(line) for line in (tmp_path / "out" / "rejected.jsonl").open()]
    assert sorted((r["index"], r["reason"]) for r in rejected) == [
        (3, "orphan"),
        (4, "a cycle of parent ids"),
        (5, "a cycle of parent ids"),
        (6, "under a rejected row"),
        (7, "duplicate id"),
        (8, "duplicate id"),
    ]
    (kept,) = pq.read_table(tmp_path / "out" / "records.parquet").to_pylist()
    assert [t["value"] for t in kept["conversations"]] == ["Q1?", "A1.", "Q2?", "A2.", "Q3?", "A3."]


def test_an_openassistant_loop_through_a_duplicated_id_ends_with_every_message_rejected(tmp_path):
    # Issue 14's shape: q's id is on two rows, one of them under its own reply, so following
    # ids from a leads back to a (q -> a -> q -> ...): walked naively, paths grow forever.
    rows = [
        message("q", None, "prompter", "Start here."),
        message("a", "q", "assistant", "A reply."),
        message("q", "a", "prompter", "The same id again."),
        message("b", "a", "prompter", "A follow-up."),
        message("r", None, "prompter", "A healthy tree."),
        message("ra", "r", "assistant", "Its reply."),
    ]
    write_jsonl(tmp_path / "oasst.jsonl", rows)
    manifest = write_manifest(tmp_path, [{"name": "oasst", "path": "oasst.jsonl"}])
    result = invoke("build", str(manifest), "-o", str(tmp_path / "out"), "-q")
    assert result.exit_code == 0, result.output
    (source,) = json.loads((tmp_path / "out" / "report.json").read_text())["sources"]
    assert (source["rows_read"], source["records"], source["linked"]) == (6, 1, 1)
    assert source["rejected_by_reason"] == {
        "duplicate id": 2,
        "ambiguous parent": 1,
        "under a rejected row": 1,
    }


def test_rows_a_plugin_leaves_out_by_design_are_counted(tmp_path):
    """lmsys_chat_1m takes GPT-4 chats without refusals; the other rows are `left_out`."""

    def chat(model, answer):
        turns = [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": answer}]
        return {"conversation_id": model + answer, "model": model, "conversation": turns}

    rows = [
        chat("gpt-4", "Hello! How can I help?"),
        chat("vicuna-13b", "Hey."),
        chat("gpt-4", "I'm sorry, but as an AI language model I cannot do that."),
        {"conversation_id": "x", "model": "gpt-4", "conversation": [{"role": "user"}]},
    ]
    write_jsonl(tmp_path / "lmsys.jsonl", rows)
    manifest = write_manifest(tmp_path, [{"name": "lmsys_chat_1m", "path": "lmsys.jsonl"}])
    result = invoke("build", str(manifest), "-o", str(tmp_path / "out"), "--json")
    assert result.exit_code == 0, result.output
    report = assert_accounted(tmp_path / "out")
    (source,) = report["sources"]
    # The chat with no answer is rejected; the other model's and the refusal are left out.
    assert (source["rows_read"], source["records"], source["rejected"]) == (4, 1, 1)
    assert source["left_out"] == 2
    assert report["totals"]["left_out"] == 2
    assert "left_out" in (tmp_path / "out" / "report.md").read_text()
