"""Near-duplicate dedup after exact dedup, confidence-ranked: the most trusted copy survives.

Two methods find pairs of near-duplicate dedup keys (the same text as the exact dedup's):

- `minhash` (default): MinHash LSH over word n-grams of the normalised key (casefolded,
  punctuation made space, runs of space made one). Vectorised: words hashed by pandas'
  fixed-key hash, n-grams combined with the splitmix64 mix of composer.draws, one seeded
  multiply-shift permutation per signature column (threads: numpy releases the GIL), bands
  of the signature make bucket keys, rows sharing a bucket are candidates, and each
  candidate is kept only when the exact Jaccard of the two n-gram sets reaches the
  threshold (no estimate noise: a pair is near or not, the same on every machine).
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

import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from composer.convert import Converted, dedup_key
from composer.dedup import priority
from composer.draws import _mix, generator

CONTAINED_MIN = 24  # n-grams of the smaller text for containment to count (see similarity)
CONTAINED = 0.95  # the share of the smaller text in the larger one for it to count
ESTIMATE_MARGIN = 0.3  # candidates estimated this far below the threshold are dropped
GROUP_ALL_PAIRS = 64  # buckets up to this size pair every member; larger: a window of it
CHUNK = 1 << 20  # candidate pairs compared at once
_PUNCT = re.compile(r"[\W_]+", re.UNICODE)


def normalise(text: str) -> list[str]:
    """The words of `text`, casefolded, punctuation and spacing ignored."""
    return _PUNCT.sub(" ", text.casefold()).split()


@dataclass
class NearResult:
    removed: dict[str, np.ndarray]  # source -> bool per kept record: a near-duplicate
    lost_to: dict[str, Counter]  # source -> {winning source: records lost to it}
    clusters: list[dict] = field(default_factory=list)  # a few, for the report
    similarities: np.ndarray = field(default_factory=lambda: np.zeros(0))  # of every pair


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


def shingles(texts: list[str], ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """(uint64 hash of each word n-gram, the row it belongs to), rows in order. A text of
    fewer words than `ngram` is one shingle; an empty text has none."""
    words = [normalise(t or "") for t in texts]
    lengths = np.fromiter((len(w) for w in words), dtype=np.int64, count=len(words))
    flat = np.array([w for ws in words for w in ws], dtype=object)
    h = pd.util.hash_array(flat, categorize=True) if len(flat) else np.zeros(0, np.uint64)
    row = np.repeat(np.arange(len(texts)), lengths)
    start = np.repeat(np.cumsum(lengths) - lengths, lengths)
    pos = np.arange(len(flat)) - start  # word index within its row
    with np.errstate(over="ignore"):
        acc = h.copy()
        for k in range(1, ngram):
            nxt = np.zeros_like(h)
            nxt[:-k] = h[k:]
            ok = pos + k < np.repeat(lengths, lengths)
            acc = np.where(ok, _mix(acc ^ np.uint64(k)) + nxt, acc)
    # an n-gram starts at every position with n words left, or at 0 of a short text
    keep = (pos + ngram <= np.repeat(lengths, lengths)) | (
        (pos == 0) & (np.repeat(lengths, lengths) < ngram)
    )
    return acc[keep], row[keep]


def signatures(sh: np.ndarray, row: np.ndarray, n_rows: int, perms: int, seed: int) -> np.ndarray:
    """MinHash signatures (n_rows x perms, uint32): per seeded multiply-shift permutation,
    the least hash of a row's shingles. Rows without shingles get the all-ones signature
    and are never candidates (see candidates)."""
    rng = generator(seed, "near_dedup", "minhash")
    a = rng.integers(1, 2**63, size=perms, dtype=np.uint64) | np.uint64(1)
    b = rng.integers(0, 2**63, size=perms, dtype=np.uint64)
    out = np.full((n_rows, perms), np.iinfo(np.uint32).max, dtype=np.uint32)
    if len(sh) == 0:
        return out
    starts = np.flatnonzero(np.r_[True, row[1:] != row[:-1]])
    present = row[starts]

    def one(j: int) -> None:
        with np.errstate(over="ignore"):
            v = ((sh * a[j] + b[j]) >> np.uint64(32)).astype(np.uint32)
        out[present, j] = np.minimum.reduceat(v, starts)

    with ThreadPoolExecutor() as pool:
        list(pool.map(one, range(perms)))
    return out


def candidates(sig: np.ndarray, bands: int, has: np.ndarray) -> np.ndarray:
    """Pairs (i < j) of rows that share a band's bucket, unique, sorted by (j, i)."""
    perms = sig.shape[1]
    r = perms // bands
    pairs = []
    rows = np.flatnonzero(has)
    for b in range(bands):
        keys = np.full(len(rows), np.uint64(b))
        with np.errstate(over="ignore"):
            for c in range(b * r, (b + 1) * r):
                keys = _mix(keys ^ sig[rows, c].astype(np.uint64))
        order = np.lexsort((rows, keys))
        k, members = keys[order], rows[order]
        boundary = np.r_[True, k[1:] != k[:-1]]
        group = np.cumsum(boundary) - 1
        first = np.flatnonzero(boundary)
        size = np.diff(np.r_[first, len(k)])
        rank = np.arange(len(k)) - first[group]  # position within its bucket
        for back in range(1, min(int(size.max(initial=1)), GROUP_ALL_PAIRS + 1)):
            ok = rank >= back
            idx = np.flatnonzero(ok)
            pairs.append(np.stack([members[idx - back], members[idx]], axis=1))
    if not pairs:
        return np.zeros((0, 2), dtype=np.int64)
    allp = np.concatenate(pairs)
    allp = np.unique(allp, axis=0)
    return allp[np.lexsort((allp[:, 0], allp[:, 1]))]


