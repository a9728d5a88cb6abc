"""Row filters: keep the records a source's `filters:` (merged over the manifest's) allow.

Each filter is evaluated on the rows still kept, in FILTER_ORDER, cheap measures first, so a
row that fails several is counted once, for the first; the slow ones (language, tokens) see
only the survivors. Score filters come last, in the order given: a `top` share is resolved
over the scores of the rows still kept at that point (after the other filters, the earlier
score filters and this filter's own min/max):

- `by: quantile` keeps the top share of those rows by rank: the threshold is the score of
  the ceil(top * n)-th highest, and rows tied with it are kept too;
- `by: range` keeps scores >= lowest + (1 - top) * (highest - lowest) of those rows.

A NaN score (a row without the value) fails a score filter. `min`/`max` are plain bounds.
Scores are computed for every row, kept or not, for the report's distributions.

`language` reads the response's first LANGUAGE_BYTES with py3langid's model (run on whole
columns, see _LanguageModel); a response without a word fails it. `max_tokens` counts the
prompt's and the response's tokens (no special tokens, no system turn) with a local
tokenizer. `refusals` and `as_an_ai` are composer.kit's checks.

Measures are those of composer.scorers.text_columns: the prompt is the human turns (a DPO
pair's context; a text record has none, and passes `ratio`), the response the `gpt` turns
(a pair's chosen answer, so that a rejected refusal does not drop the pair; a text record's
text).
"""

from __future__ import annotations

import functools
import math
import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from composer import kit
from composer.errors import UserError, did_you_mean
from composer.scorers import (
    TextColumns,
    score,
    score_columns,
    scorer_problem,
    string_buffers,
    text_columns,
)

if TYPE_CHECKING:  # composer.manifest imports this module in its checks
    from composer.manifest import Bounds, Filters, MaxTokens

__all__ = [
    "FILTER_ORDER",
    "Filtered",
    "TextColumns",
    "apply_filters",
    "check_filters",
    "detect_languages",
    "score",
    "text_columns",
]

FILTER_ORDER = (
    "system_prompt",
    "prompt_chars",
    "prompt_words",
    "response_chars",
    "response_words",
    "ratio",
    "refusals",
    "as_an_ai",
    "language",
    "max_tokens",
    "score",  # one entry per score filter, "score:<scorer>"
)
LANGUAGE_BYTES = 1024  # the language of a response is read from its first 1 KB (UTF-8)
TOKEN_BATCH = 4096


@dataclass
class Filtered:
    keep: np.ndarray  # bool per row
    dropped: dict[str, int]  # filter -> rows it dropped first (non-zero, in FILTER_ORDER)
    scores: dict[str, np.ndarray]  # scorer -> score per row (for the report's distributions)
    thresholds: dict[str, dict]  # scorer -> {"min": x | None, "max": y | None}, top resolved
    response_chars: np.ndarray  # per row, for the report's length histogram


