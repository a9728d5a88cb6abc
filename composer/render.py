"""Render records into training rows: every item in every selected format.

SFT: one row per assistant turn, the earlier turns as context (or only the last turn, with
`render.turns: last`): `prompt` and `completion`, the columns of TRL's prompt-completion
type. DPO: the context as `prompt`, the two answers as `chosen` and `rejected`. Every row
carries its record's `id`. Text records are not templated. Coverage below 1 renders a
seeded share of items in a format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from composer.draws import uniforms
from composer.formats import PromptFormat, messages_for
from composer.records import GPT_SIDE, ROLES
from composer.system_prompt import SystemPromptChooser

SFT_COLUMNS = ("id", "source", "format", "split", "turn", "prompt", "completion")
DPO_COLUMNS = ("id", "source", "format", "split", "prompt", "chosen", "rejected")
TEXT_COLUMNS = ("id", "source", "split", "text")
SCHEMAS = {
    kind: pa.schema([(c, pa.int32() if c == "turn" else pa.string()) for c in columns])
    for kind, columns in (("sft", SFT_COLUMNS), ("dpo", DPO_COLUMNS), ("text", TEXT_COLUMNS))
}


@dataclass
class FormatPlan:
    """One format as a source renders it: the template, its coverage, its system prompts."""

    format: PromptFormat
    coverage: float
    system: SystemPromptChooser


def _messages(turns: list[dict]) -> tuple:
    return messages_for([(t["from"], t["value"]) for t in turns])


def render_source(
    table: pa.Table, kind: str, plans: list[FormatPlan], last_turn_only: bool, seed: int
) -> dict[str, list]:
    """All rendered rows of one source's records (which carry a `split` column), as lists."""
    return render_table(table, kind, plans, last_turn_only, seed).to_pydict()


def render_table(
    table: pa.Table, kind: str, plans: list[FormatPlan], last_turn_only: bool, seed: int
) -> pa.Table:
    """All rendered rows of one source's records, in record order, then format, then turn.

    Records are grouped by their sequence of roles; within a group, a format's rows are its
    skeleton's literals and the records' contents joined column by column (Arrow), which is
    what rendering each row gives (composer.formats). The records a skeleton does not fit
    (contents with spaces at an end, say) are rendered one by one (`_render_rows`)."""
    if kind == "text":
        return table.select(list(TEXT_COLUMNS)).cast(SCHEMAS["text"])
    columns = SFT_COLUMNS if kind == "sft" else DPO_COLUMNS
    conversations = _Conversations(table.column("conversations"))
    ids, own = table.column("id").to_pylist(), conversations.own_system()
    systems = [plan.system.choose(ids, own) for plan in plans]
    system_columns = [pa.array(chosen, pa.string()) for chosen in systems]
    coverage = [uniforms(seed, ids, plan.format.name, "coverage") < plan.coverage for plan in plans]
    chunks: list[pa.Table] = []
    left: list[tuple[int, int]] = []  # (record, plan) rendered one by one
    for pattern, rows in conversations.patterns():
        for p, plan in enumerate(plans):
            rows_p = rows[coverage[p][rows]]
            system = system_columns[p].take(rows_p)
            has = pc.fill_null(pc.greater(pc.utf8_length(system), 0), False).to_numpy(False)
            for with_system in (False, True):
                group = rows_p[has == with_system]
                if len(group):
                    made, rest = _fill_group(
                        table,
                        kind,
                        conversations,
                        pattern,
                        group,
                        p,
                        plan.format,
                        system.filter(pa.array(has == with_system)) if with_system else None,
                        last_turn_only,
                    )
                    chunks += made
                    left += [(int(i), p) for i in rest]
    if left:
        chunks.append(_render_rows(table, kind, plans, systems, own, last_turn_only, left))
    if not chunks:
        return SCHEMAS[kind].empty_table()
    keyed = pa.schema([*SCHEMAS[kind], *(pa.field(k, pa.int64()) for k in KEYS)])
    out = pa.concat_tables([c.select(keyed.names).cast(keyed) for c in chunks])
    order = np.lexsort([out.column(c).to_numpy() for c in reversed(KEYS)])
    return out.take(order).select(list(columns)).cast(SCHEMAS[kind])


KEYS = ("_record", "_plan", "_turn")  # the order rows are written in
ROLE_CODES = "shogf"  # one character a role, in records.ROLES order
_ROLE_OF = dict(zip(ROLE_CODES, ROLES))
# Python's whitespace (what str.strip and Jinja's trim remove), as a regex class.
_SPACE = "".join(f"\\x{{{ord(c):x}}}" for c in map(chr, range(0x110000)) if c.isspace())
_PLAIN = f"(?s)^[^{_SPACE}](.*[^{_SPACE}])?$"


