"""Benchmark: near-duplicate dedup (composer.near_dedup) on real text, and its speed.

    python bench/bench_near_dedup.py [--sample 600] [--rows 1000000] [--threshold 0.7]
                                     [--ngram 2] [--data ../shared/data]

Quality: originals from GSM8K train (questions), GPTeacher codegen (instruction and input)
and Anthropic HH (the first human turn); a seeded sample of them gets planted near-copies of
five kinds (case and spacing, punctuation, a filler word added, one word replaced, a
sentence dropped from a prompt of 4+ sentences). Recall: the share of copies found near
their original at the threshold. False merges: pairs of distinct GSM8K train questions at
or above the threshold (same templates, other numbers: other problems), per question.
Speed: the stage alone (key texts in, pairs and the greedy clusters out) on `--rows`
synthetic instructions like bench_build.py's; compare with `bench_build.py --rows N`.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import time
from pathlib import Path

from composer.manifest import NearDedup
from composer.near_dedup import greedy, minhash_pairs

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
    pairs, sims = minhash_pairs(texts, args.threshold, args.ngram, args.perms, args.bands, 0)
    seconds = time.perf_counter() - started
    near = {tuple(p) for p, s in zip(pairs.tolist(), sims.tolist()) if s >= args.threshold}
    n = len(originals)
    print(
        f"ngram {args.ngram}, threshold {args.threshold}, {args.perms} permutations in "
        f"{args.bands} bands: {len(texts):,} texts in {seconds:.1f} s"
    )
    for kind in KINDS:
        mine = [(i, n + k) for k, (i, kd) in enumerate(planted) if kd == kind]
        found = sum(p in near for p in mine)
        print(f"  recall {kind:<17} {found / max(len(mine), 1):.3f}  ({found}/{len(mine)})")
    gsm = len(corpora["gsm8k"])
    false = [(i, j) for i, j in near if j < gsm]
    print(
        f"  false merges among GSM8K train: {len(false)} pairs, "
        f"{len({j for _, j in false})} questions of {gsm:,} "
        f"({len({j for _, j in false}) / gsm:.3%})"
    )
    other = [(i, j) for i, j in near if gsm <= j < n]
    print(f"  pairs among the other originals: {len(other)}")


WORDS = (
    "alpha beta gamma delta river mountain city number answer question explain compute "
    "history science code model data value system network energy"
).split()


def speed(args) -> None:
    rng = random.Random(0)
    texts = [
        f"Task {i}: {' '.join(rng.choice(WORDS) for _ in range(25))}?" for i in range(args.rows)
    ]
    started = time.perf_counter()
    pairs, sims = minhash_pairs(texts, args.threshold, args.ngram, args.perms, args.bands, 0)
    removed, _, _ = greedy(pairs, sims, args.threshold, len(texts))
    seconds = time.perf_counter() - started
    print(
        f"speed: {len(texts):,} rows in {seconds:.1f} s ({len(pairs):,} candidate pairs, "
        f"{int(removed.sum()):,} removed)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data")
    )
    parser.add_argument("--sample", type=int, default=600, help="originals per corpus to copy")
    parser.add_argument(
        "--rows", type=int, default=1_000_000, help="rows for the speed run (0: skip)"
    )
    parser.add_argument("--threshold", type=float, default=NearDedup().threshold)
    parser.add_argument("--ngram", type=int, default=2)
    parser.add_argument("--perms", type=int, default=64)
    parser.add_argument("--bands", type=int, default=16)
    args = parser.parse_args()
    quality(read(Path(args.data)), args)
    if args.rows:
        speed(args)


if __name__ == "__main__":
    main()
