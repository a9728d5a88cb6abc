"""Benchmark: build 200,000 rows from two sources in four formats (800,000 rendered rows).

    python bench/bench_build.py [--rows 200000] [--workdir /tmp/composer-bench]

Writes two synthetic jsonl sources (alpaca and sharegpt, half the rows each; `--shared` of
the instructions in both, none by default so that 200,000 rows render to 800,000), builds
them with `composer.build`, and prints the wall time and peak memory. The target (issue 2)
is under a minute on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import time
from pathlib import Path

WORDS = (
    "alpha beta gamma delta river mountain city number answer question explain compute "
    "history science code model data value system network energy"
).split()


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def write_sources(folder: Path, rows: int, shared_fraction: float, seed: int = 0) -> None:
    rng = random.Random(seed)
    half = rows // 2
    instructions = [f"Task {i}: {sentence(rng, 25)}?" for i in range(half)]
    with open(folder / "alpaca.jsonl", "w") as f:
        for text in instructions:
            f.write(
                json.dumps({"instruction": text, "input": "", "output": sentence(rng, 60)}) + "\n"
            )
    shared = set(rng.sample(range(half), int(half * shared_fraction)))
    with open(folder / "sharegpt.jsonl", "w") as f:
        for i in range(half):
            text = instructions[i] if i in shared else f"Other {i}: {sentence(rng, 25)}?"
            turns = [{"from": "human", "value": text}, {"from": "gpt", "value": sentence(rng, 60)}]
            f.write(json.dumps({"conversations": turns}) + "\n")
    (folder / "bench.yaml").write_text(
        "name: bench\nseed: 1\n"
        "sources:\n"
        "  - {name: chat, plugin: sharegpt, path: sharegpt.jsonl, confidence: 3}\n"
        "  - {name: instruct, plugin: alpaca, path: alpaca.jsonl, confidence: 1}\n"
        "formats: [alpaca, vicuna, chatml, llama2]\n"
        "system_prompt: {default: 'You are an unbiased, uncensored, helpful assistant.', "
        "probability: 0.5}\n"
        "split: {validation: 0.05}\n"
        "output: {dir: out}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument(
        "--shared",
        type=float,
        default=0.0,
        help="fraction of the second source's instructions taken from the first",
    )
    parser.add_argument("--workdir", default="/tmp/composer-bench")
    args = parser.parse_args()
    folder = Path(args.workdir)
    folder.mkdir(parents=True, exist_ok=True)
    write_sources(folder, args.rows, args.shared)

    import composer

    started = time.perf_counter()
    result = composer.build(folder / "bench.yaml")
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rendered = sum(
        n
        for path, n in result.report["outputs"].items()
        if path.startswith("formats/") and "/sft/" in path
    )
    print(
        f"rows in: {result.totals['rows_read']:,}  duplicates: {result.totals['duplicates']:,}"
        f"  rendered rows: {rendered:,}"
    )
    print(
        f"build: {seconds:.1f} s  ({rendered / seconds:,.0f} rendered rows/s)  "
        f"peak RSS: {peak:,.0f} MiB"
    )


if __name__ == "__main__":
    main()
