"""Decontamination: find training texts that hold a benchmark test item, verbatim or reworded.

What is checked: every human and gpt turn (system turns if asked), a DPO pair's context,
chosen and rejected, and text chunks; long texts in overlapping windows, so that an item
buried in a long answer is found. Two detectors:

- `ngram`: a share of the item's normalized 13-grams found in the text (verbatim copies,
  whatever the case, spacing or wrapping);
- `embedding`: rewordings. A static model (distilled from the transformer) finds each
  window's nearest items with faiss; a pair goes on only with lexical evidence (the item's
  numbers, or its rare words, found in the window; a code item's signature, docstring
  phrases or test values, never its numbers: see code_marks) or a very close embedding with
  words in common; the transformer then scores the pairs that are left, and decides.

The static pass makes a million rows practical on a CPU; the evidence gate keeps the
transformer to a small share of pairs, and separates a reworded test item from a different
item of the same style (GSM8K train against GSM8K test: same style, other numbers).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field, fields, replace
from functools import cached_property, partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from composer.benchmarks import BenchmarkItems, load, resolve
from composer.cache import StageCache, scratch
from composer.code_marks import (
    COMMON,
    CodeLookup,
    CodeMarks,
    CodeWindow,
    code_marks,
    looks_like_code,
)
from composer.embeddings import StaticEmbedder, TransformerEmbedder, set_threads
from composer.engines import Engine, engine_for
from composer.held import holds
from composer.ngrams import NgramIndex, words

NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
WORD_SPAN = re.compile(r"\w+")


@dataclass
class Settings:
    system: bool = False
    ngram: int = 13
    ngram_overlap: float = 0.25  # share of an item's n-grams that makes a verbatim match
    embedding: bool = True
    model: str = "sentence-transformers/all-MiniLM-L6-v2"
    static: bool = True  # candidates from the distilled static model (else the transformer)
    candidates: int = 2  # nearest items per window from the first pass
    static_min: float = 0.5  # first-pass cosine below which a pair is not looked at
    static_close: float = 0.95  # first-pass cosine that sends a pair on without evidence
    # ... if its word sets have at least this Jaccard: `certain` asks the transformer for the
    # same text in other words, which no pair further apart in words reached (the lowest
    # that did, on real text, was 0.48; 89% of those sent on without evidence in
    # bench_e2e are below 0.3, and none of them matched).
    close_words: float = 0.3
    window: int = 96  # words per window of a long text
    stride: int = 48
    # Decisions on the transformer's cosine, by the lexical evidence a pair has. Tuned on
    # GSM8K test (rewordings) against GSM8K train (same style): bench/bench_decontaminate.py.
    certain: float = 0.92  # a match with no evidence at all
    with_numbers: float = 0.5  # the item's numbers (2 or more) are the window's numbers
    with_words: float = 0.7  # most of the item's idf-weighted words are in the window
    with_code: float = 0.5  # a code item's signature, docstring or test values are in it
    with_copy: float = 0.3  # nearly all a code item's phrases are in it (names aside)
    number_overlap: float = 0.8  # Jaccard of the two sets of numbers
    word_overlap: float = 0.7


@dataclass
class Checked:
    """The texts of a set of records that are checked.

    A text found twice (a system prompt, a question several sources share) is scanned
    once: `same` gives each text's distinct text."""

    texts: list[str] = field(default_factory=list)
    record: list[int] = field(default_factory=list)
    part: list[str] = field(default_factory=list)  # which turn or answer of the record
    same: list[int] = field(default_factory=list)  # each text's index in `distinct`
    distinct: list[str] = field(default_factory=list)


@dataclass
class Windowed:
    """Texts to scan, their words, and windows over the long ones, with their words."""

    texts: list[str]
    words: list[list[str]]
    windows: list[str] = field(default_factory=list)
    window_text: list[int] = field(default_factory=list)  # the text of each window
    window_words: list[list[str]] = field(default_factory=list)

    @classmethod
    def of(cls, texts: list[str], settings: Settings) -> Windowed:
        out = cls(texts, [words(t) for t in texts])
        for at, (text, text_words) in enumerate(zip(texts, out.words)):
            if len(text_words) <= settings.window:
                out.windows.append(text)
                out.window_text.append(at)
                out.window_words.append(text_words)
                continue
            # An ASCII text's words are its windows' words, in order: a window's are a
            # slice of them (lower-casing other scripts may change what a word is).
            ascii_text = text.isascii()
            for window, start in _windows(text, settings.window, settings.stride):
                out.windows.append(window)
                out.window_text.append(at)
                if window is text:
                    out.window_words.append(text_words)
                elif ascii_text:
                    out.window_words.append(text_words[start : start + settings.window])
                else:
                    out.window_words.append(words(window))
        return out


def windows(text: str, size: int, stride: int) -> list[str]:
    """Overlapping windows of `size` words (the text itself if it is short)."""
    return [window for window, _ in _windows(text, size, stride)]


