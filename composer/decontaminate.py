"""Decontamination: find training texts that hold a benchmark test item, verbatim or reworded.

What is checked: every human and gpt turn (system turns if asked), a DPO pair's context,
chosen and rejected, and text chunks; long texts in overlapping windows, so that an item
buried in a long answer is found. Two detectors:

- `ngram`: a share of the item's normalized 13-grams found in the text (verbatim copies,
  whatever the case, spacing or wrapping);
- `embedding`: rewordings. A static model (distilled from the transformer) finds each
  window's nearest items with faiss; a pair goes on only with lexical evidence (the item's
  numbers, or its rare words, found in the window) or a very close embedding; the
  transformer then scores the pairs that are left, and decides.

The static pass makes a million rows practical on a CPU; the evidence gate keeps the
transformer to a small share of pairs, and separates a reworded test item from a different
item of the same style (GSM8K train against GSM8K test: same style, other numbers).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from composer.benchmarks import BenchmarkItems, load, resolve
from composer.embeddings import StaticEmbedder, TransformerEmbedder
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
    window: int = 96  # words per window of a long text
    stride: int = 48
    # Decisions on the transformer's cosine, by the lexical evidence a pair has. Tuned on
    # GSM8K test (rewordings) against GSM8K train (same style): bench/bench_decontaminate.py.
    certain: float = 0.92  # a match with no evidence at all
    with_numbers: float = 0.5  # the item's numbers (2 or more) are the window's numbers
    with_words: float = 0.7  # most of the item's idf-weighted words are in the window
    number_overlap: float = 0.8  # Jaccard of the two sets of numbers
    word_overlap: float = 0.7


@dataclass
class Checked:
    """The texts of a set of records that are checked, and windows over the long ones."""

    texts: list[str] = field(default_factory=list)
    words: list[list[str]] = field(default_factory=list)  # each text's normalized words
    record: list[int] = field(default_factory=list)
    part: list[str] = field(default_factory=list)  # which turn or answer of the record
    windows: list[str] = field(default_factory=list)
    window_text: list[int] = field(default_factory=list)


def windows(text: str, size: int, stride: int, count: int | None = None) -> list[str]:
    """Overlapping windows of `size` words (the text itself if it is short: `count` words)."""
    if count is not None and count <= size:
        return [text]
    spans = [m.span() for m in WORD_SPAN.finditer(text)]
    if len(spans) <= size:
        return [text]
    out = []
    for start in range(0, len(spans) - size + stride, stride):
        chunk = spans[start : start + size]
        out.append(text[chunk[0][0] : chunk[-1][1]])
        if start + size >= len(spans):
            break
    return out


def checked_texts(table: pa.Table, kind: str, settings: Settings) -> Checked:
    checked = Checked()

    def add(record: int, name: str, text: str | None) -> None:
        if not text:
            return
        checked.texts.append(text)
        checked.words.append(words(text))
        checked.record.append(record)
        checked.part.append(name)
        for w in windows(text, settings.window, settings.stride, len(checked.words[-1])):
            checked.windows.append(w)
            checked.window_text.append(len(checked.texts) - 1)

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


class Detector:
    """Benchmark items, indexed for both detectors."""

    def __init__(self, benchmarks: list[BenchmarkItems], settings: Settings):
        self.settings = settings
        self.benchmark = [b.benchmark.name for b in benchmarks for _ in b.texts]
        self.item_ids = [i for b in benchmarks for i in b.ids]
        self.items = [t for b in benchmarks for t in b.texts]
        self.ngrams = NgramIndex.build(self.items, settings.ngram) if settings.ngram else None
        self.transformer = TransformerEmbedder(settings.model) if settings.embedding else None
        self.stats: Counter = Counter()
        # (evidence, transformer cosine) of every re-scored pair: the distribution a person
        # looks at to choose thresholds (`composer decontaminate`).
        self.scores: list[tuple[str, float]] = []
        self.first_scores: list[float] = []  # the first pass's cosine of each of those pairs
        if settings.embedding:
            self._index_items()

    def _index_items(self) -> None:
        self.static = StaticEmbedder(self.settings.model) if self.settings.static else None
        vectors = (self.static or self.transformer).encode(self.items)
        self.index = item_index(vectors)
        self.item_numbers = [frozenset(numbers(t)) for t in self.items]
        self.item_words = [frozenset(words(t)) for t in self.items]
        df = Counter(w for ws in self.item_words for w in ws)
        self.idf = {w: np.log((1 + len(self.items)) / (1 + c)) + 1 for w, c in df.items()}
        self.item_weight = [sum(self.idf[w] for w in ws) or 1.0 for ws in self.item_words]

    def scan(self, checked: Checked) -> list[Match]:
        matches: dict[tuple[int, int], Match] = {}
        if self.ngrams is not None and self.settings.ngram:
            for text, item, share in self.ngrams.match(checked.words, self.settings.ngram_overlap):
                matches[text, item] = Match(text, item, "ngram", round(share, 4))
        if self.settings.embedding and checked.windows:
            for m in self._embedding_matches(checked):
                matches.setdefault((m.text, m.item), m)
        return sorted(matches.values(), key=lambda m: (m.text, m.item))

    def _evidence(self, found_numbers: set, found_words: set, item: int) -> tuple[bool, bool]:
        """(the numbers agree, the rare words agree) between a window and an item."""
        s = self.settings
        nums = self.item_numbers[item]
        union = nums | found_numbers
        numbers_agree = (
            len(nums) >= 2 and len(nums & found_numbers) / len(union) >= s.number_overlap
        )
        shared = sum(self.idf[w] for w in self.item_words[item] & found_words)
        return numbers_agree, shared / self.item_weight[item] >= s.word_overlap

    def _embedding_matches(self, checked: Checked) -> list[Match]:
        s = self.settings
        first = (self.static or self.transformer).encode(checked.windows)
        k = min(s.candidates, len(self.items))
        sims, nearest = self.index.search(first, k)
        pairs, needs = [], []
        for w in range(len(checked.windows)):
            close = [
                (sim, item)
                for sim, item in zip(sims[w], nearest[w])
                if item >= 0 and sim >= s.static_min
            ]
            if not close:
                continue
            window, text = checked.windows[w], checked.window_text[w]
            whole = window is checked.texts[text]  # a short text is its own only window
            found_words = set(checked.words[text] if whole else words(window))
            found_numbers = set(numbers(window))
            for sim, item in close:
                by_numbers, by_words = self._evidence(found_numbers, found_words, int(item))
                if by_numbers or by_words or sim >= s.static_close:
                    pairs.append((w, int(item), float(sim)))
                    needs.append(
                        ("numbers", s.with_numbers)
                        if by_numbers
                        else ("words", s.with_words)
                        if by_words
                        else ("none", s.certain)
                    )
        self.stats["windows"] += len(checked.windows)
        self.stats["pairs_rescored"] += len(pairs)
        if not pairs:
            return []
        if self.static is None:  # the first pass was the transformer already
            scores = [sim for _, _, sim in pairs]
        else:
            a = self.transformer.encode([checked.windows[w] for w, _, _ in pairs])
            b = self.transformer.encode([self.items[i] for _, i, _ in pairs])
            scores = np.einsum("ij,ij->i", a, b).tolist()
        self.scores += [(evidence, score) for (evidence, _), score in zip(needs, scores)]
        self.first_scores += [sim for _, _, sim in pairs]
        return [
            Match(checked.window_text[w], item, "embedding", round(score, 4))
            for (w, item, _), score, (_, need) in zip(pairs, scores, needs)
            if score >= need
        ]


def item_index(vectors: np.ndarray):
    """A faiss inner-product index over normalized vectors: exact for a few thousand items,
    inverted lists (about 4 * sqrt(n) cells, 16 probed) above that, where exact search of
    millions of windows would take minutes. Seeded, so the same items give the same index.
    On the GPU when faiss-gpu finds one."""
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
    if getattr(faiss, "get_num_gpus", lambda: 0)() > 0:  # faiss-gpu on a machine with a GPU
        index = faiss.index_cpu_to_all_gpus(index)
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


def decontaminate(
    tables: dict[str, pa.Table],
    kinds: dict[str, str],
    config,
    base_dir: Path,
    progress: bool = False,
) -> Contamination:
    """Scan every source's records against the manifest's benchmarks."""
    from tqdm.auto import tqdm

    settings = settings_from(config)
    benchmarks = load_benchmarks(
        [e.model_dump(exclude_none=True) for e in config.benchmarks], base_dir
    )
    detector = Detector(benchmarks, settings)
    removed, by_benchmark, audit = {}, {}, []
    for name, table in tqdm(
        tables.items(), desc="decontaminate", unit="source", disable=not progress
    ):
        checked = checked_texts(table, kinds[name], settings)
        matches = detector.scan(checked)
        mask = np.zeros(table.num_rows, bool)
        ids = table.column("id").to_pylist()
        metas = table.column("meta").to_pylist()
        counts: Counter = Counter()
        seen: set[tuple[int, str]] = set()
        for m in matches:
            record = checked.record[m.text]
            mask[record] = True
            benchmark = detector.benchmark[m.item]
            if (record, benchmark) not in seen:
                seen.add((record, benchmark))
                counts[benchmark] += 1
            text = checked.texts[m.text]
            audit.append(
                {
                    "source": name,
                    "id": ids[record],
                    "upstream": json.loads(metas[record]),
                    "part": checked.part[m.text],
                    "benchmark": benchmark,
                    "item_id": detector.item_ids[m.item],
                    "item": detector.items[m.item],
                    "detector": m.detector,
                    "score": m.score,
                    "text": text if len(text) <= AUDIT_TEXT else text[:AUDIT_TEXT] + "…",
                    "removed": not config.report_only,
                }
            )
        removed[name] = mask
        by_benchmark[name] = dict(sorted(counts.items()))
    stats = {
        "benchmark_items": len(detector.items),
        **detector.stats,
        "transformer_texts_embedded": detector.transformer.computed if detector.transformer else 0,
    }
    return Contamination(removed, by_benchmark, audit, dict(stats), detector.scores)
