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
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from composer import held
from composer.cache import StageCache
from composer.convert import Converted, dedup_key
from composer.dedup import priority
from composer.draws import _mix, generator
from composer.engines import Engine
from composer.records import HUMAN_SIDE

CONTAINED_MIN = 24  # n-grams of the smaller text for containment to count (see similarity)
CONTAINED = 0.95  # the share of the smaller text in the larger one for it to count
ESTIMATE_MARGIN = 0.15  # candidates estimated this far below the threshold are dropped
CHUNK = 1 << 20  # candidate pairs estimated at once
HASH_BITS = 50  # an n-gram's hash as compared; a row (or pair) number in the 14 bits above
HASH_MASK = np.uint64((1 << HASH_BITS) - 1)
ROWS_AT_ONCE = 1 << (
    64 - HASH_BITS
)  # texts shingled together (the same chunks whatever the workers)
PAIRS_AT_ONCE = 1 << (64 - HASH_BITS)  # candidate pairs checked together
Texts = list[str | None] | pa.Array  # key texts: a list, or Arrow strings (no Python str each)
PERM_BLOCK = 2048  # rows whose n-grams are permuted together (a cache's worth)
SMALL_BUCKET = 8  # a band bucket this small gives all its pairs (see candidates)
WORD_BREAK = r"[^\p{L}\p{N}]+"  # RE2: a run of what is not a letter or a digit ([\W_]+)
# the same for ASCII, a byte at a time: letters lowercased, digits kept, the rest a space
_ASCII = np.full(256, ord(" "), dtype=np.uint8)
_ASCII[np.frombuffer(b"0123456789abcdefghijklmnopqrstuvwxyz", np.uint8)] = np.frombuffer(
    b"0123456789abcdefghijklmnopqrstuvwxyz", np.uint8
)
_ASCII[np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", np.uint8)] = np.frombuffer(
    b"abcdefghijklmnopqrstuvwxyz", np.uint8
)


def _normalised(texts: Texts) -> pa.LargeStringArray:
    """`texts` lowercased, every run of what is not a letter or digit a space: ASCII texts
    (most) through a byte table in numpy, the others through Arrow's Unicode regex."""
    text = texts.cast(pa.large_string()) if isinstance(texts, pa.Array) else texts
    text = pc.fill_null(pa.array(text, pa.large_string()), "")
    _, offsets, data = text.buffers()
    offsets = np.frombuffer(offsets, np.int64)[text.offset : text.offset + len(text) + 1]
    data = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
    fast = pa.LargeStringArray.from_buffers(
        len(text),
        pa.py_buffer(offsets - offsets[0]),
        pa.py_buffer(_ASCII[data[offsets[0] : offsets[-1]]]),
    )
    other = pc.invert(pc.string_is_ascii(text))
    if not pc.any(other).as_py():
        return fast
    slow = text.filter(other)
    slow = pc.replace_substring_regex(pc.utf8_lower(slow), WORD_BREAK, " ")
    return pc.replace_with_mask(fast, other, slow)


def _words(texts: Texts) -> tuple[pa.Array, np.ndarray]:
    """Every word of `texts`, lowercased, punctuation and spacing ignored, and the row of
    each (Arrow's C++ kernels and numpy: no Python string per word)."""
    split = pc.ascii_split_whitespace(_normalised(texts))
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
    # of every pair (as a build on an engine that holds data has them: each kind's reference)
    similarities: np.ndarray | list = field(default_factory=lambda: np.zeros(0))

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
    def load(cls, folder: Path, similarities: bool = True) -> NearResult:
        """An entry (without its similarities: a driver that holds no data needs none)."""
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
            similarities=np.load(folder / "similarities.npy") if similarities else np.zeros(0),
        )


