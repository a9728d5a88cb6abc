"""Render records into training rows: every item in every selected format.

SFT: one row per assistant turn, the earlier turns as context (or only the last turn, with
`render.turns: last`): `prompt` and `completion`, the columns of TRL's prompt-completion
type. DPO: the context as `prompt`, the two answers as `chosen` and `rejected`. Every row
carries its record's `id`. Text records are not templated. Coverage below 1 renders a
seeded share of items in a format.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from composer.draws import uniforms
from composer.formats import PromptFormat, messages_for
from composer.records import GPT_SIDE
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
    """All rendered rows of one source's records (which carry a `split` column)."""
    ids = table.column("id").to_pylist()
    sources = table.column("source").to_pylist()
    splits = table.column("split").to_pylist()
    if kind == "text":
        return {
            "id": ids,
            "source": sources,
            "split": splits,
            "text": table.column("text").to_pylist(),
        }
    columns = SFT_COLUMNS if kind == "sft" else DPO_COLUMNS
    out: dict[str, list] = {c: [] for c in columns}
    conversations = table.column("conversations").to_pylist()
    chosen = table.column("chosen").to_pylist()
    rejected = table.column("rejected").to_pylist()
    own = [t[0]["value"] if t[0]["from"] == "system" else None for t in conversations]
    per_plan = [
        (
            plan.format,
            plan.format.name,
            uniforms(seed, ids, plan.format.name, "coverage") < plan.coverage,
            plan.system.choose(ids, own),
        )
        for plan in plans
    ]
    for i, turns in enumerate(conversations):
        rid = ids[i]
        body = _messages(turns[1:] if own[i] is not None else turns)
        answers = [k for k, m in enumerate(body) if m["from"] in GPT_SIDE]
        first_turn = len(answers) if last_turn_only else 1
        if last_turn_only:
            answers = answers[-1:]
        for fmt, name, covered, systems in per_plan:
            if not covered[i]:
                continue
            system = systems[i]
            head = messages_for([("system", system)]) if system else ()
            if kind == "dpo":
                prompt, (good, bad) = fmt.render_completions(head + body, [chosen[i], rejected[i]])
                _append(
                    out,
                    rid,
                    sources[i],
                    name,
                    splits[i],
                    prompt=prompt,
                    chosen=good,
                    rejected=bad,
                )
                continue
            for turn, k in enumerate(answers, start=first_turn):
                prompt, answer = fmt.render(head + body[:k], body[k]["content"], body[k]["from"])
                _append(
                    out,
                    rid,
                    sources[i],
                    name,
                    splits[i],
                    turn=turn,
                    prompt=prompt,
                    completion=answer,
                )
    return out


def _append(out: dict[str, list], rid: str, source: str, fmt: str, split: str, **values) -> None:
    out["id"].append(rid)
    out["source"].append(source)
    out["format"].append(fmt)
    out["split"].append(split)
    for key, value in values.items():
        out[key].append(value)