def _windows(text: str, size: int, stride: int) -> list[tuple[str, int]]:
    """windows(), each with the number of the word it starts at."""
    spans = list(map(re.Match.span, WORD_SPAN.finditer(text)))
    if len(spans) <= size:
        return [(text, 0)]
    out = []
    for start in range(0, len(spans) - size + stride, stride):
        chunk = spans[start : start + size]
        out.append((text[chunk[0][0] : chunk[-1][1]], start))
        if start + size >= len(spans):
            break
    return out


def checked_texts(table: pa.Table, kind: str, settings: Settings) -> Checked:
    checked = Checked()
    seen: dict[str, int] = {}

    def add(record: int, name: str, text: str | None) -> None:
        if not text:
            return
        checked.texts.append(text)
        checked.record.append(record)
        checked.part.append(name)
        at = seen.get(text)
        if at is None:
            at = seen[text] = len(checked.distinct)
            checked.distinct.append(text)
        checked.same.append(at)

    if kind == "text":
        for i, text in enumerate(table.column("text").to_pylist()):
            add(i, "text", text)
        return checked
    conversations = table.column("conversations").to_pylist()
    chosen, rejected = table.column("chosen").to_pylist(), table.column("rejected").to_pylist()
    for i, turns in enumerate(conversations):
        for n, t in enumerate(turns):
            if t["from"] != "system" or settings.system:
                add(i, f"turn {n} ({t['from']})", t["value"])
        if kind == "dpo":
            add(i, "chosen", chosen[i])
            add(i, "rejected", rejected[i])
    return checked


@dataclass
class Match:
    text: int  # index into Checked.texts
    item: int  # index into the detector's items
    detector: str
    score: float
    evidence: str = ""  # the embedding detector's: numbers, code, words or none


@dataclass
class BenchmarkIndex:
    """The benchmark items and what is built from them once: the n-gram index and the faiss
    index of their first-pass vectors. Cached as the `benchmarks` stage."""

    benchmark: list[str]  # each item's benchmark name
    item_ids: list[str]
    items: list[str]
    ngrams: NgramIndex | None
    vectors: Any = None  # a faiss index (on the CPU) of the items' first-pass vectors

    @classmethod
    def build(cls, benchmarks: list[BenchmarkItems], settings: Settings, first) -> BenchmarkIndex:
        """`first`: the first-pass embedder (None without the embedding detector)."""
        items = [t for b in benchmarks for t in b.texts]
        return cls(
            benchmark=[b.benchmark.name for b in benchmarks for _ in b.texts],
            item_ids=[i for b in benchmarks for i in b.ids],
            items=items,
            ngrams=NgramIndex.build(items, settings.ngram) if settings.ngram else None,
            vectors=item_index(first.encode(items)) if first is not None else None,
        )

    def save(self, folder: Path) -> None:
        import faiss

        listed = {"benchmark": self.benchmark, "item_ids": self.item_ids, "items": self.items}
        (folder / "items.json").write_text(json.dumps(listed, ensure_ascii=False), "utf-8")
        if self.ngrams is not None:
            parts = {
                f.name: getattr(self.ngrams, f.name)
                for f in fields(self.ngrams)
                if f.name != "buckets"  # remade on load
            }
            arrays = {k: v for k, v in parts.items() if isinstance(v, np.ndarray)}
            others = {k: v for k, v in parts.items() if k not in arrays}
            np.savez(folder / "ngrams.npz", **arrays)
            (folder / "ngrams.json").write_text(json.dumps(others, ensure_ascii=False), "utf-8")
        if self.vectors is not None:
            faiss.write_index(self.vectors, str(folder / "items.faiss"))

    @classmethod
    def load(cls, folder: Path) -> BenchmarkIndex:
        import faiss

        listed = json.loads((folder / "items.json").read_text("utf-8"))
        ngrams = None
        if (folder / "ngrams.json").exists():
            with np.load(folder / "ngrams.npz") as arrays:
                others = json.loads((folder / "ngrams.json").read_text("utf-8"))
                ngrams = NgramIndex(**others, **{k: arrays[k] for k in arrays.files})
        vectors = None
        if (folder / "items.faiss").exists():
            vectors = faiss.read_index(str(folder / "items.faiss"))
        return cls(**listed, ngrams=ngrams, vectors=vectors)