def key_texts(table: pa.Table, kind: str, mode: str) -> pa.LargeStringArray:
    """Each record's dedup key text (what exact dedup hashed into its id). A text's, and an
    SFT record's first human turn (`instruction`), are taken by Arrow; other keys through
    `dedup_key`, row by row."""
    if kind == "text":
        return table.column("text").combine_chunks().cast(pa.large_string())
    conv = table.column("conversations").combine_chunks()
    if kind == "sft" and mode == "instruction":
        turns = pc.list_flatten(conv)
        froms = pc.struct_field(turns, "from")
        human = pc.is_in(froms, pa.array(HUMAN_SIDE, froms.type)).to_numpy(False)
        at = np.flatnonzero(human)
        parent = pc.list_parent_indices(conv).to_numpy()[at]
        first = at[np.r_[True, parent[1:] != parent[:-1]]] if len(at) else at
        if len(first) == table.num_rows:  # every record has a human turn (as convert checks)
            values = pc.struct_field(turns, "value").take(pa.array(first))
            return values.cast(pa.large_string())
    convs = conv.to_pylist()
    chosen = table.column("chosen").to_pylist() if "chosen" in table.column_names else None
    rejected = table.column("rejected").to_pylist() if "rejected" in table.column_names else None
    keys = [
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
    return pa.array(keys, pa.large_string())


# ---------------------------------------------------------------- minhash


def shingles(texts: Texts, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """(uint64 hash of each word n-gram, the row it belongs to), in no set order. A text of
    fewer words than `ngram` is one shingle of all its words; an empty text has none. Each
    distinct word is hashed once (pandas' fixed-key hash), n-grams combined with the
    splitmix64 mix."""
    flat, row = _words(texts)
    codes = pc.dictionary_encode(flat)
    distinct = codes.dictionary.to_numpy(zero_copy_only=False)
    h = pd.util.hash_array(distinct, categorize=False)[codes.indices.to_numpy()]
    words = np.bincount(row, minlength=len(texts))
    m = max(len(h) - ngram + 1, 0)  # the n-grams that start at each word, across rows too
    with np.errstate(over="ignore"):
        acc = h[:m]
        for k in range(1, ngram):
            acc = _mix(acc ^ np.uint64(k)) + h[k : k + m]
        inside = row[:m] == row[ngram - 1 : ngram - 1 + m]  # first and last word in one row
        sh, of = [acc[inside]], [row[:m][inside]]
        short = np.flatnonzero((words > 0) & (words < ngram))
        if len(short):
            first = (np.cumsum(words) - words)[short]
            acc = h[first]
            for k in range(1, ngram - 1):
                more = words[short] > k
                acc = np.where(
                    more, _mix(acc ^ np.uint64(k)) + h[np.where(more, first + k, 0)], acc
                )
            sh.append(acc)
            of.append(short)
    return np.concatenate(sh), np.concatenate(of)


def shingle_sets(texts: Texts, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """Each text's n-gram set: the top HASH_BITS bits of the hashes, sorted and distinct,
    rows end to end, and the bounds of each row's (one sort of row and hash packed in a
    uint64)."""
    if len(texts) > 1 << (64 - HASH_BITS):
        raise ValueError(f"at most {1 << (64 - HASH_BITS)} texts at once")
    sh, row = shingles(texts, ngram)
    key = (row.astype(np.uint64) << np.uint64(HASH_BITS)) | (sh >> np.uint64(64 - HASH_BITS))
    key.sort()
    key = key[np.r_[True, key[1:] != key[:-1]]] if len(key) else key
    counts = np.bincount((key >> np.uint64(HASH_BITS)).astype(np.intp), minlength=len(texts))
    return key & HASH_MASK, np.r_[0, np.cumsum(counts)]


@dataclass
class Signatures:
    """MinHash signatures (rows x perms, uint32) and the n-gram sets they were taken of
    (shingle_sets' layout, kept for the exact check of the candidate pairs)."""

    sig: np.ndarray
    sets: np.ndarray
    bounds: np.ndarray

    @property
    def sizes(self) -> np.ndarray:
        return np.diff(self.bounds)

    @classmethod
    def joined(cls, parts: list[Signatures]) -> Signatures:
        """The rows of `parts`, end to end: what `signatures` gives for their texts end to
        end (each row's signature and n-gram set is its own)."""
        counts = np.concatenate([p.sizes for p in parts])
        return cls(
            np.concatenate([p.sig for p in parts]),
            np.concatenate([p.sets for p in parts]),
            np.r_[0, np.cumsum(counts)],
        )


def signatures(texts: Texts, ngram: int, perms: int, seed: int, workers: int = 1) -> Signatures:
    """Per seeded multiply-shift permutation, the least hash of a row's n-grams (the top 32
    bits of the least product); rows without any get the all-ones signature and are never
    candidates. Texts go ROWS_AT_ONCE at a time (memory stays bounded) on `workers` threads
    (numpy and Arrow release the GIL); each chunk's result is its own, so the signatures
    are the same whatever the number."""
    rng = generator(seed, "near_dedup", "minhash")
    a = rng.integers(1, 2**63, size=perms, dtype=np.uint64) | np.uint64(1)
    sig = np.full((len(texts), perms), np.iinfo(np.uint32).max, dtype=np.uint32)

    def chunk(lo: int) -> tuple[np.ndarray, np.ndarray]:
        sets, bounds = shingle_sets(texts[lo : lo + ROWS_AT_ONCE], ngram)
        starts = bounds[:-1][np.diff(bounds) > 0]
        if len(starts) == 0:
            return sets, np.diff(bounds)
        present = lo + np.flatnonzero(np.diff(bounds) > 0)
        mins = np.empty((len(starts), perms), dtype=np.uint32)
        ends = np.r_[starts, len(sets)]
        # PERM_BLOCK rows at a time, so that their n-grams stay in the cache for every
        # permutation
        for r in range(0, len(starts), PERM_BLOCK):
            block = sets[ends[r] : ends[min(r + PERM_BLOCK, len(starts))]]
            v = np.empty_like(block)
            within = starts[r : r + PERM_BLOCK] - ends[r]
            with np.errstate(over="ignore"):
                for j in range(perms):
                    np.multiply(block, a[j], out=v)
                    mins[r : r + PERM_BLOCK, j] = np.minimum.reduceat(v, within) >> np.uint64(32)
        sig[present] = mins
        return sets, np.diff(bounds)

    with ThreadPoolExecutor(max(1, workers)) as pool:
        done = list(pool.map(chunk, range(0, len(texts), ROWS_AT_ONCE)))
    sets = np.concatenate([s for s, _ in done]) if done else np.zeros(0, np.uint64)
    counts = np.concatenate([c for _, c in done]) if done else np.zeros(0, np.int64)
    return Signatures(sig, sets, np.r_[0, np.cumsum(counts)])


def _bucket_pairs(keys: np.ndarray, rows: np.ndarray, row_bits: int, n: int, small: int):
    """Pair codes (j * n + i) of the rows that share a key: every pair in a bucket of at most
    `small` rows, each row with the bucket's first (least) row in a larger one. The key's top
    bits and the row share one uint64, so one sort groups the buckets with their rows in
    order; a chance collision of the shortened keys only adds a candidate."""
    packed = ((keys >> np.uint64(row_bits)) << np.uint64(row_bits)) | rows
    packed.sort()
    members = (packed & np.uint64((1 << row_bits) - 1)).astype(np.int64)
    bucket = (
        np.cumsum(
            np.r_[True, (packed[1:] >> np.uint64(row_bits)) != (packed[:-1] >> np.uint64(row_bits))]
        )
        - 1
    )
    first = np.searchsorted(bucket, np.arange(bucket[-1] + 1 if len(bucket) else 0))
    size = np.diff(np.r_[first, len(bucket)])
    large = size[bucket] > small
    later = np.arange(len(bucket)) != first[bucket]
    codes = [members[later & large] * n + members[first[bucket]][later & large]]
    for d in range(1, small):  # the pairs d apart in the small buckets
        same = (bucket[d:] == bucket[:-d]) & ~large[d:]
        codes.append(members[d:][same] * n + members[:-d][same])
    return np.concatenate(codes)


def candidates(sig: np.ndarray, bands: int, has: np.ndarray, workers: int = 1) -> np.ndarray:
    """Pairs (i < j), unique, sorted by (j, i), of the rows that share a band bucket: every
    pair in a bucket of at most SMALL_BUCKET rows; in a larger one (a template shared by
    thousands of rows) each row with the bucket's first (best-ranked) row, the one greedy
    keeps when the bucket is a cluster, so at most `bands` pairs a row. Rows with the same
    whole signature (the same n-grams after normalising) are paired with the first of them
    too, so that such a copy is never missed in a large bucket."""
    n, perms = sig.shape
    r = perms // bands
    row_bits = max(1, (n - 1).bit_length())
    if row_bits > 40:
        raise ValueError(f"{n} rows: at most 2**40 at once")
    rows = np.flatnonzero(has).astype(np.uint64)
    columns = sig.view(np.uint64) if r % 2 == 0 else sig.astype(np.uint64)
    if len(rows) < n:
        columns = columns[rows.astype(np.intp)]
    per_band = columns.shape[1] // bands

    def band(b: int) -> np.ndarray:  # j * n + i: one int64 a pair, sorted as (j, i)
        with np.errstate(over="ignore"):
            if b == bands:  # the whole signature
                keys = np.full(len(rows), np.uint64(bands))
                for c in range(columns.shape[1]):
                    keys = _mix(keys ^ columns[:, c])
                return _bucket_pairs(keys, rows, row_bits, n, 1)
            keys = np.full(len(rows), np.uint64(b))
            for c in range(b * per_band, (b + 1) * per_band):
                keys = _mix(keys ^ columns[:, c])
            return _bucket_pairs(keys, rows, row_bits, n, SMALL_BUCKET)

    with ThreadPoolExecutor(max(1, workers)) as pool:
        codes = list(pool.map(band, range(bands + 1)))
    unique = np.concatenate(codes)
    unique.sort()
    unique = unique[np.r_[True, unique[1:] != unique[:-1]]] if len(unique) else unique
    return np.stack([unique % max(n, 1), unique // max(n, 1)], axis=1)


def estimate(pairs: np.ndarray, sig: np.ndarray, sizes: np.ndarray, workers: int = 1) -> np.ndarray:
    """Each candidate pair's similarity as the signatures estimate it (see similarity): the
    share of equal signature columns estimates the Jaccard J, and J and the two n-gram
    counts estimate the intersection, J / (1 + J) * (|A| + |B|), so the containment too.
    CHUNK pairs at a time, on `workers` threads."""
    out = np.empty(len(pairs))

    def chunk(k: int) -> None:
        i, j = pairs[k : k + CHUNK, 0], pairs[k : k + CHUNK, 1]
        jaccard = np.count_nonzero(sig[i] == sig[j], axis=1) / sig.shape[1]
        small = np.minimum(sizes[i], sizes[j])
        inter = jaccard / (1 + jaccard) * (sizes[i] + sizes[j])
        contained = inter / np.maximum(small, 1)
        counts = (small >= CONTAINED_MIN) & (contained >= CONTAINED - ESTIMATE_MARGIN)
        out[k : k + CHUNK] = np.where(counts, np.maximum(jaccard, contained), jaccard)

    with ThreadPoolExecutor(max(1, workers)) as pool:
        list(pool.map(chunk, range(0, len(pairs), CHUNK)))
    return out


def _gather(sets: np.ndarray, bounds: np.ndarray, rows: np.ndarray, tag: np.ndarray):
    """The n-gram sets of `rows` end to end, each element or-ed with its row's tag."""
    lengths = bounds[rows + 1] - bounds[rows]
    before = np.cumsum(lengths) - lengths
    index = np.repeat(bounds[rows] - before, lengths) + np.arange(lengths.sum())
    return sets[index] | np.repeat(tag, lengths), lengths


def similarity(pairs: np.ndarray, shingled: Signatures, workers: int = 1) -> np.ndarray:
    """For each pair, the exact Jaccard of the two rows' n-gram sets; or, when the smaller
    set has at least CONTAINED_MIN n-grams (a long prompt) and CONTAINED of them are in
    the other, that share, if larger: a long prompt with a sentence dropped is a subset of
    the original, whose Jaccard falls with the sentence's length. Vectorised: PAIRS_AT_ONCE
    pairs' two sets, each element tagged with its pair in the bits above the hash, make two
    sorted runs; a stable sort merges them and the equal neighbours are the intersection."""
    out = np.empty(len(pairs))
    sets, bounds = shingled.sets, shingled.bounds

    def chunk(lo: int) -> None:
        p = pairs[lo : lo + PAIRS_AT_ONCE]
        tag = np.arange(len(p), dtype=np.uint64) << np.uint64(HASH_BITS)
        a, la = _gather(sets, bounds, p[:, 0], tag)
        b, lb = _gather(sets, bounds, p[:, 1], tag)
        merged = np.sort(np.concatenate([a, b]), kind="stable")  # two runs: a merge
        same = merged[1:][merged[1:] == merged[:-1]] >> np.uint64(HASH_BITS)
        inter = np.bincount(same.astype(np.intp), minlength=len(p))
        union = la + lb - inter
        jaccard = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
        small = np.minimum(la, lb)
        contained = (small >= CONTAINED_MIN) & (inter >= CONTAINED * small)
        out[lo : lo + len(p)] = np.where(
            contained, np.maximum(jaccard, inter / np.maximum(small, 1)), jaccard
        )

    with ThreadPoolExecutor(max(1, workers)) as pool:
        list(pool.map(chunk, range(0, len(pairs), PAIRS_AT_ONCE)))
    return out


def minhash_pairs(
    texts: Texts,
    threshold: float,
    ngram: int,
    perms: int,
    bands: int,
    seed: int,
    workers: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs (sorted by (later, earlier)) and their exact similarity."""
    shingled = signatures(texts, ngram, perms, seed, workers)
    return shingled_pairs(shingled, threshold, bands, workers)


def shingled_pairs(
    shingled: Signatures, threshold: float, bands: int, workers: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """`minhash_pairs` from the texts' signatures."""
    pairs = candidates(shingled.sig, bands, shingled.sizes > 0, workers)
    # the estimate drops the candidates far below the threshold before the exact check
    # (chance bucket collisions are most of them); the margin covers its error
    estimated = estimate(pairs, shingled.sig, shingled.sizes, workers)
    pairs = pairs[estimated >= threshold - ESTIMATE_MARGIN]
    return pairs, similarity(pairs, shingled, workers)


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
    kept: dict[str, Any],
    sources: list[Converted],
    spec,
    mode: str,
    seed: int,
    workers: int = 1,
    engine: Engine | None = None,
) -> NearResult:
    """Remove near-duplicates among the records exact dedup `kept`, per kind: each kind's
    work is one step over its sources' tables (`near_kind`), where `engine` keeps them. On
    an engine that holds data (composer.held) `kept` holds references and each kind is a
    task on the cluster: the driver gets the masks, the counts and the report's clusters,
    and the similarities stay in the object store (`similarities` is then each kind's
    reference, for `store`). There, MinHash signatures are taken first, a task a source
    (`source_signatures`, in parallel on the cluster), and the kind's task is given them."""
    kinds = {s.source.name: s.plugin.kind for s in sources}
    ranked = [s.source.name for s in priority(sources)]
    signed: dict[str, Any] = {}
    if held.holds(engine) and spec.method != "embedding":
        steps = {name: (kept[name], kinds[name], mode, spec, seed, workers) for name in ranked}
        signed = {
            n: sig for n, (sig, _) in held.each_source(engine, source_signatures, steps).items()
        }
    tasks = []
    for kind in ("sft", "dpo", "text"):
        names = [name for name in ranked if kinds[name] == kind]
        if names:
            parts = [kept[n] for n in names] + [signed[n] for n in names if signed]
            tasks.append((kind, names, spec, mode, seed, workers, *parts))
    removed: dict[str, np.ndarray] = dict.fromkeys(kept)  # in `kept`'s order
    lost_to: dict[str, Counter] = {s.source.name: Counter() for s in sources}
    clusters: list[dict] = []
    sims = []
    for sim, (masks, lost, found) in held.each(engine, near_kind, tasks):
        removed.update(masks)
        lost_to.update(lost)
        clusters += found
        sims.append(sim)
    if not held.holds(engine):
        sims = np.concatenate(sims) if sims else np.zeros(0)
    return NearResult(removed=removed, lost_to=lost_to, clusters=clusters, similarities=sims)


def source_signatures(
    table: pa.Table, kind: str, mode: str, spec, seed: int, workers: int
) -> tuple[Signatures, None]:
    """A source's MinHash signatures (a step of `near_dedup` on an engine that holds data)."""
    texts = key_texts(table, kind, mode)
    return signatures(texts, spec.ngram, spec.permutations, seed, workers), None


def near_kind(
    kind: str, names: list[str], spec, mode: str, seed: int, workers: int, *parts: Any
) -> tuple[np.ndarray, tuple[dict, dict, list]]:
    """One kind's near dedup over its sources' tables (`names`, in rank order; `parts`: the
    tables, then each one's `source_signatures` if taken already): the similarities of its
    pairs, and (each source's removed mask, the records each source lost to each other, the
    report's few clusters)."""
    tables, signed = parts[: len(names)], parts[len(names) :]
    rows = [t.num_rows for t in tables]
    owner = np.repeat(np.arange(len(names)), rows)
    starts = np.r_[0, np.cumsum(rows)]
    texts = None
    if signed:
        pairs, sims = shingled_pairs(Signatures.joined(signed), spec.threshold, spec.bands, workers)
    else:
        texts = pa.concat_arrays([key_texts(table, kind, mode) for table in tables])
        if spec.method == "embedding":
            pairs, sims = embedding_pairs(texts.to_pylist(), spec.threshold)
        else:
            pairs, sims = minhash_pairs(
                texts, spec.threshold, spec.ngram, spec.permutations, spec.bands, seed, workers
            )

    def text(j: int) -> str:
        if texts is not None:
            return texts[j].as_py()
        one = tables[owner[j]].slice(j - starts[owner[j]], 1)  # its key text alone
        return key_texts(one, kind, mode)[0].as_py()

    gone, winner, sim = greedy(pairs, sims, spec.threshold, int(starts[-1]))
    removed: dict[str, np.ndarray] = {}
    lost_to: dict[str, Counter] = {}
    offset = 0
    for name, table in zip(names, tables):
        n = table.num_rows
        removed[name] = gone[offset : offset + n]
        lost_to[name] = Counter()
        for w, count in Counter(owner[winner[offset : offset + n][removed[name]]]).items():
            lost_to[name][names[w]] += count
        offset += n
    clusters = []
    for w in np.unique(winner[gone])[:5].tolist():
        losers = np.flatnonzero(winner == w)[:3]
        clusters.append(
            {
                "kind": kind,
                "winner": {"source": names[owner[w]], "text": text(w)},
                "losers": [
                    {
                        "source": names[owner[j]],
                        "text": text(j),
                        "similarity": round(float(sim[j]), 3),
                    }
                    for j in losers.tolist()
                ],
            }
        )
    return sims, (removed, lost_to, clusters)


def store(engine: Engine | None, result: NearResult, cache: StageCache, key: str, name: str):
    """`result` as a `near` cache entry: written here, or on an engine that holds data by a
    task on the cluster, where its similarities are (its cache failure told here); there,
    the similarities are let go of then (the build needs none)."""
    if not held.holds(engine):
        cache.keep("near", key, name, result, NearResult.save)
        return
    sims, result.similarities = result.similarities, np.zeros(0)
    if cache.enabled and key:
        [(_, unstored)] = held.each(engine, _stored, [(str(cache.root), key, name, result, *sims)])
        cache.told(unstored)


def _stored(
    root: str, key: str, name: str, result: NearResult, *sims: np.ndarray
) -> tuple[None, list]:
    """`store`'s task: the entry written with the kinds' similarities end to end."""
    result.similarities = np.concatenate(sims) if sims else np.zeros(0)
    cache = StageCache(Path(root), quiet=True)
    cache.keep("near", key, name, result, NearResult.save)
    return None, cache.unstored
