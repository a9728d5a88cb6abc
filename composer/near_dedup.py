"""Near-duplicate dedup after exact dedup, confidence-ranked: the most trusted copy survives.

Two methods find pairs of near-duplicate dedup keys (the same text as the exact dedup's):

- `minhash` (default): MinHash LSH over word n-grams of the normalised key (lowercased,
  what is not a letter or digit made space). Vectorised: Arrow splits the words in C++,
  each distinct word is hashed once (pandas' fixed-key hash), n-grams combined with the
  splitmix64 mix of composer.draws, one seeded multiply-shift permutation per signature
  column, in chunks of rows on the build's `workers` threads (numpy and Arrow release the
  GIL). Bands of the signature make bucket keys, rows sharing a bucket are candidates,
  the signatures' estimate drops those far below the threshold, and each one left is kept
  only when the exact Jaccard of the two n-gram sets reaches the threshold (no estimate
  noise: a pair is near or not, the same on every machine and with any worker count).
- `embedding`: the static model's normalised vectors and faiss (inner product = cosine),
  for paraphrases; every pair at or above the cosine threshold. Exhaustive: mind the cost
  at millions of rows.

Clusters are formed greedily by rank, not as connected components: records are ranked as
exact dedup ranks them (confidence, then manifest order, then row order), and a record is
removed when it is near an earlier record that survives. Connected components chain: A
near B near C removes C even when A and C share little, and one long chain can swallow
distinct items. Greedy by rank removes a record only for a survivor it is itself near, and
names that survivor in `lost_to`.
"""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from composer.convert import Converted, dedup_key
from composer.dedup import priority
from composer.draws import _mix, generator

CONTAINED_MIN = 24  # n-grams of the smaller text for containment to count (see similarity)
CONTAINED = 0.95  # the share of the smaller text in the larger one for it to count
ESTIMATE_MARGIN = 0.15  # candidates estimated this far below the threshold are dropped
CHUNK = 1 << 20  # candidate pairs compared at once
ROWS_AT_ONCE = 16384  # texts shingled together (the same chunks whatever the workers)
WORD_BREAK = r"[^\p{L}\p{N}]+"  # RE2: a run of what is not a letter or a digit ([\W_]+)


def _words(texts: list[str | None]) -> tuple[pa.Array, np.ndarray]:
    """Every word of `texts`, lowercased, punctuation and spacing ignored, and the row of
    each (Arrow's C++ kernels: no Python string per word)."""
    text = pc.fill_null(pa.array(texts, pa.large_string()), "")
    split = pc.split_pattern(pc.replace_substring_regex(pc.utf8_lower(text), WORD_BREAK, " "), " ")
    flat, row = pc.list_flatten(split), pc.list_parent_indices(split)
    some = pc.not_equal(flat, "")
    return flat.filter(some), row.filter(some).to_numpy()


def normalise(text: str) -> list[str]:
    """The words of `text`, lowercased, punctuation and spacing ignored."""
    return _words([text])[0].to_pylist()


@dataclass
class NearResult:
    removed: dict[str, np.ndarray]  # source -> bool per kept record: a near-duplicate
    lost_to: dict[str, Counter]  # source -> {winning source: records lost to it}
    clusters: list[dict] = field(default_factory=list)  # a few, for the report
    similarities: np.ndarray = field(default_factory=lambda: np.zeros(0))  # of every pair

    def save(self, folder: Path) -> None:
        """A `near` cache entry: the masks end to end and the pairs' similarities (numpy),
        the rest as JSON."""
        names = list(self.removed)
        masks = [self.removed[n] for n in names]
        np.save(folder / "removed.npy", np.concatenate(masks) if masks else np.zeros(0, bool))
        np.save(folder / "similarities.npy", self.similarities)
        state = {
            "sources": [[n, len(m)] for n, m in zip(names, masks)],
            "lost_to": {n: dict(c) for n, c in self.lost_to.items()},
            "clusters": self.clusters,
        }
        (folder / "near.json").write_text(json.dumps(state, ensure_ascii=False), "utf-8")

    @classmethod
    def load(cls, folder: Path) -> NearResult:
        state = json.loads((folder / "near.json").read_text("utf-8"))
        flat = np.load(folder / "removed.npy")
        bounds = np.cumsum([0] + [n for _, n in state["sources"]])
        if len(flat) != bounds[-1]:
            raise ValueError(f"{len(flat)} flags for {bounds[-1]} records")
        return cls(
            removed={
                name: flat[bounds[i] : bounds[i + 1]]
                for i, (name, _) in enumerate(state["sources"])
            },
            lost_to={n: Counter(c) for n, c in state["lost_to"].items()},
            clusters=state["clusters"],
            similarities=np.load(folder / "similarities.npy"),
        )


