"""Benchmark: decontamination recall, false positives and speed, on real data.

    python bench/bench_decontaminate.py quality [--data ../shared/data] [--per-kind 200]
    python bench/bench_decontaminate.py speed [--conversations 100000] [--items 50000]

`quality` injects GSM8K test questions into conversations eight ways (see
decontamination_data.py) and reports recall per kind, and the share of same-style (GSM8K
train) and unrelated (HH-RLHF) clean conversations removed. Targets (issue 3): recall
>= 0.98 for verbatim-like kinds, >= 0.95 for reworded and reordered; false positives
<= 0.5% same-style, <= 0.1% unrelated.

`speed` times 100,000 mixed-domain conversations of about 60 words a turn against
about 50,000 benchmark items (GSM8K test plus stand-ins); target >= 1,000 conversations/s
on 2 cores and peak memory under 4 GB.
"""

from __future__ import annotations

import argparse
import random
import re
import resource
import sys
import time
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).parent))
from decontamination_data import KINDS, make, reorder

from composer.benchmarks import Benchmark, BenchmarkItems
from composer.decontaminate import Detector, Settings, checked_texts
from composer.records import SCHEMA


def table(records: list[dict]) -> pa.Table:
    n = len(records)
    return pa.Table.from_pydict(
        {
            "id": [str(i) for i in range(n)],
            "source": ["bench"] * n,
            "kind": ["dpo" if "chosen" in r else "sft" for r in records],
            "conversations": [r["conversations"] for r in records],
            "chosen": [r.get("chosen") for r in records],
            "rejected": [r.get("rejected") for r in records],
            "text": [None] * n,
            "meta": ["{}"] * n,
        },
        schema=SCHEMA,
    )


def flagged(detector: Detector, records: list[dict], kind: str = "sft") -> set[int]:
    checked = checked_texts(table(records), kind, detector.settings)
    return {checked.record[m.text] for m in detector.scan(checked)}


def quality(args) -> None:
    data = make(Path(args.data), args.per_kind)
    texts = list(data["benchmark"])
    if args.stand_ins:  # a benchmark set big enough for the inverted-list index
        held_out = [r["conversations"][0]["value"] for r in data["same_style"][:3000]]
        texts += stand_ins(held_out, args.stand_ins, random.Random(2))
        data["same_style"] = data["same_style"][3000:]
    items = BenchmarkItems(
        Benchmark("gsm8k", ("question",)), [f"gsm8k/{i}" for i in range(len(texts))], texts
    )
    started = time.perf_counter()
    detector = Detector([items], Settings())
    print(f"index {len(items.texts):,} items: {time.perf_counter() - started:.1f}s")
    for kind in KINDS:
        rows = data["contaminated"][kind]
        hit = flagged(detector, rows, "dpo" if kind == "dpo_prompt" else "sft")
        print(f"  recall {kind:<13} {len(hit) / len(rows):.3f}  ({len(hit)}/{len(rows)})")
    for name in ("same_style", "unrelated"):
        rows = data[name]
        hit = flagged(detector, rows)
        print(f"  removed {name:<11} {len(hit) / len(rows):.4f}  ({len(hit)}/{len(rows)})")
    print(
        f"pairs re-scored by the transformer: {detector.stats['pairs_rescored']:,} of "
        f"{detector.stats['windows']:,} windows; transformer texts: "
        f"{detector.transformer.computed:,}"
    )


def stand_ins(questions: list[str], count: int, rng: random.Random) -> list[str]:
    """Benchmark-like items that are in no clean conversation: held-out GSM8K train
    questions with every number changed, and their sentences in another order."""
    out = []
    for i in range(count):
        text = re.sub(r"\d+", lambda m: str(rng.randint(2, 999)), rng.choice(questions))
        out.append(reorder(text, rng) if i % 2 else text)
    return out


def lengthen(record: dict, spare: list[str], target: int, rng: random.Random) -> dict:
    """The record with each turn padded with other clean turns to about `target` words."""
    turns = []
    for t in record["conversations"]:
        text = t["value"]
        while len(text.split()) < target:
            text += " " + rng.choice(spare)
        turns.append({"from": t["from"], "value": " ".join(text.split()[: max(target, 1)])})
    return {"conversations": turns}


def speed(args) -> None:
    data = make(Path(args.data), 10)
    rng = random.Random(1)
    held_out, clean_style = data["same_style"][:3000], data["same_style"][3000:]
    questions = [r["conversations"][0]["value"] for r in held_out]
    texts = data["benchmark"] + stand_ins(questions, args.items - len(data["benchmark"]), rng)
    items = BenchmarkItems(
        Benchmark("mixed", ("text",)), [str(i) for i in range(len(texts))], texts
    )
    pool = clean_style + data["unrelated"]
    spare = [t["value"] for r in pool for t in r["conversations"]]
    records = [
        lengthen(rng.choice(pool), spare, args.turn_words, rng) for _ in range(args.conversations)
    ]
    words = sum(len(t["value"].split()) for r in records for t in r["conversations"])
    turns = sum(len(r["conversations"]) for r in records)
    started = time.perf_counter()
    detector = Detector([items], Settings())
    built = time.perf_counter() - started
    started = time.perf_counter()
    hit = flagged(detector, records)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{len(records):,} conversations, {words / turns:.0f} words a turn; "
        f"{len(texts):,} benchmark items"
    )
    print(
        f"index: {built:.1f}s; scan: {seconds:.1f}s = {len(records) / seconds:,.0f} "
        f"conversations/s; flagged {len(hit):,}; peak RSS {peak:,.0f} MiB"
    )
    print(
        f"windows {detector.stats['windows']:,}, pairs re-scored "
        f"{detector.stats['pairs_rescored']:,}, transformer texts {detector.transformer.computed:,}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["quality", "speed"])
    here = Path(__file__).resolve().parent
    parser.add_argument("--data", default=str(here.parent.parent / "shared" / "data"))
    parser.add_argument("--per-kind", type=int, default=200)
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--turn-words", type=int, default=60)
    parser.add_argument(
        "--stand-ins",
        type=int,
        default=0,
        help="quality: add this many stand-in items (tests the IVF index)",
    )
    args = parser.parse_args()
    quality(args) if args.mode == "quality" else speed(args)


if __name__ == "__main__":
    main()
