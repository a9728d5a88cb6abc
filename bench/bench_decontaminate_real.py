"""Benchmark: decontamination on real text, mixed domains, math and code benchmarks.

    python bench/bench_decontaminate_real.py [--data ../shared/data] [--rows 100000]
        [--items 50000] [--workers 1] [--quality-only | --speed-only]

Benchmark items: GSM8K test and HumanEval prompts, plus stand-ins up to `--items` (held-out
GSM8K train questions with other numbers: GSM8K train has near-duplicates, so a clean row
that matches a stand-in is counted apart, not as removed). Clean rows
join two real items each (so that 100,000 rows are unique): two GSM8K train problems with
their answers, two GPTeacher code tasks with their responses, or two HH-RLHF dialogues.

`speed`: the rows scanned cold (no transformer embedding cached) and warm (the same rows
again, every embedding cached); target >= 2,000 rows/s cold on 2 cores (issue 12). Each
turn is one real item, so the rows share their turns (about 29,000 distinct texts in
100,000 rows): the scan sees each distinct text once. bench_e2e.py joins two items in each
turn, so there every text is new.

`quality`: GSM8K test questions injected eight ways (decontamination_data.py) and HumanEval
prompts four ways (verbatim, inside an instruction, docstring reworded, function renamed):
recall >= 0.98 (>= 0.95 reworded and reordered). Clean rows removed: GSM8K train (same
style) <= 0.5%, HH-RLHF (unrelated) <= 0.1%, GPTeacher codegen <= 0.1%.

Quality figures (2026-12-04, `--quality-only`, 50,000 items, 2 shared cores), before -> after
the code evidence of code_marks.py: HumanEval recall verbatim 1.000 -> 1.000, instruction
1.000 -> 1.000, docstring reworded 0.915 -> 0.982 (161/164: is_prime, median and fib
reworded are left, their prose and signature are any course's), renamed 0.939 -> 1.000;
GPTeacher codegen removed 0 -> 0; GSM8K unchanged (reworded 0.955, others 1.000; GSM8K
train 0.09%, HH-RLHF 0).
"""

from __future__ import annotations

import argparse
import random
import re
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_decontaminate import flagged, stand_ins, table
from decontamination_data import KINDS, SYNONYMS, conv, hh_turns, load_jsonl, make, reword

from composer.benchmarks import Benchmark, BenchmarkItems
from composer.decontaminate import Detector, Settings, checked_texts, scan_records

HELD_OUT_MATH = 3000  # GSM8K train questions that become stand-in items, never clean rows
HUMANEVAL_KINDS = ("verbatim", "instruction", "docstring_reworded", "renamed")
CODE_WORDS = {  # docstring rewording beyond decontamination_data.SYNONYMS
    "given": "provided",
    "list": "sequence",
    "return": "give back",
    "returns": "gives back",
    "string": "text",
    "strings": "texts",
    "integer": "whole number",
    "integers": "whole numbers",
    "check": "test",
    "function": "routine",
    "numbers": "values",
    "write": "create",
    "input": "argument",
    "find": "compute",
    "example": "instance",
    "for": "for",
}


def code_task(row: dict) -> tuple[str, str]:
    task = row["instruction"] + (f"\n{row['input']}" if row.get("input") else "")
    return task, row["response"]


def humaneval_variant(item: dict, kind: str, rng: random.Random) -> str:
    prompt = item["prompt"]
    if kind == "verbatim":
        return prompt
    if kind == "instruction":
        return f"Complete the following Python function so that the tests pass.\n\n{prompt}"
    if kind == "renamed":
        other = "solve_" + "".join(rng.choice("abcdefghij") for _ in range(4))
        return re.sub(rf"\b{re.escape(item['entry_point'])}\b", other, prompt)
    # docstring_reworded: the code as it is, the docstring's prose in other words, its
    # examples left out
    words = {**SYNONYMS, **CODE_WORDS}

    def prose(match: re.Match) -> str:
        lines = [ln for ln in match.group(2).splitlines() if not ln.strip().startswith(">>>")]
        kept, skip = [], False
        for ln in lines:  # drop an example's expected output after its >>> line
            if skip and ln.strip() and not ln.strip().endswith("."):
                continue
            skip = False
            kept.append(re.sub(r"[A-Za-z]+", lambda m: swap(m, words), ln))
        return match.group(1) + reword("\n".join(kept), rng) + match.group(3)

    return re.sub(r'("""|\'\'\')(.*?)(\1)', prose, prompt, flags=re.S)


def swap(match: re.Match, words: dict[str, str]) -> str:
    word = match.group(0)
    out = words.get(word.lower())
    if out is None:
        return word
    return out.capitalize() if word[0].isupper() else out


