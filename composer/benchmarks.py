"""Benchmark test sets to decontaminate against: a registry of specs, and their loading.

A spec names the upstream split (hub id, config, split, revision) and the fields whose text
makes an item. A manifest can point any benchmark at a local file, or add its own:
`{name: gsm8k, path: data/gsm8k_test.jsonl, fields: [question]}`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from composer.errors import InputError, UserError, did_you_mean
from composer.readers import read_hub, read_local, resolve_files


@dataclass(frozen=True)
class Benchmark:
    name: str
    fields: tuple[str, ...]
    hub: str | None = None
    config: str | None = None
    split: str = "test"
    revision: str | None = None
    path: str | None = None
    description: str = ""


BUILTIN = {
    b.name: b
    for b in (
        Benchmark(
            "mmlu",
            ("question", "choices"),
            "cais/mmlu",
            "all",
            "test",
            description="MMLU, 57 subjects: question and choices",
        ),
        Benchmark(
            "gsm8k",
            ("question",),
            "openai/gsm8k",
            "main",
            "test",
            description="GSM8K grade-school math",
        ),
        Benchmark(
            "arc_challenge",
            ("question", "choices.text"),
            "allenai/ai2_arc",
            "ARC-Challenge",
            "test",
            description="ARC-Challenge",
        ),
        Benchmark(
            "arc_easy",
            ("question", "choices.text"),
            "allenai/ai2_arc",
            "ARC-Easy",
            "test",
            description="ARC-Easy",
        ),
        Benchmark(
            "hellaswag",
            ("ctx", "endings"),
            "Rowan/hellaswag",
            None,
            "validation",
            description="HellaSwag: context and endings",
        ),
        Benchmark(
            "truthfulqa",
            ("question",),
            "truthfulqa/truthful_qa",
            "generation",
            "validation",
            description="TruthfulQA (generation)",
        ),
        Benchmark(
            "humaneval",
            ("prompt",),
            "openai/openai_humaneval",
            None,
            "test",
            description="HumanEval: function signatures and docstrings",
        ),
        Benchmark(
            "mbpp",
            ("text", "test_list"),
            "google-research-datasets/mbpp",
            "full",
            "test",
            description="MBPP: task description and its assert tests",
        ),
        Benchmark(
            "winogrande",
            ("sentence",),
            "allenai/winogrande",
            "winogrande_xl",
            "validation",
            description="Winogrande",
        ),
        Benchmark(
            "drop",
            ("passage", "question"),
            "ucinlp/drop",
            None,
            "validation",
            description="DROP: passage and question",
        ),
        Benchmark(
            "math",
            ("problem",),
            "EleutherAI/hendrycks_math",
            None,
            "test",
            description="MATH competition problems",
        ),
        Benchmark(
            "ifeval", ("prompt",), "google/IFEval", None, "train", description="IFEval prompts"
        ),
        Benchmark(
            "mt_bench",
            ("prompt",),
            "HuggingFaceH4/mt_bench_prompts",
            None,
            "train",
            description="MT-Bench questions (both turns)",
        ),
        Benchmark(
            "alpaca_eval",
            ("instruction",),
            "tatsu-lab/alpaca_eval",
            "alpaca_eval",
            "eval",
            description="AlpacaEval instructions",
        ),
    )
}


@dataclass
class BenchmarkItems:
    """One benchmark's items: an id and a text each."""

    benchmark: Benchmark
    ids: list[str]
    texts: list[str]


def resolve(entry: str | dict[str, Any]) -> Benchmark:
    """A manifest entry (a registry name, or a mapping) as a Benchmark spec."""
    if isinstance(entry, str):
        if entry not in BUILTIN:
            raise UserError(
                f"unknown benchmark {entry!r}{did_you_mean(entry, BUILTIN)}; "
                "`composer benchmarks` lists them"
            )
        return BUILTIN[entry]
    base = BUILTIN.get(entry["name"])
    fields = entry.get("fields")
    entry = {k: v for k, v in entry.items() if v is not None}
    if base is None and not fields:
        raise UserError(f"benchmark {entry['name']!r} is not built in: give its fields")
    spec = base or Benchmark(entry["name"], tuple(fields))
    updates = {k: entry[k] for k in ("hub", "config", "split", "revision", "path") if k in entry}
    if fields:
        updates["fields"] = tuple(fields)
    if "path" in entry:
        updates.setdefault("hub", None)
    return replace(spec, **updates)


def _field(row: dict[str, Any], path: str) -> Any:
    value: Any = row
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "\n".join(_text(v) for v in value if v is not None)
    return "" if value is None else str(value)


def load(spec: Benchmark, base_dir: Path) -> BenchmarkItems:
    """Read a benchmark's items; the text of an item is its fields, one per line."""
    if spec.path:
        upstream = read_local(resolve_files(spec.path, base_dir), spec.split)
    elif spec.hub:
        upstream = read_hub(spec.hub, spec.config, spec.split, spec.revision)
    else:
        raise UserError(f"benchmark {spec.name!r}: give a path or a hub id")
    rows = upstream.batch(0, upstream.table.num_rows)
    missing = [f for f in spec.fields if f.split(".")[0] not in rows]
    if missing:
        raise InputError(
            f"benchmark {spec.name!r}: no field {missing[0]!r} in the data; "
            f"fields: {', '.join(rows)}"
        )
    n = upstream.table.num_rows
    records = [{k: rows[k][i] for k in rows} for i in range(n)]
    texts = ["\n".join(t for t in (_text(_field(r, f)) for f in spec.fields) if t) for r in records]
    ids = [f"{spec.name}/{upstream.where(i)}" for i in range(n)]
    keep = [i for i, t in enumerate(texts) if t.strip()]
    return BenchmarkItems(spec, [ids[i] for i in keep], [texts[i] for i in keep])