def apply_filters(table: pa.Table, kind: str, filters: Filters | None, base_dir: Path) -> Filtered:
    """Which records of `table` (all of `kind`) pass `filters`, and why the others do not."""
    columns = text_columns(table, kind)
    keep = np.ones(table.num_rows, bool)
    dropped: dict[str, int] = {}
    scores: dict[str, np.ndarray] = {}
    thresholds: dict[str, dict] = {}

    def drop(name: str, fails: np.ndarray) -> None:
        count = int(np.count_nonzero(keep & fails))
        if count:
            dropped[name] = dropped.get(name, 0) + count
        keep[fails] = False

    def on_kept(name: str, test) -> None:
        """Run a slow test on the kept rows only; `test(rows)` says which of them fail."""
        rows = np.flatnonzero(keep)
        if len(rows):
            fails = np.zeros(len(keep), bool)
            fails[rows] = test(rows)
            drop(name, fails)

    if filters is None:
        return Filtered(keep, dropped, scores, thresholds, columns.response_chars)
    if filters.system_prompt != "any":
        drop("system_prompt", columns.has_system != (filters.system_prompt == "with"))
    for name in ("prompt_chars", "prompt_words", "response_chars", "response_words"):
        bounds = getattr(filters, name)
        if bounds is not None:
            drop(name, ~_within(getattr(columns, name).astype(np.float64), bounds))
    if filters.ratio is not None:
        prompt = columns.prompt_chars
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = columns.response_chars / np.where(prompt > 0, prompt, 1)
        drop("ratio", (prompt > 0) & ~_within(ratio, filters.ratio))
    if filters.refusals:
        on_kept("refusals", lambda rows: _matches(columns, rows, kit.REFUSAL, kit.has_refusal))
    if filters.as_an_ai:
        on_kept("as_an_ai", lambda rows: _matches(columns, rows, kit.AS_AN_AI, kit.as_an_ai))
    if filters.language is not None:
        wanted = np.array(filters.language, dtype=object)

        def other_language(rows: np.ndarray) -> np.ndarray:
            texts = columns.response_text.take(pa.array(rows))
            wordless = columns.response_words[rows] == 0  # nothing to read a language from
            return ~np.isin(detect_languages(texts), wanted) | wordless

        on_kept("language", other_language)
    if filters.max_tokens is not None:
        spec = filters.max_tokens
        on_kept("max_tokens", lambda rows: _count_tokens(columns, rows, spec, base_dir) > spec.max)
    for entry in filters.score:
        if entry.scorer not in scores:
            scores[entry.scorer] = score_columns(columns, entry.scorer, base_dir)
        values = scores[entry.scorer]
        low, high = entry.min, entry.max
        if entry.top is not None:
            candidates = values[keep & _within(values, entry)]
            cut = _top_threshold(candidates, entry.top, entry.by)
            low = cut if low is None or (cut is not None and cut > low) else low
        bounds = thresholds.setdefault(entry.scorer, {"min": None, "max": None})
        if low is not None and (bounds["min"] is None or low > bounds["min"]):
            bounds["min"] = float(low)
        if high is not None and (bounds["max"] is None or high < bounds["max"]):
            bounds["max"] = float(high)
        drop(f"score:{entry.scorer}", ~_within(values, _Range(low, high)))
    return Filtered(keep, dropped, scores, thresholds, columns.response_chars)


@dataclass
class _Range:
    min: float | None
    max: float | None


def _within(values: np.ndarray, bounds: Bounds | _Range) -> np.ndarray:
    """values in [min, max] (either end open); NaN is never within."""
    ok = ~np.isnan(values)
    if bounds.min is not None:
        ok &= values >= bounds.min
    if bounds.max is not None:
        ok &= values <= bounds.max
    return ok


def _top_threshold(values: np.ndarray, top: float, by: str) -> float | None:
    """The lowest score kept by `top` over `values` (see the module docstring)."""
    if not len(values):
        return None
    if by == "range":
        low, high = float(values.min()), float(values.max())
        return low + (1 - top) * (high - low)
    count = max(1, math.ceil(top * len(values) - 1e-9))  # 0.1 * 30 is 3.0000000000000004
    return float(np.partition(values, len(values) - count)[len(values) - count])


def _matches(columns: TextColumns, rows: np.ndarray, pattern, check) -> np.ndarray:
    """Which responses of `rows` match a composer.kit pattern.

    Arrow's RE2 finds the candidates over the whole column; the pattern's `\\b` is ASCII
    there and touches ASCII letters only in the kit's patterns, so it matches a superset of
    Python's, and each candidate is confirmed by `check` (kit.has_refusal or kit.as_an_ai)
    to give exactly the kit's answer. A pattern RE2 cannot compile is checked row by row."""
    texts = columns.response_text.take(pa.array(rows))
    try:
        hits = pc.match_substring_regex(texts, pattern.pattern, ignore_case=True)
    except pa.ArrowInvalid:
        hits = pa.array(np.ones(len(texts), bool))
    out = hits.to_numpy(zero_copy_only=False).astype(bool)
    candidates = np.flatnonzero(out)
    if len(candidates):
        strings = texts.take(pa.array(candidates)).to_pylist()
        out[candidates] = [check(s) for s in strings]
    return out


# ---------------------------------------------------------------- language