@dataclass
class ItemEvidence:
    """What a window's lexical evidence is checked against, item by item: a code item's
    marks (code_marks) and the lookup of code items by name and phrase; each item's numbers
    (none for a code item: its constants and test values are in any program) and its words
    (a code item's without its names and stock words), with their idf weights."""

    code: list[CodeMarks | None]
    code_lookup: CodeLookup
    numbers: list[frozenset[str]]
    words: list[frozenset[str]]
    all_words: list[frozenset[str]]  # the same, but a code item's names and stock words too
    idf: dict[str, float]
    weight: list[float]  # the summed idf of each item's words
    unique_weight: float  # the idf of a word found in one item

    @classmethod
    def of(cls, items: list[str]) -> ItemEvidence:
        code = [code_marks(t) for t in items]
        item_words = [
            frozenset(
                w
                for w in words(t)
                if not marks or (len(w) > 1 and w not in COMMON and w not in marks.names)
            )
            for t, marks in zip(items, code)
        ]
        df = Counter(w for ws in item_words for w in ws)
        idf = {w: np.log((1 + len(items)) / (1 + c)) + 1 for w, c in df.items()}
        return cls(
            code=code,
            code_lookup=CodeLookup(code),
            numbers=[
                frozenset() if marks else frozenset(numbers(t)) for t, marks in zip(items, code)
            ],
            words=item_words,
            all_words=[
                ws if marks is None else frozenset(words(t))
                for t, ws, marks in zip(items, item_words, code)
            ],
            idf=idf,
            weight=[sum(idf[w] for w in ws) or 1.0 for ws in item_words],
            unique_weight=np.log((1 + len(items)) / 2) + 1,
        )


@dataclass(frozen=True)
class TextScan:
    """A distinct text's scan (scan_all scans each distinct text of every source once: real
    data repeats turns, greetings, system prompts, the same question in several sources)."""

    windows: int
    pairs: tuple[tuple[str, float, float], ...]  # (evidence, cosine, first-pass cosine)
    matches: tuple[tuple[int, str, float, str], ...]  # (item, detector, score, evidence)


