"""Verbatim overlap: normalized word n-grams shared with benchmark items (GPT-3's test).

Texts are lower-cased and cut into words (letters and digits, any script), so case,
spacing and punctuation do not hide a copy. Each benchmark item contributes its 13-grams
(or, for an item of 8 to 12 words, the whole item); a checked text matches an item when it
holds at least `min_overlap` of them. All n-grams of all checked texts are hashed at once
with numpy over one array of word ids; a word no benchmark uses cannot be in a match, so it
needs no id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import chain, repeat

import numpy as np

WORD = re.compile(r"\w+")
_P = np.uint64(1_000_003)
BUCKET_BITS = 26  # 64 MiB of flags; a few million benchmark n-grams fill a few percent


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def _hashes(ids: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Polynomial hashes of every n-gram of `ids`, and whether each is valid (no -1 in it)."""
    count = len(ids) - n + 1
    if count <= 0:
        return np.zeros(0, np.uint64), np.zeros(0, bool)
    values = ids.astype(np.uint64)
    h = np.zeros(count, np.uint64)
    with np.errstate(over="ignore"):
        for j in range(n):
            h = h * _P + values[j : j + count] + np.uint64(1)
    bad = np.concatenate([[0], np.cumsum(ids < 0)])
    return h, (bad[n:] - bad[:-n]) == 0


def _bucket(hashes: np.ndarray) -> np.ndarray:
    """A hash's bucket: its top bits after a multiplicative (Fibonacci) scramble."""
    with np.errstate(over="ignore"):
        return (hashes * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(64 - BUCKET_BITS)


def _flatten(lists: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Word-id lists as one array, each followed by -1 (no n-gram spans two), and starts."""
    lengths = np.array([len(x) + 1 for x in lists], np.int64)
    flat = np.full(int(lengths.sum()), -1, np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    if lists:
        count = int(lengths.sum()) - len(lists)
        body = np.fromiter(chain.from_iterable(lists), np.int64, count=count)
        keep = np.ones(len(flat), bool)
        keep[starts + lengths - 1] = False
        flat[keep] = body
    return flat, starts


@dataclass
class NgramIndex:
    vocab: dict[str, int]
    sizes: list[int]  # the n-gram lengths in use
    hashes: np.ndarray  # sorted
    items: np.ndarray  # the item of each hash
    counts: np.ndarray  # n-grams per item
    n: int = 13
    # One flag per bucket of hash values that some item's n-gram falls in: nearly every
    # n-gram of a training text is in no benchmark, and this rejects it with one lookup.
    buckets: np.ndarray | None = None

    @classmethod
    def build(cls, texts: list[str], n: int = 13, min_words: int = 8) -> NgramIndex:
        vocab: dict[str, int] = {}
        ids = [[vocab.setdefault(w, len(vocab)) for w in words(t)] for t in texts]
        lengths = np.array([len(x) for x in ids], np.int64)
        size_of = np.where(lengths >= min_words, np.minimum(lengths, n), 0)
        all_hashes, all_items = [], []
        for size in sorted(set(size_of[size_of > 0].tolist())):
            members = np.flatnonzero(size_of == size)
            flat, starts = _flatten([ids[i] for i in members])
            h, valid = _hashes(flat, int(size))
            pos = np.flatnonzero(valid)
            all_hashes.append(h[pos])
            all_items.append(members[np.searchsorted(starts, pos, side="right") - 1])
        hashes = np.concatenate(all_hashes) if all_hashes else np.zeros(0, np.uint64)
        items = np.concatenate(all_items) if all_items else np.zeros(0, np.int64)
        order = np.lexsort((items, hashes))
        hashes, items = hashes[order], items[order]
        first = np.ones(len(hashes), bool)  # drop an item's repeats of one n-gram
        first[1:] = (hashes[1:] != hashes[:-1]) | (items[1:] != items[:-1])
        hashes, items = hashes[first], items[first]
        counts = np.bincount(items, minlength=len(texts))
        sizes = sorted(set(size_of[size_of > 0].tolist()))
        return cls(vocab, sizes, hashes, items, counts, n)

    def __post_init__(self) -> None:
        if self.buckets is None:  # made here, not stored: 64 MiB of flags from the hashes
            self.buckets = np.zeros(1 << BUCKET_BITS, bool)
            self.buckets[_bucket(self.hashes)] = True

    def match(
        self, word_lists: list[list[str]], min_overlap: float = 0.25
    ) -> list[tuple[int, int, float]]:
        """(text, item, share of the item's n-grams in the text) for each match, given each
        text's `words()`."""
        if not len(self.hashes) or not word_lists:
            return []
        known, unknown = self.vocab.get, repeat(-1)
        flat, starts = _flatten([list(map(known, ws, unknown)) for ws in word_lists])
        found_text, found_item = [], []
        for size in self.sizes:
            h, valid = _hashes(flat, size)
            valid &= self.buckets[_bucket(h)]
            pos = np.flatnonzero(valid)
            at = np.searchsorted(self.hashes, h[pos])
            at[at >= len(self.hashes)] = 0
            hit = self.hashes[at] == h[pos]
            pos, at = pos[hit], at[hit]
            # A hash can belong to several items: take every one of them.
            end = np.searchsorted(self.hashes, h[pos], side="right")
            for p, a, e in zip(pos, at, end):
                text = int(np.searchsorted(starts, p, side="right") - 1)
                for k in range(a, e):
                    found_text.append(text)
                    found_item.append(int(self.items[k]))
        if not found_text:
            return []
        pairs, shared = np.unique(
            np.stack([found_text, found_item], axis=1), axis=0, return_counts=True
        )
        # `shared` counts n-gram positions; an item's count is of distinct n-grams. Cap at 1.
        share = np.minimum(shared / np.maximum(self.counts[pairs[:, 1]], 1), 1.0)
        keep = share >= min_overlap
        return [(int(t), int(i), float(s)) for (t, i), s in zip(pairs[keep], share[keep])]
