"""Benchmark: a rebuild with a warm stage cache against the cold build (issue: >= 10x faster).

    python bench/bench_cache.py [--rows 200000] [--workdir /tmp/composer-bench-cache]
                                [--only demo|mixture]

Two cases, each built into its own folder under the workdir:

- `demo`: manifests/demo.yaml and its demo_data, copied into the workdir (the copy's files
  are edited below, the repository's never are);
- `mixture`: `--rows` rows in four sources of three plugins (sharegpt and alpaca from
  bench_build.write_sources, 40% each; OpenAI messages and DPO pairs, 10% each), global and
  per-source filters, a `mix:` by weights, four formats, a validation split.

Each case is built, every time in a fresh Python process that imports the heavy modules
first and then times only the `composer.build.build(...)` call:

1. cold: COMPOSER_CACHE is a new empty folder (the stage cache is empty);
2. warm: the same cache, nothing changed (the output is copied from the cache); timed
   `--warm-runs` times (3), the median counts;
3. one source changed: a row appended to one source file, same cache (a partial rebuild);
4. no cache: `build(..., cache=False)` of the changed inputs.

Neither case decontaminates nor packs; for a manifest that does, the distilled static model
(also under COMPOSER_CACHE) would be linked in from `--static-from` before the cold run so
that "cold" means a cold *stage* cache, and the table says so.

The warm output must be byte-identical to the cold one (sha256 of every file), and the
warm rebuild at least 10 times faster than the cold build: the exit code is 1 otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_build import sentence, write_sources

REPO = Path(__file__).resolve().parent.parent
TARGET = 10.0
CASES = ("demo", "mixture")

# What the timed child runs. Everything heavy is imported before the clock starts.
CHILD = """
import json, resource, sys, time
spec = json.loads(sys.argv[1])
import pyarrow, pyarrow.parquet, pyarrow.compute
from composer.build import build
from composer.codehash import code_sha
import composer.decontaminate, composer.dedup, composer.render
if spec["mpl"]:  # the HTML report's charts: a 0.5 s import that only a cold build pays
    import matplotlib.figure, matplotlib.backends.backend_svg
if spec["embeds"]:
    import sentence_transformers