class _LanguageModel:
    """py3langid's naive Bayes model, run on many texts at once.

    py3langid walks a DFA over each text's bytes in Python (about 0.7 ms for 500 bytes).
    Here the walk is one numpy step per byte position over all texts of a group (sorted by
    length, so that the texts still walking are a prefix), and the feature counts are a
    sparse matrix multiplied by the model's table. The result is py3langid's `classify` on
    the text's first LANGUAGE_BYTES bytes (a test checks it)."""

    def __init__(self) -> None:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        model = LanguageIdentifier.from_model_file(MODEL_FILE)
        self.classes = np.array(model.nb_classes, dtype=object)
        nextmove = np.asarray(model.tk_nextmove).astype(np.int64)
        rowbase = np.asarray(model.tk_row).astype(np.int64) << 8
        # By transition (a state's row offset + a byte): the next state's row offset, and
        # the feature that state emits (-1: none).
        self.next_row = rowbase[nextmove].astype(np.int32)
        self.start = int(rowbase[0])  # the row of state 0, where every walk starts
        self.emits = np.asarray(model.tk_output, dtype=np.int32)[nextmove]
        self.table = np.asarray(model.nb_ptc, dtype=np.float32)
        self.prior = np.asarray(model.nb_pc, dtype=np.float32)
        first: dict[str, int] = {}
        self.aliases = []  # (first column, a later column with the same label)
        for i, label in enumerate(model.nb_classes):
            if label in first:
                self.aliases.append((first[label], i))
            first.setdefault(label, i)

    @property
    def labels(self) -> list[str]:
        return list(dict.fromkeys(self.classes.tolist()))

    def classify(self, texts: pa.Array | pa.ChunkedArray, budget: int = 1 << 24) -> np.ndarray:
        """The language code of each text (py3langid's label)."""
        if isinstance(texts, pa.ChunkedArray):
            parts = [self.classify(chunk, budget) for chunk in texts.chunks]
            return np.concatenate(parts) if parts else np.zeros(0, object)
        if not len(texts):
            return np.zeros(0, object)
        texts = pc.utf8_slice_codeunits(pc.fill_null(texts, ""), 0, LANGUAGE_BYTES)
        texts = pc.if_else(pc.utf8_is_upper(texts), pc.utf8_lower(texts), texts)
        other = pc.invert(pc.string_is_ascii(texts))  # ASCII is NFC already
        if pc.any(other).as_py():  # Python's NFC is 3x Arrow's, with its quick check
            normal = [unicodedata.normalize("NFC", t) for t in texts.filter(other).to_pylist()]
            texts = pc.replace_with_mask(texts, other, pa.array(normal, pa.string()))
        offsets, raw = string_buffers(texts)
        starts = offsets[:-1]
        lengths = np.minimum(np.diff(offsets), LANGUAGE_BYTES).astype(np.int64)
        for _ in range(3):  # end a cut text on a character boundary: not in a UTF-8 sequence
            cut = np.flatnonzero(lengths < np.diff(offsets))
            inside = (raw[starts[cut] + lengths[cut]] & 0xC0) == 0x80
            lengths[cut[inside]] -= 1
        order = np.argsort(-lengths, kind="stable")
        best = np.zeros(len(texts), np.int64)
        total = np.cumsum(lengths[order])
        start = 0
        while start < len(order):  # groups of texts that fit the byte budget (at least one)
            before = total[start - 1] if start else 0
            end = max(start + 1, int(np.searchsorted(total, before + budget, side="right")))
            rows = order[start:end]
            best[rows] = self._best(raw, starts[rows], lengths[rows])
            start = end
        return self.classes[best]

    def _best(self, raw: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """The best class of each text (lengths sorted from the longest)."""
        from scipy.sparse import csr_matrix

        n = len(starts)
        walking = np.searchsorted(-lengths, -np.arange(int(lengths[0])), "left")  # texts per step
        position = starts.astype(np.int32)  # of each text's next byte
        row = np.full(n, self.start, np.int32)
        hit_texts, hit_features = [], []
        for k in walking:
            move = row[:k] + raw[position[:k]]
            position[:k] += 1
            row[:k] = self.next_row[move]
            feature = self.emits[move]
            hit = np.flatnonzero(feature >= 0)
            hit_texts.append(hit)
            hit_features.append(feature[hit])
        texts = np.concatenate(hit_texts) if hit_texts else np.zeros(0, np.int64)
        features = np.concatenate(hit_features) if hit_features else np.zeros(0, np.int32)
        counts = csr_matrix(
            (np.ones(len(texts), np.float32), (texts, features)), shape=(n, len(self.table))
        )
        counts.sum_duplicates()
        counts.data = np.log1p(counts.data)
        scores = np.asarray(counts @ self.table) + self.prior
        scores[np.diff(counts.indptr) == 0] = np.finfo(np.float32).min  # no features
        for i, j in self.aliases:
            scores[:, i] = np.maximum(scores[:, i], scores[:, j])
            scores[:, j] = np.finfo(np.float32).min
        return scores.argmax(axis=1)


@functools.lru_cache(maxsize=1)
def _language_model() -> _LanguageModel:
    return _LanguageModel()


def detect_languages(texts: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The language (ISO 639 code, py3langid's) of each text, from its first 1 KB."""
    return _language_model().classify(texts)


def languages() -> list[str]:
    """The language codes the detector knows."""
    return _language_model().labels


# ---------------------------------------------------------------- tokens


def _count_tokens(
    columns: TextColumns, rows: np.ndarray, limit: MaxTokens, base_dir: Path
) -> np.ndarray:
    """Tokens of the prompt plus the response of each of `rows` (no special tokens)."""
    count = load_tokenizer(limit.tokenizer, base_dir)
    index = pa.array(rows)
    out = np.zeros(len(rows), np.int64)
    for text in (columns.prompt_text, columns.response_text):
        texts = text.take(index)
        for start in range(0, len(rows), TOKEN_BATCH):
            out[start : start + TOKEN_BATCH] += count(texts.slice(start, TOKEN_BATCH).to_pylist())
    return out


def _tokenizer_path(spec: str, base_dir: Path) -> Path | None:
    """The tokenizer.json a spec names (a file, or a folder holding one), if it does."""
    path = base_dir / os.path.expanduser(spec)
    if path.is_file():
        return path
    if (path / "tokenizer.json").is_file():
        return path / "tokenizer.json"
    return None


def tokenizer_problem(spec: str, base_dir: Path) -> str | None:
    """What is wrong with a max_tokens tokenizer, found without loading it."""
    if _tokenizer_path(spec, base_dir) is not None:
        return None
    path = base_dir / os.path.expanduser(spec)
    if path.is_dir() and (path / "tokenizer_config.json").is_file():
        return None
    if path.is_dir() or spec.endswith(".json") or spec.startswith((".", "/", "~")):
        return f"no tokenizer.json at {path}"
    from huggingface_hub import try_to_load_from_cache

    for name in ("tokenizer.json", "tokenizer_config.json"):
        try:
            if isinstance(try_to_load_from_cache(spec, name), str):
                return None
        except ValueError:  # not a valid repo id
            break
    return (
        f"tokenizer {spec!r} is not a tokenizer.json file, a folder with one, or a model in "
        f"the Hugging Face cache (download it first: huggingface-cli download {spec})"
    )


@functools.lru_cache(maxsize=8)
def _load_tokenizer(spec: str, base_dir: Path):
    path = _tokenizer_path(spec, base_dir)
    if path is not None:
        from tokenizers import Tokenizer

        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:
            raise UserError(
                f"filters.max_tokens.tokenizer: cannot read {path}: {type(exc).__name__}: {exc}"
            ) from None
    else:
        from transformers import AutoTokenizer

        folder = base_dir / os.path.expanduser(spec)
        name = str(folder) if folder.is_dir() else spec
        try:
            loaded = AutoTokenizer.from_pretrained(name, local_files_only=True)
        except Exception as exc:
            raise UserError(
                f"filters.max_tokens.tokenizer: cannot load tokenizer {spec!r} (a tokenizer.json"
                f" file, a folder with one, or a model in the Hugging Face cache): "
                f"{type(exc).__name__}: {exc}"
            ) from None
        if not loaded.is_fast:

            def slow(texts: list[str]) -> np.ndarray:
                ids = loaded(texts, add_special_tokens=False)["input_ids"]
                return np.fromiter(map(len, ids), np.int64, count=len(ids))

            return slow
        tokenizer = loaded.backend_tokenizer
    tokenizer.no_truncation()
    tokenizer.no_padding()

    def fast(texts: list[str]) -> np.ndarray:
        encoded = tokenizer.encode_batch_fast(texts, add_special_tokens=False)
        return np.fromiter((len(e) for e in encoded), np.int64, count=len(encoded))

    return fast


def load_tokenizer(spec: str, base_dir: Path):
    """A function counting the tokens of each of a list of strings, for `max_tokens`."""
    return _load_tokenizer(spec, Path(base_dir).resolve())


# ---------------------------------------------------------------- checks


def check_filters(filters: Filters, base_dir: Path) -> list[tuple[tuple, str]]:
    """Problems found without data, as (key path within the filters mapping, message)."""
    problems: list[tuple[tuple, str]] = []
    for i, entry in enumerate(filters.score):
        problem = scorer_problem(entry.scorer, base_dir)
        if problem:
            problems.append((("score", i, "scorer"), problem))
    if filters.language is not None:
        known = languages()
        for i, code in enumerate(filters.language):
            if code not in known:
                problems.append(
                    (
                        ("language", i),
                        f"unknown language code {code!r}{did_you_mean(code, known)}; "
                        f"known (ISO 639): {', '.join(sorted(known))}",
                    )
                )
    if filters.max_tokens is not None:
        problem = tokenizer_problem(filters.max_tokens.tokenizer, base_dir)
        if problem:
            problems.append((("max_tokens", "tokenizer"), problem))
    return problems