class Detector:
    """Benchmark items, indexed for both detectors.

    `index`: the items already indexed (from the cache); `cached`: whether the transformer's
    embeddings are read from and stored in the cache."""

    def __init__(
        self,
        benchmarks: list[BenchmarkItems],
        settings: Settings,
        index: BenchmarkIndex | None = None,
        cached: bool = True,
    ):
        self.settings = settings
        self.transformer = (
            TransformerEmbedder(settings.model, cached=cached) if settings.embedding else None
        )
        self.static = (
            StaticEmbedder(settings.model) if settings.embedding and settings.static else None
        )
        if index is None:
            index = BenchmarkIndex.build(benchmarks, settings, self.static or self.transformer)
        self.built = index
        self.benchmark, self.item_ids, self.items = index.benchmark, index.item_ids, index.items
        self.ngrams = index.ngrams
        self.stats: Counter = Counter()
        # (evidence, transformer cosine) of every re-scored pair: the distribution a person
        # looks at to choose thresholds (`composer decontaminate`).
        self.scores: list[tuple[str, float]] = []
        self.first_scores: list[float] = []  # the first pass's cosine of each of those pairs
        if settings.embedding:
            self.index = on_gpus(index.vectors)

    def preload(self) -> None:
        """Start loading the transformer while the first pass runs (when it re-scores)."""
        if self.static is not None and self.transformer is not None:
            self.transformer.preload()

    @cached_property
    def evidence(self) -> ItemEvidence:
        """Made on first use: a driver whose workers scan never needs it."""
        return ItemEvidence.of(self.items)

    def scan(self, checked: Checked) -> list[Match]:
        """The matches of the checked texts (a text found twice matches twice)."""
        by_text: dict[int, list[Match]] = {}
        windows = pairs = 0
        for i, result in enumerate(self._scan_texts(checked.distinct)):
            if isinstance(result, int):  # no pair re-scored, no match
                windows += result
                continue
            windows += result.windows
            pairs += len(result.pairs)
            self.scores += [(evidence, score) for evidence, score, _ in result.pairs]
            self.first_scores += [first for _, _, first in result.pairs]
            by_text[i] = [Match(i, *m) for m in result.matches]
        if self.settings.embedding and checked.distinct:
            self.stats["windows"] += windows
            self.stats["pairs_rescored"] += pairs
        return [
            replace(m, text=text)
            for text, distinct in enumerate(checked.same)
            for m in by_text.get(distinct, ())
        ]

    def _scan_texts(self, texts: list[str]) -> list[TextScan | int]:
        """Each text's scan: a TextScan, or its number of windows when it had no pair."""
        windowed = Windowed.of(texts, self.settings)
        found: dict[tuple[int, int], tuple] = {}  # by (text, item)
        if self.ngrams is not None and self.settings.ngram:
            for text, item, share in self.ngrams.match(windowed.words, self.settings.ngram_overlap):
                found[text, item] = (item, "ngram", round(share, 4), "")
        pairs: list[list[tuple[str, float, float]]] = [[] for _ in texts]
        if self.settings.embedding and windowed.windows:
            matches, rescored = self._embedding_matches(windowed)
            for text, *m in matches:
                found.setdefault((text, m[0]), tuple(m))
            for text, *pair in rescored:
                pairs[text].append(tuple(pair))
        counts = np.bincount(windowed.window_text, minlength=len(texts)).tolist()
        out: list[TextScan | int] = list(counts)
        for text, item in sorted(set(found) | {(t, -1) for t, p in enumerate(pairs) if p}):
            if not isinstance(out[text], TextScan):
                out[text] = TextScan(counts[text], tuple(pairs[text]), ())
            if item >= 0:
                result = out[text]
                out[text] = replace(result, matches=(*result.matches, found[text, item]))
        return out

    def _words_agree(self, found_words: set[str], item: int) -> bool:
        """Most of the item's idf-weighted words are in the window."""
        ev = self.evidence
        shared = sum(ev.idf[w] for w in ev.words[item] & found_words)
        return shared / ev.weight[item] >= self.settings.word_overlap

    def _words_alike(self, found_words: set[str], item: int) -> bool:
        """The window's and the item's words have a Jaccard of close_words or more."""
        item_words = self.evidence.all_words[item]
        shared = len(item_words & found_words)
        return shared >= self.settings.close_words * (len(item_words | found_words) or 1)

    def _embedding_matches(self, checked: Windowed) -> tuple[list[tuple], list[tuple]]:
        """(text, item, "embedding", score, evidence) of each match, and (text, evidence,
        transformer cosine, first-pass cosine) of each re-scored pair.

        A pair's evidence is looked for in order (numbers, code, words) and the first found
        is its evidence: the later ones are not computed."""
        s, ev = self.settings, self.evidence
        first = (self.static or self.transformer).encode(checked.windows)
        k = min(s.candidates, len(self.items))
        sims, nearest = search(self.index, first, k)
        # Compared as Python floats, the float32 cosines meet float32 thresholds (as numpy
        # compares them).
        least, close_enough = float(np.float32(s.static_min)), float(np.float32(s.static_close))
        pairs, needs = [], []
        for w, (row_sims, row_items) in enumerate(zip(sims.tolist(), nearest.tolist())):
            close = [
                (sim, item) for sim, item in zip(row_sims, row_items) if item >= 0 and sim >= least
            ]
            if not close:
                continue
            window, window_words = checked.windows[w], checked.window_words[w]
            found_words = set(window_words)
            found_numbers = None  # the window's numbers, when an item has some
            code = None
            if ev.code_lookup and (
                any(ev.code[i] is not None for _, i in close) or looks_like_code(window)
            ):
                # Code: also the code items that share a name or a phrase with the window.
                code = CodeWindow.of(window, window_words)
                near = {i for _, i in close}
                close += [(0.0, i) for i in ev.code_lookup.items(code) if i not in near]
            for sim, item in close:
                nums, by_numbers, by_code, by_words = ev.numbers[item], False, None, False
                if len(nums) >= 2:
                    if found_numbers is None:
                        found_numbers = set(numbers(window))
                    shared = len(nums & found_numbers) / len(nums | found_numbers)
                    by_numbers = shared >= s.number_overlap
                marks = ev.code[item]
                if not by_numbers and code is not None and marks is not None:
                    by_code = marks.found(code, ev.idf, ev.unique_weight)
                if not by_numbers and not by_code:
                    by_words = self._words_agree(found_words, item)
                if (
                    by_numbers
                    or by_code
                    or by_words
                    or (sim >= close_enough and self._words_alike(found_words, item))
                ):
                    pairs.append((w, item, sim))
                    needs.append(
                        ("numbers", s.with_numbers)
                        if by_numbers
                        else (by_code, s.with_copy if by_code == "copy" else s.with_code)
                        if by_code
                        else ("words", s.with_words)
                        if by_words
                        else ("none", s.certain)
                    )
        if not pairs:
            return [], []
        if self.static is None:  # the first pass was the transformer already
            scores = [sim for _, _, sim in pairs]
        else:
            a = self.transformer.encode([checked.windows[w] for w, _, _ in pairs])
            b = self.transformer.encode([self.items[i] for _, i, _ in pairs])
            scores = np.einsum("ij,ij->i", a, b).tolist()
        rescored = [
            (checked.window_text[w], evidence, score, sim)
            for (w, _, sim), score, (evidence, _) in zip(pairs, scores, needs)
        ]
        matches = [
            (checked.window_text[w], item, "embedding", round(score, 4), evidence)
            for (w, item, _), score, (evidence, need) in zip(pairs, scores, needs)
            if score >= need
        ]
        return matches, rescored


def item_index(vectors: np.ndarray):
    """A faiss inner-product index over normalized vectors: exact for a few thousand items,
    inverted lists (about 4 * sqrt(n) cells, 16 probed) above that, where exact search of
    millions of windows would take minutes. Seeded, so the same items give the same index."""
    import faiss

    n, dims = vectors.shape
    if n < 20_000:
        index = faiss.IndexFlatIP(dims)
    else:
        cells = int(4 * np.sqrt(n))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dims), dims, cells, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = 1234
        index.train(vectors)
        index.nprobe = 16
    index.add(vectors)
    return index