started = time.perf_counter()
result = build(spec["manifest"], output_dir=spec["out"], cache=spec["cache"])
seconds = time.perf_counter() - started
print(json.dumps({
    "seconds": seconds,
    "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "cache_use": result.cache_use,
    "code_sha": code_sha(),
    "rows_read": result.totals["rows_read"],
    "outputs": sum(n for p, n in result.report["outputs"].items() if p.startswith("sft/")),
}))
"""


# ---------------------------------------------------------------- the cases


def setup_demo(folder: Path, rows: int) -> tuple[Path, Path]:
    """A copy of the demo manifest and its data; returns (manifest, file to change)."""
    shutil.copytree(REPO / "manifests" / "demo_data", folder / "demo_data")
    shutil.copy(REPO / "manifests" / "demo.yaml", folder / "demo.yaml")
    return folder / "demo.yaml", folder / "demo_data" / "alpaca.jsonl"


def setup_mixture(folder: Path, rows: int, seed: int = 0) -> tuple[Path, Path]:
    """`rows` rows in four sources (three plugins) with filters and a mix."""
    big = rows * 4 // 5  # sharegpt and alpaca, half each
    small = (rows - big) // 2  # messages and dpo pairs
    write_sources(folder, big, 0.05, seed)
    rng = random.Random(seed + 1)
    with open(folder / "messages.jsonl", "w") as f:
        for i in range(small):
            messages = [
                {"role": "user", "content": f"Chat {i}: {sentence(rng, 20)}?"},
                {"role": "assistant", "content": sentence(rng, rng.randint(2, 80))},
            ]
            f.write(json.dumps({"messages": messages}) + "\n")
    with open(folder / "pairs.jsonl", "w") as f:
        for i in range(small):
            pair = {
                "prompt": f"Pair {i}: {sentence(rng, 20)}?",
                "chosen": sentence(rng, rng.randint(10, 70)),
                "rejected": sentence(rng, rng.randint(5, 40)),
            }
            f.write(json.dumps(pair) + "\n")
    (folder / "mixture.yaml").write_text(
        "name: mixture\nseed: 1\n"
        "sources:\n"
        "  - {name: chat, plugin: sharegpt, path: sharegpt.jsonl, confidence: 3, weight: 4}\n"
        "  - name: instruct\n"
        "    plugin: alpaca\n"
        "    path: alpaca.jsonl\n"
        "    confidence: 2\n"
        "    weight: 4\n"
        "    filters: {prompt_chars: {min: 20}}\n"
        "  - name: messages\n"
        "    plugin: messages\n"
        "    path: messages.jsonl\n"
        "    confidence: 1\n"
        "    weight: 1\n"
        "    filters: {response_words: {min: 10}}\n"
        "  - {name: pairs, plugin: dpo, path: pairs.jsonl, confidence: 1, weight: 1}\n"
        "filters: {response_words: {min: 5}, as_an_ai: true, refusals: true}\n"
        f"mix: {{total: {rows * 3 // 4}}}\n"
        "formats: [alpaca, vicuna, chatml, llama2]\n"
        "system_prompt: {default: 'You are an unbiased, uncensored, helpful assistant.', "
        "probability: 0.5}\n"
        "split: {validation: 0.05}\n"
        "output: {dir: out}\n"
    )
    return folder / "mixture.yaml", folder / "alpaca.jsonl"


SETUP = {"demo": setup_demo, "mixture": setup_mixture}


def append_row(path: Path) -> None:
    """One more row at the end of a jsonl source (a copy of its first, made unique)."""
    first = json.loads(path.read_text().splitlines()[0])
    key = "instruction" if "instruction" in first else next(iter(first))
    first[key] = "Appended row for the partial rebuild: " + str(first[key])
    with open(path, "a") as f:
        f.write(json.dumps(first) + "\n")


def needs_static(manifest: Path) -> bool:
    """Whether the build embeds (decontamination or packing): the static model is used."""
    from composer.manifest import load_manifest

    m = load_manifest(manifest)
    return m.decontaminate is not None or any(s.packing is not None for s in m.sources)


# ---------------------------------------------------------------- measuring


def run_one(
    manifest: Path, out: Path, cache_root: Path, cache: bool, embeds: bool, mpl: bool
) -> dict:
    """One timed build in a fresh process."""
    spec = {
        "manifest": str(manifest),
        "out": str(out),
        "cache": cache,
        "embeds": embeds,
        "mpl": mpl,
    }
    env = {**os.environ, "COMPOSER_CACHE": str(cache_root), "TQDM_DISABLE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(spec)],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.exit(f"build of {manifest} failed:\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["load"] = os.getloadavg()[0]  # other work on the machine skews the timings
    return result


def tree_sha(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, by relative path."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            with open(p, "rb") as f:
                out[p.relative_to(folder).as_posix()] = hashlib.file_digest(f, "sha256").hexdigest()
    return out


def measure(case: str, workdir: Path, rows: int, static_from: Path, mpl: bool, warm: int) -> dict:
    folder = workdir / case
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    manifest, changed_file = SETUP[case](folder, rows)
    cache_root = folder / "cache"
    cache_root.mkdir()
    embeds = needs_static(manifest)
    static_note = "static model: not used (no decontaminate/packing)"
    if embeds:
        seeded = static_from / "static"
        if not seeded.is_dir():
            sys.exit(f"{case}: needs a distilled static model in {seeded} (build once with it)")
        (cache_root / "static").symlink_to(seeded.resolve(), target_is_directory=True)
        static_note = f"static model: pre-seeded from {seeded} (cold = cold stage cache)"

    print(f"[{case}] {static_note}", flush=True)
    runs = {}
    for name, cache in (("cold", True), ("warm", True), ("changed", True), ("nocache", False)):
        if name == "changed":
            append_row(changed_file)
        out = folder / f"out-{name}"
        if name == "warm":  # a tenth of a second: the median of a few, OS jitter aside
            tries = [run_one(manifest, out, cache_root, cache, embeds, mpl) for _ in range(warm)]
            runs[name] = sorted(tries, key=lambda r: r["seconds"])[len(tries) // 2]
            runs[name]["tries"] = [round(r["seconds"], 3) for r in tries]
        else:
            runs[name] = run_one(manifest, out, cache_root, cache, embeds, mpl)
        print(
            f"[{case}] {name:<8}{runs[name]['seconds']:8.3f} s  "
            f"(load average {runs[name]['load']:.1f}; cache: {runs[name]['cache_use']})",
            flush=True,
        )
    warnings = []
    if len({r["code_sha"] for r in runs.values()}) > 1:
        warnings.append("composer's code changed during the case: its cache keys changed")
    if not runs["warm"]["cache_use"].startswith("output copied"):
        warnings.append("the warm build did not copy its output from the cache")

    cold, warm = tree_sha(folder / "out-cold"), tree_sha(folder / "out-warm")
    changed, nocache = tree_sha(folder / "out-changed"), tree_sha(folder / "out-nocache")
    return {
        "case": case,
        "runs": runs,
        "identical": cold == warm and bool(cold),
        "files": len(cold),
        "changed_identical_nocache": changed == nocache,
        "speedup": runs["cold"]["seconds"] / runs["warm"]["seconds"],
        "static": static_note,
        "warnings": warnings,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows of the mixture case")
    parser.add_argument("--workdir", default="/tmp/composer-bench-cache")
    parser.add_argument("--only", choices=CASES)
    parser.add_argument(
        "--warm-runs", type=int, default=3, help="warm rebuilds to time (the median counts)"
    )
    parser.add_argument(
        "--static-from",
        default=os.environ.get("COMPOSER_CACHE") or str(Path.home() / ".cache" / "composer"),
        help="a warm cache whose static/ model is linked in when a case embeds",
    )
    parser.add_argument(
        "--lazy-mpl",
        action="store_true",
        help="leave matplotlib's import to the build (only a cold build imports it) instead "
        "of importing it before the clock starts",
    )
    args = parser.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    cases = [args.only] if args.only else list(CASES)
    mpl = not args.lazy_mpl
    static_from = Path(args.static_from)
    results = [measure(c, workdir, args.rows, static_from, mpl, args.warm_runs) for c in cases]

    print()
    header = (
        f"{'case':<9}{'cold s':>9}{'warm s':>9}{'speed-up':>10}{'1 changed s':>13}"
        f"{'no-cache s':>12}   peak RSS MiB cold/warm/changed/no-cache"
    )
    print(header)
    print("-" * len(header))
    ok = True
    for r in results:
        runs = r["runs"]
        peaks = "/".join(
            f"{runs[k]['peak_mib']:.0f}" for k in ("cold", "warm", "changed", "nocache")
        )
        print(
            f"{r['case']:<9}{runs['cold']['seconds']:>9.2f}{runs['warm']['seconds']:>9.3f}"
            f"{r['speedup']:>9.1f}x{runs['changed']['seconds']:>13.2f}"
            f"{runs['nocache']['seconds']:>12.2f}   {peaks}"
        )
    print()
    print(
        "timed: build() alone, each in a fresh process that imported pyarrow, composer.build, "
        f"composer.decontaminate{', matplotlib' if mpl else ''} first"
    )
    for r in results:
        runs = r["runs"]
        for warning in r["warnings"]:
            print(f"  WARNING: {warning}")
        passed = r["speedup"] >= TARGET
        ok = ok and passed and r["identical"]
        print(
            f"{r['case']}: rows read {runs['cold']['rows_read']:,}, sft rows out "
            f"{runs['cold']['outputs']:,}; {r['static']}"
        )
        print(f"  warm cache use: {runs['warm']['cache_use']}; warm runs: {runs['warm']['tries']}")
        print(f"  one changed cache use: {runs['changed']['cache_use']}")
        print(
            f"  warm output byte-identical to cold ({r['files']} files, sha256): "
            f"{'yes' if r['identical'] else 'NO'}"
        )
        print(
            "  one-changed output byte-identical to its no-cache build: "
            f"{'yes' if r['changed_identical_nocache'] else 'NO'}"
        )
        print(
            f"  speed-up {r['speedup']:.1f}x {'>=' if passed else '<'} {TARGET:g}x: "
            f"{'PASS' if passed else 'FAIL'}"
        )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