class _Conversations:
    """A batch's conversations as flat Arrow columns: roles, contents, where each starts."""

    def __init__(self, column: pa.ChunkedArray):
        lists = column.combine_chunks()
        offsets = lists.offsets.to_numpy()
        self.starts = offsets[:-1] - offsets[0]
        flat = lists.flatten()
        self.values = pc.struct_field(flat, "value")
        roles = pc.struct_field(flat, "from")
        codes = pc.index_in(roles, pa.array(ROLES))
        chars = pc.take(pa.array([*ROLE_CODES, "?"]), pc.fill_null(codes, len(ROLES)))
        self.pattern = pc.binary_join(
            pa.ListArray.from_arrays(pa.array(offsets - offsets[0], pa.int32()), chars), ""
        )
        self.plain = _plain(self.values)
        self.first_is_system = pc.starts_with(self.pattern, "s").to_numpy(False)

    def own_system(self) -> list[str | None]:
        """Each record's own system prompt (its first turn, when that is a system turn)."""
        rows = np.flatnonzero(self.first_is_system)
        own: list[str | None] = [None] * len(self.starts)
        for i, value in zip(rows, self.content(rows, 0).to_pylist()):
            own[i] = value
        return own

    def patterns(self):
        """(pattern, record indices) for each distinct sequence of roles."""
        encoded = pc.dictionary_encode(self.pattern)
        codes = encoded.indices.to_numpy()
        order = np.argsort(codes, kind="stable")
        bounds = np.cumsum(np.bincount(codes, minlength=len(encoded.dictionary)))
        for d, pattern in enumerate(encoded.dictionary.to_pylist()):
            yield pattern, order[(bounds[d - 1] if d else 0) : bounds[d]]

    def content(self, rows: np.ndarray, position: int) -> pa.Array:
        return pc.take(self.values, pa.array(self.starts[rows] + position))

    def all_plain(self, rows: np.ndarray, positions: range) -> np.ndarray:
        ok = np.ones(len(rows), dtype=bool)
        for position in positions:
            ok &= self.plain[self.starts[rows] + position]
        return ok


def _fill_group(
    table: pa.Table,
    kind: str,
    conversations: _Conversations,
    pattern: str,
    rows: np.ndarray,
    plan_index: int,
    fmt: PromptFormat,
    system: pa.Array | None,
    last_turn_only: bool,
) -> tuple[list[pa.Table], np.ndarray]:
    """One format's rows for records of one pattern (and with or without a system prompt),
    filled into skeletons; and the records that must be rendered one by one."""
    if "?" in pattern or fmt.lead is None:
        return [], rows
    body = 1 if pattern.startswith("s") else 0
    head = ("system",) if system is not None else ()
    if kind == "dpo":
        answers, turns = [len(pattern)], [0]
    else:
        answers = [k for k in range(body, len(pattern)) if _ROLE_OF[pattern[k]] in GPT_SIDE]
        turns = list(range(1, len(answers) + 1))
        if last_turn_only:
            answers, turns = answers[-1:], turns[-1:]
    ok = conversations.all_plain(rows, range(body, max(answers, default=body)))
    if system is not None:
        ok &= _plain(system)
    if kind == "dpo":
        ok &= _plain(_take(table, "chosen", rows))
    skeletons = []
    for k in answers:
        roles = (*head, *(_ROLE_OF[c] for c in pattern[body:k]), _answer_role(kind, pattern, k))
        pieces = fmt._skeleton(roles)
        suffix = _suffix(fmt, pieces[-1]) if pieces is not None else None
        if suffix is None:
            return [], rows
        if kind == "sft":
            ok &= conversations.plain[conversations.starts[rows] + k]
        skeletons.append((k, pieces, suffix))
    keep = rows[ok]
    if not len(keep):
        return [], rows
    system = system.filter(pa.array(ok)) if system is not None else None
    made = []
    for (k, pieces, suffix), turn in zip(skeletons, turns):
        parts: list[Any] = [pieces[0]]
        if system is not None:
            parts += [system, pieces[1]]
        for n, position in enumerate(range(body, k), start=len(head) + 1):
            parts += [conversations.content(keep, position), pieces[n]]
        parts[-1] = parts[-1][: len(parts[-1]) - len(fmt.lead)]
        prompt = _join(parts, len(keep))
        columns = {
            "id": _take(table, "id", keep),
            "source": _take(table, "source", keep),
            "format": pa.array([fmt.name] * len(keep), pa.string()),
            "split": _take(table, "split", keep),
            "prompt": prompt,
        }
        if kind == "dpo":
            for side in ("chosen", "rejected"):
                columns[side] = _join([fmt.lead, _take(table, side, keep), suffix], len(keep))
        else:
            columns["turn"] = pa.array(np.full(len(keep), turn, dtype=np.int32))
            columns["completion"] = _join(
                [fmt.lead, conversations.content(keep, k), suffix], len(keep)
            )
        columns["_record"] = pa.array(keep.astype(np.int64))
        columns["_plan"] = pa.array(np.full(len(keep), plan_index, dtype=np.int64))
        columns["_turn"] = pa.array(np.full(len(keep), turn, dtype=np.int64))
        made.append(pa.table(columns))
    return made, rows[~ok]