def search(index, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """`index.search(vectors, k)`, each query's results a function of that query alone.

    faiss scores a batch of 20 queries or more against a flat index with one matrix
    product (BLAS), whose last bits depend on the batch's size and the threads: a text's
    cosines, hence perhaps its candidates, would depend on the texts scanned with it, and
    on the engine. So a flat index (and an inverted-file index's cells) is searched for
    EXTRA more candidates, and those are ranked by their cosines computed one query at a
    time (faiss's own kernel for fewer than 20 queries): the same values whatever the
    batch (tests/test_decontaminate). An inverted-file index then reads the queries in the
    order of the cells they probe: each query's results are the same, and the lists it
    reads are often still in the cache from the query before (about an eighth less time)."""
    import faiss

    if isinstance(index, faiss.IndexFlat):
        return nearest(index, vectors, k)
    if not isinstance(index, faiss.IndexIVF) or not len(vectors):
        return index.search(vectors, k)
    distances, cells = nearest(faiss.downcast_index(index.quantizer), vectors, index.nprobe)
    order = np.lexsort(cells.T[::-1])
    found = index.search_preassigned(vectors[order], k, cells[order], distances[order])
    out = np.empty_like(found[0]), np.empty_like(found[1])
    out[0][order], out[1][order] = found
    return out


EXTRA = 8  # candidates past k that `nearest` ranks again by exact cosines


def nearest(flat, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """A flat index's k nearest of each query by cosines computed a query at a time
    (ties: the lower id first), among the k + EXTRA that one matrix product finds."""
    import faiss

    wanted = min(k + EXTRA, flat.ntotal)
    if not len(vectors) or wanted < k:
        return flat.search(vectors, k)
    _, found = flat.search(vectors, wanted)
    queries = np.ascontiguousarray(vectors, np.float32)
    sims = np.empty(found.shape, np.float32)
    flat.compute_distance_subset(
        len(queries), faiss.swig_ptr(queries), wanted, faiss.swig_ptr(sims), faiss.swig_ptr(found)
    )
    order = np.lexsort((found, -sims))[:, :k]
    return np.take_along_axis(sims, order, 1), np.take_along_axis(found, order, 1)


def on_gpus(index):
    """The index on the GPUs when faiss-gpu finds one, else as it is."""
    import faiss

    if getattr(faiss, "get_num_gpus", lambda: 0)() > 0:
        return faiss.index_cpu_to_all_gpus(index)
    return index


def numbers(text: str) -> list[str]:
    return [n.replace(",", "") for n in NUMBER.findall(text)]


def load_benchmarks(entries: list, base_dir: Path) -> list[BenchmarkItems]:
    return [load(resolve(e), base_dir) for e in entries]


# ---------------------------------------------------------------- the build stage

AUDIT_TEXT = 1000  # characters of the matched training text kept in the audit


@dataclass
class Contamination:
    """What decontamination found: records to remove per source, and why."""

    removed: dict[str, np.ndarray]  # source -> a mask over its records
    by_benchmark: dict[str, dict[str, int]]  # source -> benchmark -> records matched
    audit: list[dict]
    stats: dict[str, int]
    scores: list[tuple[str, float]] = field(default_factory=list)  # see Detector.scores


def settings_from(config) -> Settings:
    """Settings from a manifest's `decontaminate` mapping."""
    return Settings(
        system=config.system,
        ngram=config.ngram,
        ngram_overlap=config.ngram_overlap,
        embedding=config.embedding,
        model=config.model,
        static=config.static,
    )


@dataclass
class SourceScan:
    """One source's decontamination (cached as the `decontaminate` stage)."""

    removed: np.ndarray  # a mask over the source's records
    by_benchmark: dict[str, int]
    audit: list[dict]
    stats: dict[str, int]
    scores: list[tuple[str, float]]
    benchmark_items: int

    def save(self, folder: Path) -> None:
        np.save(folder / "removed.npy", self.removed)
        state = {k: v for k, v in vars(self).items() if k != "removed"}
        (folder / "scan.json").write_text(json.dumps(state, ensure_ascii=False), "utf-8")

    @classmethod
    def load(cls, folder: Path) -> SourceScan:
        state = json.loads((folder / "scan.json").read_text("utf-8"))
        state["scores"] = [tuple(s) for s in state["scores"]]
        return cls(removed=np.load(folder / "removed.npy"), **state)


SCAN_CHUNK = 8192  # records counted together (stats, scores): the same whatever runs them
SCAN_TEXTS = 8192  # distinct texts scanned together: a worker's task
# Tasks below which the scan stays in the driver: each worker first loads the index and
# the models (about 6 s on a quiet core, more on a busy one), about what two tasks' scan
# costs; with fewer tasks two workers save less than they cost.
SCAN_POOL_TASKS = 6
CHOSEN = 1 << 30  # where a pair's chosen answer sorts among a record's texts (rejected: +1)


@dataclass
class SourceTexts:
    """A source's checked texts (the same as checked_texts', in the same order), as Arrow
    and numpy: which record each is of, and where in it (a turn's number, or CHOSEN)."""

    values: pa.Array  # large_string
    record: np.ndarray
    position: np.ndarray
    role: pa.Array | None  # a turn's "from" (null for the others)

    def part(self, at: int) -> str:
        position = int(self.position[at])
        if position >= CHOSEN:
            return ("chosen", "rejected")[position - CHOSEN]
        if self.role is None:
            return "text"
        return f"turn {position} ({self.role[at].as_py()})"


def source_texts(table: pa.Table, kind: str, settings: Settings) -> SourceTexts:
    import pyarrow.compute as pc

    def usable(values: pa.Array) -> np.ndarray:
        return pc.fill_null(pc.greater(pc.binary_length(values), 0), False).to_numpy(
            zero_copy_only=False
        )

    n = table.num_rows
    if kind == "text":
        values = table.column("text").combine_chunks().cast(pa.large_string())
        keep = np.flatnonzero(usable(values))
        return SourceTexts(values.take(keep), keep, np.zeros(len(keep), np.int64), None)
    turns = table.column("conversations").combine_chunks()
    flat = pc.list_flatten(turns)
    values = [pc.struct_field(flat, "value").cast(pa.large_string())]
    roles = [pc.struct_field(flat, "from").cast(pa.string())]
    lengths = pc.fill_null(pc.list_value_length(turns), 0).to_numpy(zero_copy_only=False)
    record = [np.repeat(np.arange(n), lengths)]
    position = [np.arange(len(record[0])) - np.repeat(np.cumsum(lengths) - lengths, lengths)]
    keep = [usable(values[0])]
    if not settings.system:
        keep[0] &= pc.fill_null(pc.not_equal(roles[0], "system"), True).to_numpy(
            zero_copy_only=False
        )
    if kind == "dpo":
        for at, name in enumerate(("chosen", "rejected")):
            answers = table.column(name).combine_chunks().cast(pa.large_string())
            values.append(answers)
            roles.append(pa.nulls(n, pa.string()))
            record.append(np.arange(n))
            position.append(np.full(n, CHOSEN + at))
            keep.append(usable(answers))
    record_all, position_all = np.concatenate(record), np.concatenate(position)
    kept = np.flatnonzero(np.concatenate(keep))
    order = kept[np.lexsort((position_all[kept], record_all[kept]))]
    return SourceTexts(
        pa.concat_arrays(values).take(order),
        record_all[order],
        position_all[order],
        pa.concat_arrays(roles).take(order),
    )


def joined(parts: list[SourceScan], items: int) -> SourceScan:
    """The scans of a source's chunks, in order, as one."""
    counts: Counter = Counter()
    stats: Counter = Counter()
    for p in parts:
        counts.update(p.by_benchmark)
        stats.update(p.stats)
    return SourceScan(
        removed=np.concatenate([p.removed for p in parts]) if parts else np.zeros(0, bool),
        by_benchmark=dict(sorted(counts.items())),
        audit=[a for p in parts for a in p.audit],
        stats=dict(sorted(stats.items())),
        scores=[s for p in parts for s in p.scores],
        benchmark_items=items,
    )


@dataclass(frozen=True)
class ScanTask:
    """Distinct texts to scan on an engine's worker."""

    texts: pa.Array

    def __getstate__(self) -> dict:
        # Arrow pickles a slice with its whole array's buffers: ship only these texts.
        return {"texts": self.texts.take(np.arange(len(self.texts)))}

    def __setstate__(self, state: dict) -> None:
        object.__setattr__(self, "texts", state["texts"])


def scan_setup(folder: str, settings: Settings, cached: bool) -> Detector:
    """A worker's detector, from the benchmark index saved in `folder`; one thread (the
    workers share the cores). Marked `gpu`: on a Ray cluster with GPUs, one a worker."""
    import faiss

    set_threads(1)
    faiss.omp_set_num_threads(1)
    detector = Detector([], settings, BenchmarkIndex.load(Path(folder)), cached)
    detector.preload()
    return detector


scan_setup.gpu = True  # type: ignore[attr-defined]


def scan_task(detector: Detector, task: ScanTask) -> list[TextScan | int]:
    """A task's texts' scans in a worker; the embeddings it computed stored for the next
    build."""
    scans = detector._scan_texts(task.texts.to_pylist())
    if detector.transformer is not None:
        detector.transformer.cache.save()
    return scans


def scan_all(
    detector: Detector,
    tables: dict[str, pa.Table],
    kinds: dict[str, str],
    report_only: bool,
    engine: Engine,
    folder: Path | None = None,
    cached: bool = False,
) -> dict[str, SourceScan]:
    """Every source's scan. The distinct texts of all sources are scanned once each, in
    tasks of SCAN_TEXTS texts (in order of first appearance): on `engine`'s workers when
    there are SCAN_POOL_TASKS tasks or more and more than one worker (each worker's
    detector built by `scan_setup` from the index saved in `folder`, else in a scratch
    folder under the cache root, which every node of a cluster reads, removed as the scan
    ends; `cached`: whether they read and store transformer embeddings in the cache), else
    here with `detector`. Each source's records are then told their texts' matches, and
    counted in chunks of SCAN_CHUNK records: the same whatever ran the scans."""
    import pyarrow.compute as pc

    texts = {
        name: source_texts(table, kinds[name], detector.settings) for name, table in tables.items()
    }
    # Each text's id among the distinct texts of all sources, in order of first appearance.
    values = pa.chunked_array([t.values for t in texts.values()], pa.large_string())
    encoded = pc.dictionary_encode(values).chunks
    distinct = encoded[0].dictionary if encoded else pa.array([], pa.large_string())
    ids = np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in encoded] or [[]])
    del values, encoded
    tasks = [ScanTask(distinct.slice(at, SCAN_TEXTS)) for at in range(0, len(distinct), SCAN_TEXTS)]
    if engine.workers < 2 or len(tasks) < SCAN_POOL_TASKS:
        if tasks:
            detector.preload()
        parts = [detector._scan_texts(t.texts.to_pylist()) for t in tasks]
    else:
        with scratch("benchmarks") as tmp:  # under the cache root: every node reads it
            if folder is None:
                folder = Path(tmp)
                detector.built.save(folder)
            setup = partial(scan_setup, str(folder), detector.settings, cached)
            parts = engine.map(scan_task, tasks, setup=setup)
    del tasks, distinct
    scans = [s for part in parts for s in part]
    found = Scanned(scans, detector.settings.embedding)
    out, at = {}, 0
    for name, table in tables.items():
        source = texts[name]
        source_ids = ids[at : at + len(source.values)]
        at += len(source.values)
        chunks = [
            counted(detector, found, name, table, source, source_ids, start, report_only)
            for start in range(0, table.num_rows, SCAN_CHUNK)
        ]
        out[name] = joined(chunks, len(detector.items))
    return out


