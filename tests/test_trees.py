"""Message trees through a real build: every message is a record, a turn inside one
(`linked` in the funnel) or a rejected row with its reason, however the tree is broken."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from tests.helpers import invoke, write_jsonl, write_manifest


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