def render_by_template(
    table: pa.Table, kind: str, plans: list[FormatPlan], last_turn_only: bool, seed: int
) -> pa.Table:
    """What `render_table` gives, with every row rendered through its template: the
    reference its skeletons are checked against."""
    if kind == "text":
        return render_table(table, kind, plans, last_turn_only, seed)
    conversations = _Conversations(table.column("conversations"))
    ids, own = table.column("id").to_pylist(), conversations.own_system()
    systems = [plan.system.choose(ids, own) for plan in plans]
    which = [
        (i, p)
        for i in range(table.num_rows)
        for p, plan in enumerate(plans)
        if uniforms(seed, ids[i : i + 1], plan.format.name, "coverage")[0] < plan.coverage
    ]
    rows = _render_rows(table, kind, plans, systems, own, last_turn_only, which)
    return rows.select(list(SCHEMAS[kind].names)).cast(SCHEMAS[kind])


def _take(table: pa.Table, column: str, rows: np.ndarray) -> pa.Array:
    return table.column(column).take(rows).combine_chunks()


def _plain(texts: pa.Array) -> np.ndarray:
    """Which texts a skeleton may take (composer.formats._plain, on a column)."""
    return pc.fill_null(pc.match_substring_regex(texts, _PLAIN), False).to_numpy(False)


def _answer_role(kind: str, pattern: str, k: int) -> str:
    return "gpt" if kind == "dpo" else _ROLE_OF[pattern[k]]


def _suffix(fmt: PromptFormat, tail: str) -> str | None:
    """What follows the answer in a rendered row, after its end token is left off; None
    when that depends on the answer (a tail of spaces only, shorter than the end token)."""
    eos = fmt.vars.get("eos_token")
    if fmt.keep_eos or not eos:
        return tail
    end = tail.rstrip()
    if len(end) < len(eos):
        return None
    return end[: -len(eos)] if end.endswith(eos) else tail


def _join(parts: list[Any], length: int) -> pa.Array:
    """Strings and string columns joined element-wise (a string repeats down the column)."""
    arrays = [p if isinstance(p, (pa.Array, pa.ChunkedArray)) else pa.scalar(p) for p in parts]
    if not any(isinstance(a, (pa.Array, pa.ChunkedArray)) for a in arrays):
        return pa.array(["".join(parts)] * length, pa.string())
    return pc.binary_join_element_wise(*arrays, "")


def _render_rows(
    table: pa.Table,
    kind: str,
    plans: list[FormatPlan],
    systems: list[list[str | None]],
    own: list[str | None],
    last_turn_only: bool,
    which: list[tuple[int, int]],
) -> pa.Table:
    """(record, plan) pairs rendered one row at a time, through the templates."""
    columns = SFT_COLUMNS if kind == "sft" else DPO_COLUMNS
    out: dict[str, list] = {c: [] for c in (*columns, "_record", "_plan", "_turn")}
    rows = sorted({i for i, _ in which})  # only these records' values leave Arrow
    picked = {
        name: dict(zip(rows, table.column(name).take(rows).to_pylist()))
        for name in ("id", "source", "split", "conversations", "chosen", "rejected")
    }
    for i, p in which:
        turns = picked["conversations"][i]
        fmt = plans[p].format
        body = _messages(turns[1:] if own[i] is not None else turns)
        system = systems[p][i]
        head = messages_for([("system", system)]) if system else ()
        row = (picked["id"][i], picked["source"][i], fmt.name, picked["split"][i])
        if kind == "dpo":
            answers = [picked["chosen"][i], picked["rejected"][i]]
            prompt, (good, bad) = fmt.render_completions(head + body, answers)
            _append(
                out, *row, prompt=prompt, chosen=good, rejected=bad, _record=i, _plan=p, _turn=0
            )
            continue
        answers = [k for k, m in enumerate(body) if m["from"] in GPT_SIDE]
        first_turn = len(answers) if last_turn_only else 1
        if last_turn_only:
            answers = answers[-1:]
        for turn, k in enumerate(answers, start=first_turn):
            prompt, answer = fmt.render(head + body[:k], body[k]["content"], body[k]["from"])
            _append(
                out,
                *row,
                turn=turn,
                prompt=prompt,
                completion=answer,
                _record=i,
                _plan=p,
                _turn=turn,
            )
    schema = SCHEMAS[kind]
    types = {f.name: f.type for f in schema}
    return pa.table({c: pa.array(v, types.get(c, pa.int64())) for c, v in out.items()})


def _append(out: dict[str, list], rid: str, source: str, fmt: str, split: str, **values) -> None:
    out["id"].append(rid)
    out["source"].append(source)
    out["format"].append(fmt)
    out["split"].append(split)
    for key, value in values.items():
        out[key].append(value)