class Scanned:
    """Every distinct text's scan, in arrays: windows, and which ones re-scored a pair or
    matched (the few that need Python)."""

    def __init__(self, scans: list[TextScan | int], embedding: bool):
        self._keep(*self.compact(scans), embedding)

    @staticmethod
    def compact(scans: list[TextScan | int]) -> tuple[np.ndarray, dict[int, TextScan]]:
        """Scans as (each text's windows, {text: scan} of the rich ones): what a worker
        that scanned them sends on (scan_held)."""
        windows = np.fromiter(
            (s if isinstance(s, int) else s.windows for s in scans), np.int64, count=len(scans)
        )
        return windows, {i: s for i, s in enumerate(scans) if not isinstance(s, int)}

    @classmethod
    def of_parts(
        cls, parts: tuple[tuple[np.ndarray, dict[int, TextScan]], ...], embedding: bool
    ) -> Scanned:
        """The compact scans of consecutive runs of texts, as one."""
        out = cls.__new__(cls)
        rich, at = {}, 0
        for windows, scans in parts:
            rich.update((at + i, s) for i, s in scans.items())
            at += len(windows)
        windows = np.concatenate([w for w, _ in parts]) if parts else np.zeros(0, np.int64)
        out._keep(windows, rich, embedding)
        return out

    def _keep(self, windows: np.ndarray, rich: dict[int, TextScan], embedding: bool) -> None:
        self.embedding, self.windows, self.rich = embedding, windows, rich
        self.matched = np.zeros(len(windows), bool)
        self.matched[[i for i, s in rich.items() if s.matches]] = True


