"""Records in the untemplated shapes trainers read as they are: one row per conversation.

- `messages`: SFT conversations as `messages: [{role, content}]` (roles system, user,
  assistant, tool), as TRL's conversational type, axolotl's `chat_template` and
  LLaMA-Factory's sharegpt formatting (with role/content tags) read them;
- `alpaca`: single-turn SFT items as `instruction`, `input` (empty), `output` and `system`
  (a multi-turn conversation has no Alpaca shape and is left out);
- `pairs`: preference pairs once each, `prompt` (messages ending with the user's),
  `chosen` and `rejected` as lists of one assistant message (TRL's conversational
  preference type, axolotl's `chat_template.default`), and the same two answers as single
  messages in `chosen_message`/`rejected_message` (LLaMA-Factory's ranking entries).

The system prompt is the manifest's policy drawn under the name "messages", the same for a
record in all three shapes. Built column-wise in Arrow and numpy: no per-turn Python.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from composer.system_prompt import SystemPromptChooser

MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
MESSAGES = pa.list_(MESSAGE)
SHAREGPT_ROLES = ("system", "human", "gpt", "function_call", "observation")
MESSAGE_ROLES = ("system", "user", "assistant", "assistant", "tool")
MESSAGE_ROLE_OF = dict(zip(SHAREGPT_ROLES, MESSAGE_ROLES))
SHAPE_NAME = "messages"  # the system prompt draws' key, as a format's name is for a format
SCHEMAS = {
    "messages": pa.schema(
        [
            ("id", pa.string()),
            ("source", pa.string()),
            ("split", pa.string()),
            ("messages", MESSAGES),
        ]
    ),
    "alpaca": pa.schema(
        [
            ("id", pa.string()),
            ("source", pa.string()),
            ("split", pa.string()),
            ("instruction", pa.string()),
            ("input", pa.string()),
            ("output", pa.string()),
            ("system", pa.string()),
        ]
    ),
    "pairs": pa.schema(
        [
            ("id", pa.string()),
            ("source", pa.string()),
            ("split", pa.string()),
            ("prompt", MESSAGES),
            ("chosen", MESSAGES),
            ("rejected", MESSAGES),
            ("chosen_message", MESSAGE),
            ("rejected_message", MESSAGE),
        ]
    ),
}
# Which shapes each record kind gives, and the folder each shape is written to.
SHAPES_OF = {"sft": ("messages", "alpaca"), "dpo": ("pairs",), "text": ()}
FOLDER = {"messages": "sft/messages", "alpaca": "sft/alpaca", "pairs": "dpo/pairs"}


def _turns(conversations: pa.ListArray) -> tuple[np.ndarray, np.ndarray, pa.Array, np.ndarray]:
    """Offsets, lengths, contents and message-role indices of every turn."""
    if isinstance(conversations, pa.ChunkedArray):
        conversations = conversations.combine_chunks()
    offsets = conversations.offsets.to_numpy() - conversations.offsets[0].as_py()
    flat = conversations.flatten()
    roles = pc.index_in(flat.field("from"), value_set=pa.array(SHAREGPT_ROLES)).to_numpy(
        zero_copy_only=False
    )
    return offsets, np.diff(offsets), flat.field("value"), roles


def own_systems(conversations: pa.ListArray) -> list[str | None]:
    """Each conversation's own system prompt (its first turn's, when that is a system turn)."""
    offsets, lengths, values, roles = _turns(conversations)
    starts = offsets[:-1]
    own = (lengths > 0) & (roles[np.minimum(starts, max(len(roles) - 1, 0))] == 0)
    firsts = values.take(pa.array(starts[own])).to_pylist() if own.any() else []
    out: list[str | None] = [None] * len(own)
    for i, value in zip(np.flatnonzero(own), firsts):
        out[i] = value
    return out


def messages_column(conversations: pa.ListArray, systems: list[str | None]) -> pa.ListArray:
    """The conversations as role/content messages, each led by its chosen system prompt
    (`systems[i]`, None for none) in place of its own."""
    offsets, lengths, values, roles = _turns(conversations)
    n = len(lengths)
    starts = offsets[:-1]
    own = (lengths > 0) & (roles[np.minimum(starts, max(len(roles) - 1, 0))] == 0)
    keep = np.ones(len(roles), dtype=bool)
    keep[starts[own]] = False
    has_system = np.array([s is not None for s in systems], dtype=bool)
    counts = lengths - own + has_system
    new_offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    record = np.repeat(np.arange(n), lengths)[keep]
    kept = np.flatnonzero(keep)
    where = new_offsets[record] + has_system[record] + (kept - offsets[record] - own[record])
    order = np.empty(int(new_offsets[-1]), dtype=np.int64)
    order[where] = np.arange(len(kept))
    order[new_offsets[:-1][has_system]] = len(kept) + np.arange(int(has_system.sum()))
    systems_added = int(has_system.sum())
    all_roles = pa.concat_arrays(
        [
            pa.array(MESSAGE_ROLES).take(pa.array(roles[kept])),
            pa.array(["system"] * systems_added, pa.string()),
        ]
    )
    all_values = pa.concat_arrays(
        [values.take(pa.array(kept)), pa.array([s for s in systems if s is not None], pa.string())]
    )
    take = pa.array(order)
    structs = pa.StructArray.from_arrays(
        [all_roles.take(take), all_values.take(take)], fields=list(MESSAGE)
    )
    return pa.ListArray.from_arrays(pa.array(new_offsets), structs, type=MESSAGES)


def _single(values: pa.Array) -> tuple[pa.ListArray, pa.StructArray]:
    """Each answer as a list of one assistant message, and as that message alone."""
    n = len(values)
    message = pa.StructArray.from_arrays(
        [pa.array(["assistant"] * n, pa.string()), values], fields=list(MESSAGE)
    )
    return pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32)), message), message


def shape_tables(table: pa.Table, kind: str, chooser: SystemPromptChooser) -> dict[str, pa.Table]:
    """A source's records (with their `split`) in each shape its kind gives."""
    shapes = SHAPES_OF[kind]
    if not shapes:
        return {}
    ids = table.column("id").to_pylist()
    conversations = table.column("conversations").combine_chunks()
    systems = chooser.choose(ids, own_systems(conversations))
    messages = messages_column(conversations, systems)
    head = [table.column("id"), table.column("source"), table.column("split")]
    out = {}
    if kind == "dpo":
        chosen, chosen_message = _single(table.column("chosen").combine_chunks())
        rejected, rejected_message = _single(table.column("rejected").combine_chunks())
        columns = [*head, messages, chosen, rejected, chosen_message, rejected_message]
        out["pairs"] = pa.Table.from_arrays(columns, schema=SCHEMAS["pairs"])
        return out
    out["messages"] = pa.Table.from_arrays([*head, messages], schema=SCHEMAS["messages"])
    out["alpaca"] = _alpaca(table, messages, systems)
    return out


def _alpaca(table: pa.Table, messages: pa.ListArray, systems: list[str | None]) -> pa.Table:
    """The single-turn conversations (one user turn, one assistant answer) as Alpaca rows."""
    has_system = np.array([s is not None for s in systems], dtype=bool)
    offsets = messages.offsets.to_numpy()
    lengths = np.diff(offsets) - has_system
    roles = messages.flatten().field("role").to_numpy(zero_copy_only=False)
    single = lengths == 2
    first = offsets[:-1] + has_system
    single[single] &= (roles[first[single]] == "user") & (roles[first[single] + 1] == "assistant")
    rows = np.flatnonzero(single)
    contents = messages.flatten().field("content")
    n = len(rows)
    columns = [
        table.column("id").take(rows),
        table.column("source").take(rows),
        table.column("split").take(rows),
        contents.take(pa.array(first[rows])),
        pa.array([""] * n, pa.string()),
        contents.take(pa.array(first[rows] + 1)),
        pa.array([systems[i] for i in rows], pa.string()),
    ]
    return pa.Table.from_arrays(columns, schema=SCHEMAS["alpaca"])