def key_texts(table: pa.Table, kind: str, mode: str) -> list[str]:
    """Each record's dedup key text (what exact dedup hashed into its id)."""
    if kind == "text":
        return table.column("text").to_pylist()
    convs = table.column("conversations").to_pylist()
    chosen = table.column("chosen").to_pylist() if "chosen" in table.column_names else None
    rejected = table.column("rejected").to_pylist() if "rejected" in table.column_names else None
    return [
        dedup_key(
            kind,
            mode,
            turns,
            None,
            chosen[i] if chosen else None,
            rejected[i] if rejected else None,
        )
        for i, turns in enumerate(convs)
    ]


# ---------------------------------------------------------------- minhash


def shingles(texts: list[str | None], ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """(uint64 hash of each word n-gram, the row it belongs to), rows in order. A text of
    fewer words than `ngram` is one shingle; an empty text has none. Each distinct word is
    hashed once (pandas' fixed-key hash), n-grams combined with the splitmix64 mix."""
    flat, row = _words(texts)
    codes = pc.dictionary_encode(flat)
    distinct = codes.dictionary.to_numpy(zero_copy_only=False)
    h = pd.util.hash_array(distinct, categorize=False)[codes.indices.to_numpy()]
    lengths = np.bincount(row, minlength=len(texts))
    total = lengths[row]  # the words of each word's row
    pos = np.arange(len(row)) - (np.cumsum(lengths) - lengths)[row]  # index within its row
    with np.errstate(over="ignore"):
        acc = h.copy()
        for k in range(1, ngram):
            nxt = np.zeros_like(h)
            nxt[:-k] = h[k:]
            acc = np.where(pos + k < total, _mix(acc ^ np.uint64(k)) + nxt, acc)
    # an n-gram starts at every position with n words left, or at 0 of a short text
    keep = (pos + ngram <= total) | ((pos == 0) & (total < ngram))
    return acc[keep], row[keep]


def signatures(
    texts: list[str | None], ngram: int, perms: int, seed: int, workers: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """MinHash signatures (rows x perms, uint32) and each row's n-gram count. Per seeded
    multiply-shift permutation, the least hash of a row's n-grams; rows without any get
    the all-ones signature and are never candidates. Texts go ROWS_AT_ONCE at a time (memory
    stays bounded) on `workers` threads (numpy and Arrow release the GIL); each chunk's
    result is its own, so the signatures are the same whatever the number."""
    rng = generator(seed, "near_dedup", "minhash")
    a = rng.integers(1, 2**63, size=perms, dtype=np.uint64) | np.uint64(1)
    b = rng.integers(0, 2**63, size=perms, dtype=np.uint64)
    sig = np.full((len(texts), perms), np.iinfo(np.uint32).max, dtype=np.uint32)
    sizes = np.zeros(len(texts), dtype=np.int64)

    def chunk(lo: int) -> None:
        sh, row = shingles(texts[lo : lo + ROWS_AT_ONCE], ngram)
        sizes[lo : lo + ROWS_AT_ONCE] = np.bincount(
            row, minlength=len(texts[lo : lo + ROWS_AT_ONCE])
        )
        if len(sh) == 0:
            return
        starts = np.flatnonzero(np.r_[True, row[1:] != row[:-1]])
        present = lo + row[starts]
        v = np.empty_like(sh)
        with np.errstate(over="ignore"):
            for j in range(perms):
                np.multiply(sh, a[j], out=v)
                np.add(v, b[j], out=v)
                np.right_shift(v, np.uint64(32), out=v)
                sig[present, j] = np.minimum.reduceat(v, starts)

    with ThreadPoolExecutor(max(1, workers)) as pool:
        list(pool.map(chunk, range(0, len(texts), ROWS_AT_ONCE)))
    return sig, sizes


def candidates(sig: np.ndarray, bands: int, has: np.ndarray) -> np.ndarray:
    """Pairs (i < j), unique, sorted by (j, i): each row with the first (best-ranked) row of
    every band bucket it shares. At most `bands` pairs a row however large a bucket grows
    (a template shared by thousands of rows); the first row of a bucket is the one greedy
    keeps when the bucket is a cluster."""
    n, perms = sig.shape
    r = perms // bands
    codes = []  # i * n + j: one int64 a pair, for a fast unique
    rows = np.flatnonzero(has)
    for b in range(bands):
        keys = np.full(len(rows), np.uint64(b))
        with np.errstate(over="ignore"):
            for c in range(b * r, (b + 1) * r):
                keys = _mix(keys ^ sig[rows, c].astype(np.uint64))
        order = np.lexsort((rows, keys))
        k, members = keys[order], rows[order]
        first = np.r_[True, k[1:] != k[:-1]]
        leader = members[first][np.cumsum(first) - 1]
        codes.append(leader[~first] * n + members[~first])
    unique = np.unique(np.concatenate(codes)) if codes else np.zeros(0, dtype=np.int64)
    pairs = np.stack([unique // max(n, 1), unique % max(n, 1)], axis=1)
    return pairs[np.lexsort((pairs[:, 0], pairs[:, 1]))]


def estimate(pairs: np.ndarray, sig: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Each candidate pair's similarity as the signatures estimate it (see similarity): the
    share of equal signature columns estimates the Jaccard J, and J and the two n-gram
    counts estimate the intersection, J / (1 + J) * (|A| + |B|), so the containment too."""
    out = np.empty(len(pairs))
    for k in range(0, len(pairs), CHUNK):
        i, j = pairs[k : k + CHUNK, 0], pairs[k : k + CHUNK, 1]
        jaccard = (sig[i] == sig[j]).mean(axis=1)
        small = np.minimum(sizes[i], sizes[j])
        inter = jaccard / (1 + jaccard) * (sizes[i] + sizes[j])
        contained = inter / np.maximum(small, 1)
        counts = (small >= CONTAINED_MIN) & (contained >= CONTAINED - ESTIMATE_MARGIN)
        out[k : k + CHUNK] = np.where(counts, np.maximum(jaccard, contained), jaccard)
    return out


def similarity(pairs: np.ndarray, texts: list[str | None], ngram: int) -> np.ndarray:
    """For each pair, the exact Jaccard of the two rows' n-gram sets; or, when the smaller
    set has at least CONTAINED_MIN n-grams (a long prompt) and CONTAINED of them are in
    the other, that share, if larger: a long prompt with a sentence dropped is a subset of
    the original, whose Jaccard falls with the sentence's length. Only the rows of `pairs`
    are shingled again (few, after the estimate)."""
    rows = np.unique(pairs)
    sets, bounds = [], [np.zeros(1, dtype=np.int64)]
    for lo in range(0, len(rows), ROWS_AT_ONCE):
        sh, row = shingles([texts[r] for r in rows[lo : lo + ROWS_AT_ONCE].tolist()], ngram)
        order = np.lexsort((sh, row))
        sh, row = sh[order], row[order]
        uniq = np.r_[True, (sh[1:] != sh[:-1]) | (row[1:] != row[:-1])]
        sets.append(sh[uniq])
        counts = np.bincount(row[uniq], minlength=len(rows[lo : lo + ROWS_AT_ONCE]))
        bounds.append(bounds[-1][-1] + np.cumsum(counts))
    sh, bounds = np.concatenate(sets or [np.zeros(0, np.uint64)]), np.concatenate(bounds)
    out = np.empty(len(pairs))
    for p, (i, j) in enumerate(np.searchsorted(rows, pairs).tolist()):
        a, b = sh[bounds[i] : bounds[i + 1]], sh[bounds[j] : bounds[j + 1]]
        inter = len(np.intersect1d(a, b, assume_unique=True))
        small = min(len(a), len(b))
        out[p] = inter / (len(a) + len(b) - inter) if len(a) + len(b) else 0.0
        if small >= CONTAINED_MIN and inter >= CONTAINED * small:
            out[p] = max(out[p], inter / small)
    return out


def minhash_pairs(
    texts: list[str | None],
    threshold: float,
    ngram: int,
    perms: int,
    bands: int,
    seed: int,
    workers: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs (sorted by (later, earlier)) and their exact similarity."""
    sig, sizes = signatures(texts, ngram, perms, seed, workers)
    pairs = candidates(sig, bands, sizes > 0)
    # the estimate drops the candidates far below the threshold before the exact check
    # (chance bucket collisions are most of them); the margin covers its error
    pairs = pairs[estimate(pairs, sig, sizes) >= threshold - ESTIMATE_MARGIN]
    return pairs, similarity(pairs, texts, ngram)


# ---------------------------------------------------------------- embedding

SEARCH_BATCH = 16384


def embedding_pairs(texts: list[str], threshold: float) -> tuple[np.ndarray, np.ndarray]:
    import faiss

    from composer.embeddings import StaticEmbedder

    vectors = np.ascontiguousarray(StaticEmbedder().encode(texts), dtype=np.float32)
    faiss.normalize_L2(vectors)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    pairs, sims = [], []
    for lo in range(0, len(texts), SEARCH_BATCH):
        lims, dist, ids = index.range_search(vectors[lo : lo + SEARCH_BATCH], threshold - 1e-6)
        q = np.repeat(np.arange(lo, lo + len(lims) - 1), np.diff(lims).astype(np.int64))
        ok = ids < q  # each pair once, the earlier record first
        pairs.append(np.stack([ids[ok], q[ok]], axis=1))
        sims.append(np.minimum(dist[ok], 1.0))
    p, s = np.concatenate(pairs).astype(np.int64), np.concatenate(sims).astype(np.float64)
    order = np.lexsort((p[:, 0], p[:, 1]))
    return p[order], np.round(s[order], 6)


# ---------------------------------------------------------------- clusters


def greedy(pairs: np.ndarray, sims: np.ndarray, threshold: float, n: int):
    """(removed, winner, similarity) per row: a row goes when it is near an earlier row
    that stays; its winner is the earliest such row. Pairs sorted by (later, earlier)."""
    removed = np.zeros(n, dtype=bool)
    winner = np.full(n, -1, dtype=np.int64)
    sim = np.zeros(n)
    near = sims >= threshold
    for (i, j), s in zip(pairs[near].tolist(), sims[near].tolist()):
        if not removed[i] and not removed[j]:
            removed[j], winner[j], sim[j] = True, i, s
    return removed, winner, sim


def near_dedup(
    kept: dict[str, pa.Table],
    sources: list[Converted],
    spec,
    mode: str,
    seed: int,
    workers: int = 1,
) -> NearResult:
    """Remove near-duplicates among the records exact dedup `kept`, per kind."""
    removed = {name: np.zeros(t.num_rows, dtype=bool) for name, t in kept.items()}
    lost_to: dict[str, Counter] = {s.source.name: Counter() for s in sources}
    clusters: list[dict] = []
    all_sims = []
    for kind in ("sft", "dpo", "text"):
        group = [s for s in priority(sources) if s.plugin.kind == kind]
        if not group:
            continue
        names = [s.source.name for s in group]
        texts = [t for name in names for t in key_texts(kept[name], kind, mode)]
        owner = np.repeat(np.arange(len(names)), [kept[n].num_rows for n in names])
        if spec.method == "embedding":
            pairs, sims = embedding_pairs(texts, spec.threshold)
        else:
            pairs, sims = minhash_pairs(
                texts, spec.threshold, spec.ngram, spec.permutations, spec.bands, seed, workers
            )
        all_sims.append(sims)
        gone, winner, sim = greedy(pairs, sims, spec.threshold, len(texts))
        offset = 0
        for name in names:
            n = kept[name].num_rows
            removed[name] = gone[offset : offset + n]
            for w, count in Counter(owner[winner[offset : offset + n][removed[name]]]).items():
                lost_to[name][names[w]] += count
            offset += n
        for w in np.unique(winner[gone])[:5].tolist():
            losers = np.flatnonzero(winner == w)[:3]
            clusters.append(
                {
                    "kind": kind,
                    "winner": {"source": names[owner[w]], "text": texts[w]},
                    "losers": [
                        {
                            "source": names[owner[j]],
                            "text": texts[j],
                            "similarity": round(float(sim[j]), 3),
                        }
                        for j in losers.tolist()
                    ],
                }
            )
    sims = np.concatenate(all_sims) if all_sims else np.zeros(0)
    return NearResult(removed=removed, lost_to=lost_to, clusters=clusters, similarities=sims)