def counted(
    detector: Detector,
    found: Scanned,
    name: str,
    table: pa.Table,
    source: SourceTexts,
    ids: np.ndarray,
    start: int,
    report_only: bool,
) -> SourceScan:
    """Which of a chunk of records (from `start`, SCAN_CHUNK of them) hold a benchmark item,
    the audit of each match, and the chunk's counts (each distinct text counted once)."""
    records = min(SCAN_CHUNK, table.num_rows - start)
    lo, hi = np.searchsorted(source.record, [start, start + records])
    chunk = ids[lo:hi]
    unique, first = np.unique(chunk, return_index=True)
    stats: Counter = Counter()
    scores: list[tuple[str, float]] = []
    if found.embedding and len(chunk):
        stats["windows"] = int(found.windows[unique].sum())
        pairs = 0
        for i in unique[np.argsort(first)].tolist():
            scan = found.rich.get(i)
            if scan is not None:
                pairs += len(scan.pairs)
                scores += [(evidence, score) for evidence, score, _ in scan.pairs]
        stats["pairs_rescored"] = pairs
    mask = np.zeros(records, bool)
    counts: Counter = Counter()
    seen: set[tuple[int, str]] = set()
    audit = []
    for at in (lo + np.flatnonzero(found.matched[chunk])).tolist():
        record = int(source.record[at])
        text = source.values[at].as_py()
        for item, detector_name, score, _ in found.rich[int(ids[at])].matches:
            mask[record - start] = True
            benchmark = detector.benchmark[item]
            if (record, benchmark) not in seen:
                seen.add((record, benchmark))
                counts[benchmark] += 1
            audit.append(
                {
                    "source": name,
                    "id": table.column("id")[record].as_py(),
                    "upstream": json.loads(table.column("meta")[record].as_py()),
                    "part": source.part(at),
                    "benchmark": benchmark,
                    "item_id": detector.item_ids[item],
                    "item": detector.items[item],
                    "detector": detector_name,
                    "score": score,
                    "text": text if len(text) <= AUDIT_TEXT else text[:AUDIT_TEXT] + "…",
                    "removed": not report_only,
                }
            )
    return SourceScan(
        removed=mask,
        by_benchmark=dict(counts),
        audit=audit,
        stats=dict(stats),
        scores=scores,
        benchmark_items=len(detector.items),
    )


