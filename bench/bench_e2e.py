"""Benchmark: a million real rows end to end (issue 12).

    python bench/bench_e2e.py [--rows 1000000] [--items 50000] [--workdir /tmp/composer-e2e]
                              [--data ../shared/data] [--no-decontaminate]
                              [--near minhash|embedding] [--workers N]

Builds a mixture from real text in ../shared/data (GSM8K train, GPTeacher codegen, HH-RLHF):
each row joins two real items, so a few thousand items give a million distinct rows. Three
overlapping SFT sources (alpaca jsonl, sharegpt jsonl, messages parquet; 10% of each later
source's instructions are also in an earlier, more trusted one) and an HH DPO source,
confidence dedup, decontamination against GSM8K test + HumanEval + stand-ins up to `--items`
items (200 GSM8K test questions are planted in the SFT rows), four formats and a validation
split; `--near` adds near-duplicate dedup (issue 15: it should add at most a quarter to the
build's time). The build runs in a child process with a cold cache and `--workers` worker processes
(default one a core); the script prints the wall time, each stage's seconds and rows/s, the
peak memory of the driver and of its largest worker, the funnel, and a sha256 of the output
folder (the same for any number of workers). Target: <= 5 minutes and <= 6 GB peak on 2
cores.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).parent))
from bench_decontaminate import stand_ins
from decontamination_data import hh_turns


def load_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def real_items(data: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
    """(instruction, answer) items from GSM8K train, GPTeacher and HH; (prompt, chosen,
    rejected) items from HH."""
    sft = [(r["question"], r["answer"]) for r in load_jsonl(data / "gsm8k_train.jsonl")]
    for r in load_jsonl(data / "gpteacher_codegen.jsonl.gz"):
        instruction = f"{r['instruction']}\n{r['input']}".strip()
        sft.append((instruction, r["response"]))
    pairs = []
    for r in load_jsonl(data / "hh_harmless_test.jsonl.gz"):
        chosen, rejected = hh_turns(r["chosen"]), hh_turns(r["rejected"])
        if len(chosen) >= 2 and len(rejected) >= 2 and chosen[0] == rejected[0]:
            sft.append((chosen[0], chosen[1]))
            if chosen[1] != rejected[1]:
                pairs.append((chosen[0], chosen[1], rejected[1]))
    return sft, pairs


def write_data(folder: Path, data: Path, rows: int, items: int, seed: int = 0) -> dict:
    rng = random.Random(seed)
    sft, pairs = real_items(data)
    # Stand-ins are made from the first 3,000 GSM8K train questions: keep those out of the rows.
    held_out, sft = [q for q, _ in sft[:3000]], sft[3000:]
    test = [r["question"] for r in load_jsonl(data / "gsm8k_test.jsonl")]
    n_dpo = rows * 15 // 100
    per_source = (rows - n_dpo) // 3

    def joined() -> tuple[str, str]:
        (q1, a1), (q2, a2) = rng.choice(sft), rng.choice(sft)
        return f"{q1}\n\n{q2}", f"{a1}\n\n{a2}"

    sources = [[joined() for _ in range(per_source)] for _ in range(3)]
    for later in (1, 2):  # 10% of a later source's instructions are in the one before it
        for i in rng.sample(range(per_source), per_source // 10):
            sources[later][i] = (sources[later - 1][i][0], sources[later][i][1])
    for i in rng.sample(range(per_source), 200):  # contamination to find
        q, a = sources[0][i]
        sources[0][i] = (f"{rng.choice(test)}\n\n{q}", a)
    with open(folder / "alpaca.jsonl", "w", encoding="utf-8") as f:
        for q, a in sources[0]:
            f.write(json.dumps({"instruction": q, "input": "", "output": a}) + "\n")
    with open(folder / "sharegpt.jsonl", "w", encoding="utf-8") as f:
        for q, a in sources[1]:
            turns = [{"from": "human", "value": q}, {"from": "gpt", "value": a}]
            f.write(json.dumps({"conversations": turns}) + "\n")
    messages = [
        [{"role": "user", "content": q}, {"role": "assistant", "content": a}] for q, a in sources[2]
    ]
    pq.write_table(pa.table({"messages": messages}), folder / "messages.parquet")
    with open(folder / "dpo.jsonl", "w", encoding="utf-8") as f:
        for _ in range(n_dpo):
            (p1, c1, r1), (p2, c2, r2) = rng.choice(pairs), rng.choice(pairs)
            row = {
                "prompt": f"{p1}\n\n{p2}",
                "chosen": f"{c1}\n\n{c2}",
                "rejected": f"{r1}\n\n{r2}",
            }
            f.write(json.dumps(row) + "\n")
    humaneval = load_jsonl(data / "humaneval_test.jsonl.gz")
    fillers = stand_ins(held_out, max(items - len(test) - len(humaneval), 0), rng)
    with open(folder / "standins.jsonl", "w", encoding="utf-8") as f:
        for text in fillers:
            f.write(json.dumps({"text": text}) + "\n")
    return {"sft": per_source * 3, "dpo": n_dpo, "items": len(test) + len(humaneval) + len(fillers)}


def prepared(workdir: Path, data: Path, rows: int, items: int) -> tuple[Path, dict]:
    """The folder holding the mixture's data for `rows` and `items` (written on first use;
    a folder per size, since the files' names do not say how many rows they hold), and what
    `write_data` made."""
    folder = workdir / f"rows-{rows}-items-{items}"
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / "data.json"
    if not marker.exists():
        started = time.perf_counter()
        made = write_data(folder, data, rows, items)
        marker.write_text(json.dumps(made))
        print(f"data written in {time.perf_counter() - started:.0f}s: {made}")
    return folder, json.loads(marker.read_text())


def write_manifest(folder: Path, data: Path, decontaminate: bool, near: str | None) -> Path:
    benchmarks = (
        "decontaminate:\n  benchmarks:\n"
        f"    - {{name: gsm8k, path: {data / 'gsm8k_test.jsonl'}}}\n"
        f"    - {{name: humaneval, path: {data / 'humaneval_test.jsonl.gz'}}}\n"
        "    - {name: standins, path: standins.jsonl, fields: [text]}\n"
        if decontaminate
        else ""
    )
    path = folder / "e2e.yaml"
    path.write_text(
        "name: e2e\nseed: 1\n"
        "sources:\n"
        "  - {name: alpaca, plugin: alpaca, path: alpaca.jsonl, confidence: 3}\n"
        "  - {name: chat, plugin: sharegpt, path: sharegpt.jsonl, confidence: 2}\n"
        "  - {name: messages, plugin: messages, path: messages.parquet, confidence: 1}\n"
        "  - {name: hh, plugin: dpo, path: dpo.jsonl, confidence: 2}\n"
        + benchmarks
        + (f"dedup: {{key: instruction, near: {{method: {near}}}}}\n" if near else "")
        + "formats: [alpaca, vicuna, chatml, llama2]\n"
        "system_prompt: {default: 'You are an unbiased, uncensored, helpful assistant.', "
        "probability: 0.5}\n"
        "split: {validation: 0.05}\n"
        "output: {dir: out}\n"
    )
    return path


CHILD = """
import json, resource, sys, time
import composer
started = time.perf_counter()
workers = int(sys.argv[2]) if sys.argv[2] != "0" else None
result = composer.build(sys.argv[1], cache=False, workers=workers)
print(json.dumps({"seconds": time.perf_counter() - started, "stages": result.stages,
                  "totals": result.totals, "engine": result.engine,
                  "driver_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2}))
"""


def digest(folder: Path) -> str:
    """sha256 over every output file's relative path and bytes, in path order."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = Path(__file__).resolve().parent
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--data", default=str(here.parent.parent / "shared" / "data"))
    parser.add_argument("--workdir", default="/tmp/composer-e2e")
    parser.add_argument("--no-decontaminate", action="store_true")
    parser.add_argument("--near", choices=["minhash", "embedding"])
    parser.add_argument("--workers", type=int, default=0, help="default: one a core")
    args = parser.parse_args()
    data = Path(args.data).resolve()
    folder, made = prepared(Path(args.workdir), data, args.rows, args.items)
    manifest = write_manifest(folder, data, not args.no_decontaminate, args.near)
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(manifest), str(args.workers)],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"},
    )
    if child.returncode:
        sys.exit(child.stderr[-3000:])
    result = json.loads(child.stdout.strip().splitlines()[-1])
    # The largest process among the child and its workers (RUSAGE_CHILDREN: the largest
    # waited-for descendant).
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    totals = result["totals"]
    print(
        f"{made['sft']:,} SFT + {made['dpo']:,} DPO rows, {made['items']:,} benchmark items, "
        f"{result['engine']} engine: {result['seconds']:.0f}s, "
        f"{(made['sft'] + made['dpo']) / result['seconds']:,.0f} rows/s, "
        f"driver peak {result['driver_gb']:.2f} GB, largest process {peak:.2f} GB"
    )
    for name, stage in result["stages"].items():
        rate = f", {stage['rows_per_s']:,.0f} rows/s" if stage.get("rows_per_s") else ""
        print(f"  {name}: {stage['seconds']:.1f}s{rate}")
    near = totals.get("near_duplicates", 0)
    print(
        f"  duplicates {totals['duplicates']:,}, near duplicates {near:,}, "
        f"contaminated {totals['contaminated']:,}, "
        f"train {totals['train']:,}, validation {totals['validation']:,}"
    )
    print(f"  output sha256 {digest(folder / 'out')}")


if __name__ == "__main__":
    main()
