"""Benchmark: near-duplicate dedup (composer.near_dedup) on real text, and its speed.

    python bench/bench_near_dedup.py [--method minhash|embedding] [--threshold T]
                                     [--sample 600] [--rows 1000000] [--workers 2]
                                     [--ngram 2] [--data ../shared/data]

Quality: originals from GSM8K train (questions), GPTeacher codegen (instruction and input)
and Anthropic HH (the first human turn); a seeded sample of them gets planted near-copies of
five kinds (case and spacing, punctuation, a filler word added, one word replaced, a
sentence dropped from a prompt of 4+ sentences). Recall: the share of copies found near
their original at the threshold. False merges: pairs of distinct GSM8K train questions at
or above the threshold (same templates, other numbers: other problems), and the questions
in them. Then what greedy-by-rank clustering removes with originals ranked first: the
copies, and the originals (every one of those is a false removal).

Speed: the stage alone (key texts in; signatures, candidates, the exact check and the
greedy clusters out) on `--rows` rows of real text made as bench_e2e.py makes its rows:
each joins two real instructions (GSM8K train, GPTeacher codegen, HH), so a few thousand
items give a million distinct rows that share halves (a hard case for LSH: many
candidates, few near pairs). `--method embedding` searches every pair exhaustively (faiss
flat index): give it fewer `--rows`.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import sys
import time
from pathlib import Path

import numpy as np

from composer import near_dedup
from composer.manifest import EMBEDDING_THRESHOLD, NearDedup
from composer.near_dedup import embedding_pairs, greedy, minhash_pairs

sys.path.insert(0, str(Path(__file__).parent))
from bench_e2e import real_items

FILLERS = ["please", "kindly", "now", "quickly", "actually", "just"]
KINDS = ("case+spacing", "punctuation", "filler word", "word replaced", "sentence dropped")


def read(data: Path) -> dict[str, list[str]]:
    with open(data / "gsm8k_train.jsonl", encoding="utf-8") as f:
        gsm = [json.loads(x)["question"] for x in f]
    with gzip.open(data / "gpteacher_codegen.jsonl.gz", "rt", encoding="utf-8") as f:
        code = [
            "\n".join(p for p in (r["instruction"], r.get("input") or "") if p)
            for r in map(json.loads, f)
        ]
    with gzip.open(data / "hh_harmless_test.jsonl.gz", "rt", encoding="utf-8") as f:
        hh = [
            r["chosen"].split("\n\nHuman: ")[1].split("\n\nAssistant:")[0]
            for r in map(json.loads, f)
        ]
    out = {}
    for name, texts in (("gsm8k", gsm), ("gpteacher", code), ("hh", hh)):
        seen, uniq = set(), []
        for t in texts:
            k = " ".join(re.sub(r"[\W_]+", " ", t.casefold()).split())
            if k and k not in seen:
                seen.add(k)
                uniq.append(t)
        out[name] = uniq
    return out


def sentences(text: str) -> list[str]:
    return re.split(r"(?<=[.!?])\s+", text.strip())


def plant(text: str, kind: str, rng: random.Random, vocab: list[str]) -> str | None:
    words = text.split(" ")
    if kind == "case+spacing":
        w = [x.upper() if rng.random() < 0.3 else x.lower() for x in words]
        return "  ".join(w) if rng.random() < 0.5 else "\n".join(w)
    if kind == "punctuation":
        stripped = re.sub(r"[,.;:!?]", "", text)
        return stripped if stripped != text else text + "!!"
    if kind == "filler word":
        i = rng.randrange(len(words) + 1)
        return " ".join([*words[:i], rng.choice(FILLERS), *words[i:]])
    if kind == "word replaced":
        if len(words) < 2:
            return None
        i = rng.randrange(len(words))
        return " ".join([*words[:i], rng.choice(vocab), *words[i + 1 :]])
    parts = sentences(text)
    if len(parts) < 4:
        return None
    i = rng.randrange(len(parts))
    return " ".join(parts[:i] + parts[i + 1 :])


def pairs_of(texts: list[str], args, workers: int = 1):
    if args.method == "embedding":
        return embedding_pairs(texts, args.threshold)
    return minhash_pairs(
        texts, args.threshold, args.ngram, args.perms, args.bands, 0, workers=workers
    )


def quality(corpora: dict[str, list[str]], args) -> None:
    rng = random.Random(0)
    originals = [t for texts in corpora.values() for t in texts]
    vocab = sorted({w for t in originals[:3000] for w in t.split()})
    copies, planted = [], []  # (original index, kind)
    picks = [i for i in range(len(originals))]
    rng.shuffle(picks)
    for i in picks[: args.sample * 3]:
        for kind in KINDS:
            c = plant(originals[i], kind, rng, vocab)
            if c is not None and c != originals[i]:
                copies.append(c)
                planted.append((i, kind))
    texts = originals + copies
    started = time.perf_counter()
    pairs, sims = pairs_of(texts, args, args.workers)
    seconds = time.perf_counter() - started
    near = {tuple(p) for p, s in zip(pairs.tolist(), sims.tolist()) if s >= args.threshold}
    n = len(originals)
    setting = (
        f"minhash, ngram {args.ngram}, {args.perms} permutations in {args.bands} bands"
        if args.method == "minhash"
        else "embedding (static MiniLM, cosine)"
    )
    print(f"{setting}, threshold {args.threshold}: {len(texts):,} texts in {seconds:.1f} s")
    for kind in KINDS:
        mine = [(i, n + k) for k, (i, kd) in enumerate(planted) if kd == kind]
        found = sum(p in near for p in mine)
        print(f"  recall {kind:<17} {found / max(len(mine), 1):.3f}  ({found}/{len(mine)})")
    gsm = len(corpora["gsm8k"])
    false = [(i, j) for i, j in near if j < gsm]
    lost = {j for _, j in false}  # a false merge costs the later question
    print(
        f"  false merges among GSM8K train: {len(false)} pairs, {len(lost)} questions of "
        f"{gsm:,} lost ({len(lost) / gsm:.3%})"
    )
    other = [(i, j) for i, j in near if gsm <= j < n]
    print(f"  pairs among the other originals (GPTeacher, HH): {len(other)}")
    # greedy by rank, originals first (as a more trusted source): what goes
    removed, _, _ = greedy(pairs, sims, args.threshold, len(texts))
    print(
        f"  greedy by rank removes {int(removed[n:].sum()):,} of {len(copies):,} copies and "
        f"{int(removed[:n].sum())} of {n:,} originals ({int(removed[:gsm].sum())} GSM8K)"
    )


def joined_rows(data: Path, rows: int) -> list[str]:
    """`rows` instructions of real text, each two real items joined (as bench_e2e.py)."""
    rng = random.Random(0)
    items = [q for q, _ in real_items(data)[0]]
    return [f"{rng.choice(items)}\n\n{rng.choice(items)}" for _ in range(rows)]


def speed(data: Path, args) -> None:
    texts = joined_rows(data, args.rows)
    if args.method == "embedding":
        started = time.perf_counter()
        pairs, sims = embedding_pairs(texts, args.threshold)
        parts = {}
    else:
        parts = {}
        started = time.perf_counter()
        shingled = near_dedup.signatures(texts, args.ngram, args.perms, 0, args.workers)
        parts["signatures"] = time.perf_counter() - started
        pairs = near_dedup.candidates(shingled.sig, args.bands, shingled.sizes > 0, args.workers)
        parts["candidates"] = time.perf_counter() - started - sum(parts.values())
        found = len(pairs)
        estimated = near_dedup.estimate(pairs, shingled.sig, shingled.sizes, args.workers)
        pairs = pairs[estimated >= args.threshold - near_dedup.ESTIMATE_MARGIN]
        parts["estimate"] = time.perf_counter() - started - sum(parts.values())
        sims = near_dedup.similarity(pairs, shingled, args.workers)
        parts["exact check"] = time.perf_counter() - started - sum(parts.values())
    removed, _, _ = greedy(pairs, sims, args.threshold, len(texts))
    seconds = time.perf_counter() - started
    if parts:
        parts["greedy"] = seconds - sum(parts.values())
        print(
            f"speed: {len(texts):,} real rows in {seconds:.1f} s on {args.workers} threads "
            f"({found:,} candidate pairs, {len(pairs):,} checked exactly, "
            f"{int(np.count_nonzero(sims >= args.threshold)):,} near, "
            f"{int(removed.sum()):,} removed)"
        )
        print("  " + ", ".join(f"{k} {v:.1f}s" for k, v in parts.items()))
    else:
        print(
            f"speed: {len(texts):,} real rows in {seconds:.1f} s ({len(pairs):,} pairs at "
            f"cosine >= {args.threshold}, {int(removed.sum()):,} removed)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data")
    )
    parser.add_argument("--method", choices=["minhash", "embedding"], default="minhash")
    parser.add_argument("--sample", type=int, default=600, help="originals per corpus to copy")
    parser.add_argument(
        "--rows", type=int, default=1_000_000, help="rows for the speed run (0: skip)"
    )
    parser.add_argument(
        "--threshold",
        type=float,
        help=f"default: the manifest's ({NearDedup().threshold}) for minhash, "
        f"{EMBEDDING_THRESHOLD} for embedding",
    )
    parser.add_argument("--ngram", type=int, default=NearDedup().ngram)
    parser.add_argument("--perms", type=int, default=NearDedup().permutations)
    parser.add_argument("--bands", type=int, default=NearDedup().bands)
    parser.add_argument("--workers", type=int, default=2, help="threads (minhash)")
    parser.add_argument("--no-quality", action="store_true", help="the speed run only")
    args = parser.parse_args()
    if args.threshold is None:
        args.threshold = NearDedup().threshold if args.method == "minhash" else EMBEDDING_THRESHOLD
    data = Path(args.data)
    if not args.no_quality:
        quality(read(data), args)
    if args.rows:
        speed(data, args)


if __name__ == "__main__":
    main()