def scan_records(detector: Detector, table: pa.Table, kind: str, workers: int = 1) -> SourceScan:
    """A table's scan on `workers` processes (for benchmarks)."""
    with engine_for(workers) as engine:
        return scan_all(detector, {"": table}, {"": kind}, True, engine)[""]


def decontaminate(
    tables: dict[str, Any],
    kinds: dict[str, str],
    config,
    base_dir: Path,
    progress: bool = False,
    cache: StageCache | None = None,
    keys: dict[str, str] | None = None,
    workers: int | None = None,
    engine: Engine | None = None,
) -> Contamination:
    """Scan every source's records against the manifest's benchmarks.

    `cache`: the stage cache (its `enabled` also decides whether transformer embeddings are
    cached); `keys`: the `benchmarks` stage's key (under "") and each source's
    `decontaminate` key, for the stages to be cached. The benchmarks are read and indexed
    only when some source's scan is not in the cache. The scans the cache misses run on
    `engine` (else on `engine_for(workers)`, closed when the scan ends), chunk by chunk; on
    an engine that holds data, `tables` are references to its tables, and each step of the
    scan runs where they are (composer.scan_held)."""
    from tqdm.auto import tqdm

    cache = cache or StageCache(enabled=False)
    keys = keys or {}
    settings = settings_from(config)
    scans: dict[str, SourceScan | None] = {}
    with tqdm(total=len(tables), desc="decontaminate", unit="source", disable=not progress) as bar:
        for name in tables:
            scans[name] = (
                cache.find("decontaminate", keys[name], name, SourceScan.load)
                if name in keys
                else None
            )
            if scans[name] is not None:
                bar.update()
        misses = [name for name, scan in scans.items() if scan is None]
        detector = None
        if misses:
            entries = [e.model_dump(exclude_none=True) for e in config.benchmarks]
            built: list[Detector] = []

            def build_index() -> BenchmarkIndex:
                built.append(
                    Detector(load_benchmarks(entries, base_dir), settings, None, cache.enabled)
                )
                return built[0].built

            folder = None
            if "" in keys:
                index = cache.through(
                    "benchmarks",
                    keys[""],
                    "benchmarks",
                    build_index,
                    BenchmarkIndex.save,
                    BenchmarkIndex.load,
                )
                folder = cache.get("benchmarks", keys[""], "benchmarks")  # the workers load it
            else:
                index = build_index()
            detector = built[0] if built else Detector([], settings, index, cache.enabled)
            own = engine is None
            engine = engine or engine_for(workers)
            scan = scan_all
            if holds(engine):  # the records are on the engine's workers: scanned there
                from composer.scan_held import scan_held as scan
            try:
                found = scan(
                    detector,
                    {name: tables[name] for name in misses},
                    kinds,
                    config.report_only,
                    engine,
                    folder,
                    cache.enabled,
                )
            finally:
                if own:
                    engine.close()
            for name in misses:
                scans[name] = found[name]
                if name in keys:
                    cache.keep("decontaminate", keys[name], name, found[name], SourceScan.save)
                bar.update()
    if detector is not None and detector.transformer is not None:
        cache.log("embedded", "embeddings", count=detector.transformer.computed)
    totals: Counter = Counter()
    for scan in scans.values():
        totals.update(scan.stats)
    items = next((scan.benchmark_items for scan in scans.values()), 0)
    return Contamination(
        removed={name: scan.removed for name, scan in scans.items()},
        by_benchmark={name: scan.by_benchmark for name, scan in scans.items()},
        audit=[a for scan in scans.values() for a in scan.audit],
        stats={"benchmark_items": items, **dict(sorted(totals.items()))},
        scores=[s for scan in scans.values() for s in scan.scores],
    )