def build_data(data: Path, rows: int, items: int, seed: int = 0) -> dict:
    rng = random.Random(seed)
    gsm = make(data, 200, seed)
    humaneval = load_jsonl(data / "humaneval_test.jsonl.gz")
    code_clean = load_jsonl(data / "gpteacher_codegen.jsonl.gz")
    train = load_jsonl(data / "gsm8k_train.jsonl")
    math_held, math_clean = train[:HELD_OUT_MATH], train[HELD_OUT_MATH:]
    hh = [hh_turns(r["chosen"]) for r in load_jsonl(data / "hh_harmless_test.jsonl.gz")]
    hh = [t[: len(t) // 2 * 2] for t in hh if len(t) >= 2]

    texts = gsm["benchmark"] + [r["prompt"] for r in humaneval]
    ids = [f"gsm8k/{i}" for i in range(len(gsm["benchmark"]))]
    ids += [r["task_id"] for r in humaneval]
    texts += stand_ins([r["question"] for r in math_held], items - len(texts), rng)
    ids += [f"stand-in/{i}" for i in range(len(texts) - len(ids))]

    def clean_row(domain: int) -> dict:
        if domain == 0:
            a, b = rng.sample(math_clean, 2)
            return {"conversations": conv(a["question"], a["answer"], b["question"], b["answer"])}
        if domain == 1:
            a, b = rng.sample(code_clean, 2)
            return {"conversations": conv(*code_task(a), *code_task(b))}
        a, b = rng.sample(hh, 2)
        return {"conversations": conv(*a, *b)}

    mixed = [clean_row(i % 3) for i in range(rows)]
    injected = {}
    for kind in HUMANEVAL_KINDS:
        injected[kind] = [
            {"conversations": conv(humaneval_variant(item, kind, rng), "Here is the code.")}
            for item in humaneval
        ]
    return {
        "items": (ids, texts),
        "mixed": mixed,
        "gsm": gsm,
        "humaneval": injected,
        "code_clean": [{"conversations": conv(*code_task(r))} for r in code_clean],
    }


def detector_for(ids: list[str], texts: list[str], settings: Settings) -> Detector:
    benchmarks = []
    for name in ("gsm8k", "humaneval", "stand-in"):
        members = [i for i, x in enumerate(ids) if x.split("/")[0].lower() == name]
        benchmarks.append(
            BenchmarkItems(
                Benchmark(name, ("text",)), [ids[i] for i in members], [texts[i] for i in members]
            )
        )
    return Detector(benchmarks, settings, cached=False)


def speed(data: dict, workers: int) -> None:
    ids, texts = data["items"]
    records = data["mixed"]
    started = time.perf_counter()
    detector = detector_for(ids, texts, Settings())
    built = time.perf_counter() - started
    checked = checked_texts(table(records), "sft", Settings())
    print(
        f"{len(records):,} rows (math, code, chat), {len(checked.texts):,} texts of which "
        f"{len(checked.distinct):,} distinct (each scanned once); {len(texts):,} benchmark items"
    )
    print(f"index: {built:.1f}s")
    for run in ("cold", "warm"):
        started = time.perf_counter()
        scan = scan_records(detector, table(records), "sft", workers)
        seconds = time.perf_counter() - started
        removed, stats = scan.removed, scan.stats
        print(
            f"  {run}: {seconds:.1f}s = {len(records) / seconds:,.0f} rows/s "
            f"({workers} worker{'s' if workers > 1 else ''}, pool start included); "
            f"removed {int(removed.sum()):,}; "
            f"windows {stats.get('windows', 0):,}, pairs re-scored "
            f"{stats.get('pairs_rescored', 0):,}"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak RSS {peak:,.0f} MiB; transformer texts {detector.transformer.computed:,}")


def code_scores(detector: Detector, since: int) -> str:
    """The transformer's cosines of the pairs that had code evidence, from `since` on."""
    scores = sorted(
        round(score, 2) for kind, score in detector.scores[since:] if kind in ("code", "copy")
    )
    if not scores:
        return ""
    return f"; code-evidence cosines: {len(scores)}, min {scores[0]}, max {scores[-1]}"


def quality(data: dict) -> None:
    ids, texts = data["items"]
    detector = detector_for(ids, texts, Settings())
    gsm = data["gsm"]
    for kind in KINDS:
        rows = gsm["contaminated"][kind]
        hit = flagged(detector, rows, "dpo" if kind == "dpo_prompt" else "sft")
        print(f"  gsm8k recall {kind:<18} {len(hit) / len(rows):.3f}  ({len(hit)}/{len(rows)})")
    for kind in HUMANEVAL_KINDS:
        rows, since = data["humaneval"][kind], len(detector.scores)
        hit = flagged(detector, rows)
        print(
            f"  humaneval recall {kind:<18} {len(hit) / len(rows):.3f}  ({len(hit)}/{len(rows)})"
            + code_scores(detector, since)
        )
    for name, rows in (
        ("same-style (GSM8K train)", gsm["same_style"][HELD_OUT_MATH:]),
        ("unrelated (HH-RLHF)", gsm["unrelated"]),
        ("code (GPTeacher)", data["code_clean"]),
    ):
        checked, since = checked_texts(table(rows), "sft", detector.settings), len(detector.scores)
        matches = detector.scan(checked)
        real = [m for m in matches if not detector.item_ids[m.item].startswith("stand-in")]
        hit = {checked.record[m.text] for m in real}
        near = {checked.record[m.text] for m in matches} - hit
        print(
            f"  removed {name:<26} {len(hit) / len(rows):.4f}  ({len(hit)}/{len(rows)}; "
            f"{len(near)} more match a stand-in){code_scores(detector, since)}"
        )
        for m in real[:5]:
            print(
                f"      {m.detector} {m.score:.3f} {detector.item_ids[m.item]}: "
                f"{checked.texts[m.text][:90]!r}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = Path(__file__).resolve().parent
    parser.add_argument("--data", default=str(here.parent.parent / "shared" / "data"))
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--quality-only", action="store_true")
    parser.add_argument("--speed-only", action="store_true")
    args = parser.parse_args()
    data = build_data(Path(args.data), args.rows, args.items)
    if not args.speed_only:
        quality(data)
    if not args.quality_only:
        speed(data, args.workers)


if __name__ == "__main__":
    main()
