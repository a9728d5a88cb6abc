"""The one record type: an Arrow schema shared by every stage after conversion.

A plugin's `convert` returns plain Python columns; `record_problem` checks each row against
the rules in DESIGN.md and says why a row is rejected, so that no row is dropped silently.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

KINDS = ("sft", "dpo", "text")
TURN = pa.struct([("from", pa.string()), ("value", pa.string())])
SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("source", pa.string()),
        ("kind", pa.string()),
        ("conversations", pa.list_(TURN)),
        ("chosen", pa.string()),
        ("rejected", pa.string()),
        ("text", pa.string()),
        ("meta", pa.string()),
    ]
)

# Roles on the asking side and on the answering side of a conversation.
HUMAN_SIDE = ("human", "observation")
GPT_SIDE = ("gpt", "function_call")
ROLES = ("system", *HUMAN_SIDE, *GPT_SIDE)


def conversation_problem(turns: Any, kind: str) -> tuple[str, str] | None:
    """Why `turns` is not a valid conversation for `kind`, as (reason, detail), or None.

    `reason` is a short stable category for the report's counts; `detail` says where.
    """
    if not isinstance(turns, list) or not turns:
        return "no turns", "the conversation is empty"
    start = 0
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict) or not isinstance(turn.get("from"), str):
            return "malformed turn", f"turn {i} has no 'from' role"
        role, value = turn["from"], turn.get("value")
        if role not in ROLES:
            return "unknown role", f"turn {i} has role {role!r}; expected one of {', '.join(ROLES)}"
        if value is None:
            return "missing value", f"turn {i} ({role}) has no value (a missing or null field)"
        if not isinstance(value, str):
            names = {bool: "true/false", list: "a list", dict: "an object"}
            what = names.get(type(value), type(value).__name__)
            return "non-text turn", f"turn {i} ({role}) is {what}, not text"
        if not value.strip():
            return "empty turn", f"turn {i} ({role}) has an empty value"
        if role == "system":
            if i != 0:
                return "wrong role order", f"turn {i} is a system turn; only turn 0 may be"
            start = 1
            continue
        expected = HUMAN_SIDE if (i - start) % 2 == 0 else GPT_SIDE
        if role not in expected:
            want = "human" if expected is HUMAN_SIDE else "gpt"
            return "wrong role order", f"turn {i} should be {want}, got {role}"
    if len(turns) == start:
        return "no human turn", "the conversation has only a system turn"
    last = turns[-1]["from"]
    if kind == "sft" and last not in GPT_SIDE:
        return "no answer", "the conversation ends with a human turn"
    if kind == "dpo" and last not in HUMAN_SIDE:
        return "wrong role order", "a DPO context must end with a human turn"
    return None


def turn_list_problem(turns: Any) -> tuple[str, str] | None:
    """A conversation that is not a list of objects: a plugin rejects it whole (with this
    reason) rather than dropping the odd turn and silently shortening it."""
    if turns is None:
        return None  # no conversation: record validation says so
    if not isinstance(turns, list):
        return "malformed turn", f"the conversation is {type(turns).__name__}, not a list of turns"
    for i, t in enumerate(turns):
        if not isinstance(t, dict):
            return "malformed turn", f"turn {i} is {type(t).__name__}, not an object"
    return None


def same_answer(chosen: Any, rejected: Any) -> bool:
    """Whether two answers are the same text, ignoring case and surrounding space."""
    return (
        isinstance(chosen, str)
        and isinstance(rejected, str)
        and chosen.strip().casefold() == rejected.strip().casefold()
    )


def record_problem(kind: str, conversations: Any, chosen: Any, rejected: Any, text: Any):
    """Why one converted row is not a valid record of `kind`, as (reason, detail), or None."""
    if kind == "text":
        if not isinstance(text, str) or not text.strip():
            return "empty text", "the text is empty"
        return None
    problem = conversation_problem(conversations, kind)
    if problem or kind == "sft":
        return problem
    for name, value in (("chosen", chosen), ("rejected", rejected)):
        if not isinstance(value, str) or not value.strip():
            return f"empty {name}", f"the {name} answer is empty"
    if same_answer(chosen, rejected):
        return "chosen equals rejected", "the chosen and rejected answers are the same text"
    return None


def dumps_meta(meta: dict[str, Any] | None) -> str:
    """Meta as canonical JSON, so that equal metadata gives equal bytes."""
    return json.dumps(meta or {}, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


_NAMESPACE = uuid.NAMESPACE_OID.bytes


def make_id(key: str) -> str:
    """`str(uuid.uuid5(uuid.NAMESPACE_OID, key))`, without building a UUID object (5x faster)."""
    digest = bytearray(hashlib.sha1(_NAMESPACE + key.encode("utf-8")).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def meta_field(table: pa.Table, path: str) -> pa.Array:
    """One field of every record's JSON `meta` (`task`, or nested `scores.helpfulness`), as
    an Arrow array with nulls where a record lacks it. The whole column is parsed at once by
    Arrow's JSON reader, not row by row."""
    import pyarrow.json as pa_json

    if table.num_rows == 0:
        return pa.nulls(0)
    metas = table.column("meta").to_pylist()
    try:
        parsed = pa_json.read_json(pa.BufferReader("\n".join(metas).encode("utf-8")))
    except pa.ArrowInvalid:  # a field with values of mixed types: the slow way
        values = []
        for meta in metas:
            value = json.loads(meta)
            for key in path.split("."):
                value = value.get(key) if isinstance(value, dict) else None
            values.append(value)
        values = [
            v if isinstance(v, str | int | float) and not isinstance(v, bool) else None
            for v in values
        ]
        if any(isinstance(v, str) for v in values):
            return pa.array([None if v is None else str(v) for v in values], pa.string())
        return pa.array(values, pa.float64())
    column: pa.Array | None = None
    for i, key in enumerate(path.split(".")):
        if i == 0:
            column = parsed.column(key).combine_chunks() if key in parsed.column_names else None
        elif (
            column is not None
            and pa.types.is_struct(column.type)
            and (column.type.get_field_index(key) >= 0)
        ):
            column = pc.struct_field(column, key)
        else:
            column = None
        if column is None:
            return pa.nulls(table.num_rows)
    return column