def similarity(pairs: np.ndarray, sh: np.ndarray, row: np.ndarray, n_rows: int) -> np.ndarray:
    """For each pair, the exact Jaccard of the two rows' n-gram sets; or, when the smaller
    set has at least CONTAINED_MIN n-grams (a long prompt) and CONTAINED of them are in
    the other, that share, if larger: a long prompt with a sentence dropped is a subset of
    the original, whose Jaccard falls with the sentence's length."""
    order = np.lexsort((sh, row))
    sh, row = sh[order], row[order]
    uniq = np.r_[True, (sh[1:] != sh[:-1]) | (row[1:] != row[:-1])]
    sh, row = sh[uniq], row[uniq]
    bounds = np.searchsorted(row, np.arange(n_rows + 1))
    out = np.empty(len(pairs))
    for p, (i, j) in enumerate(pairs.tolist()):
        a, b = sh[bounds[i] : bounds[i + 1]], sh[bounds[j] : bounds[j + 1]]
        inter = len(np.intersect1d(a, b, assume_unique=True))
        small = min(len(a), len(b))
        out[p] = inter / (len(a) + len(b) - inter) if len(a) + len(b) else 0.0
        if small >= CONTAINED_MIN and inter >= CONTAINED * small:
            out[p] = max(out[p], inter / small)
    return out


def minhash_pairs(
    texts: list[str], threshold: float, ngram: int, perms: int, bands: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    sh, row = shingles(texts, ngram)
    sig = signatures(sh, row, len(texts), perms, seed)
    has = np.bincount(row, minlength=len(texts)) > 0
    pairs = candidates(sig, bands, has)
    # the signatures' estimate drops candidates far below the threshold before the exact
    # check (chance bucket collisions are most of them); the margin covers its error
    # and a contained long prompt's lower Jaccard
    estimate = np.concatenate(
        [
            (sig[pairs[k : k + CHUNK, 0]] == sig[pairs[k : k + CHUNK, 1]]).mean(axis=1)
            for k in range(0, len(pairs), CHUNK)
        ]
        or [np.zeros(0)]
    )
    pairs = pairs[estimate >= threshold - ESTIMATE_MARGIN]
    sims = similarity(pairs, sh, row, len(texts))
    return pairs, sims


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
    kept: dict[str, pa.Table], sources: list[Converted], spec, mode: str, seed: int
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
                texts, spec.threshold, spec.ngram, spec.permutations, spec.bands, seed
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
