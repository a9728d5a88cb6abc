"""Measures of a record's text, by whole columns: lengths, word counts and scores.

`text_columns` measures what the row filters read (the prompt, the response, a system turn)
in one pass over Arrow batches: turns are flattened once, and per-record sums are
`np.bincount` over each turn's record index. The prompt is the human turns (a DPO pair's
context); the response the assistant (`gpt`) turns, a pair's chosen answer, or a text
record's text. Tool turns (`function_call`, `observation`) count in neither.

`score` gives one float per row (NaN where a row has no value) from a scorer:

- `length`, `words`: the response's characters and whitespace-separated words;
- `lexical_diversity`: distinct words / words of the response, lower-cased;
- `readability`: Flesch reading ease of the response, syllables approximated by vowel groups;
- `meta.FIELD` (or `meta.a.b`): a number the plugin kept in the record's JSON meta;
- `package.module:function`: a function given a pa.Table batch of records, returning one
  number per row. A module beside the manifest can be imported too.
"""

from __future__ import annotations

import importlib
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from composer.errors import UserError, did_you_mean

BATCH_ROWS = 65_536  # rows per Arrow batch; also the rows a user scorer gets per call
BUILTIN = ("length", "words", "lexical_diversity", "readability")


# ---------------------------------------------------------------- text columns


@dataclass(eq=False)
class TextColumns:
    """Per-record measures of the prompt and the response; the texts are joined on demand."""

    table: pa.Table = field(repr=False)
    kind: str
    prompt_chars: np.ndarray
    prompt_words: np.ndarray | None  # None when measured without words
    response_chars: np.ndarray
    response_words: np.ndarray | None
    has_system: np.ndarray

    @cached_property
    def response_text(self) -> pa.ChunkedArray:
        """The response of each record (several assistant turns joined by a newline)."""
        return _texts(self.table, self.kind, "response")

    @cached_property
    def prompt_text(self) -> pa.ChunkedArray:
        """The human turns of each record joined by a newline ("" for text records)."""
        return _texts(self.table, self.kind, "prompt")


def text_columns(table: pa.Table, kind: str, words: bool = True) -> TextColumns:
    """Measure each record of `table` (records of `kind`), batch by batch; `words=False`:
    characters only (counting words is most of the work)."""
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("pc", "pw", "rc", "rw", "sys")}
    for batch in _batches(table):
        n = batch.num_rows
        parent, roles, values = _turns(batch.column("conversations"))
        chars = _lengths(values)
        counts = word_counts(values) if words else None
        human = _is(roles, "human")
        parts["pc"].append(_sums(parent[human], chars[human], n))
        if words:
            parts["pw"].append(_sums(parent[human], counts[human], n))
        parts["sys"].append(_sums(parent[_is(roles, "system")], None, n) > 0)
        if kind == "sft":
            gpt = _is(roles, "gpt")
            parts["rc"].append(_sums(parent[gpt], chars[gpt], n))
            if words:
                parts["rw"].append(_sums(parent[gpt], counts[gpt], n))
        else:
            answer = pc.fill_null(batch.column("chosen" if kind == "dpo" else "text"), "")
            parts["rc"].append(_lengths(answer))
            if words:
                parts["rw"].append(word_counts(answer))
        if kind == "text":  # a text record has no prompt
            parts["pc"][-1][:] = 0
            if words:
                parts["pw"][-1][:] = 0

    def cat(key: str, dtype: type) -> np.ndarray:
        return np.concatenate(parts[key]) if parts[key] else np.zeros(0, dtype)

    return TextColumns(
        table=table,
        kind=kind,
        prompt_chars=cat("pc", np.int64),
        prompt_words=cat("pw", np.int64) if words else None,
        response_chars=cat("rc", np.int64),
        response_words=cat("rw", np.int64) if words else None,
        has_system=cat("sys", bool),
    )


# Whitespace as str.split() has it: ASCII bytes, and the UTF-8 sequences of the others.
_SPACES = [chr(c).encode() for c in range(0x3001) if chr(c).isspace()]
_SPACE_BYTE = np.zeros(256, bool)
_SPACE_BYTE[[s[0] for s in _SPACES if len(s) == 1]] = True
_SPACE_LEAD = np.zeros(256, bool)
_SPACE_LEAD[[s[0] for s in _SPACES if len(s) > 1]] = True
_SPACE_TWO = np.array([int.from_bytes(s, "big") for s in _SPACES if len(s) == 2])
_SPACE_THREE = np.array([int.from_bytes(s, "big") for s in _SPACES if len(s) == 3])


def string_buffers(texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The offsets (int64, from 0) and UTF-8 bytes of a string array, without copying."""
    if len(texts) == 0 or texts.buffers()[2] is None:
        return np.zeros(len(texts) + 1, np.int64), np.zeros(0, np.uint8)
    wide = pa.types.is_large_string(texts.type) or pa.types.is_large_binary(texts.type)
    offsets = np.frombuffer(texts.buffers()[1], np.int64 if wide else np.int32)
    offsets = offsets[texts.offset : texts.offset + len(texts) + 1].astype(np.int64)
    data = np.frombuffer(texts.buffers()[2], np.uint8)[offsets[0] : offsets[-1]]
    return offsets - offsets[0], data


def _space_mask(data: np.ndarray) -> np.ndarray:
    """Which bytes belong to a whitespace character."""
    space = _SPACE_BYTE[data]
    leads = np.flatnonzero(_SPACE_LEAD[data])
    if len(leads):
        padded = np.concatenate([data, np.zeros(2, np.uint8)]).astype(np.int64)
        three = (padded[leads] << 16) | (padded[leads + 1] << 8) | padded[leads + 2]
        is_three = np.isin(three, _SPACE_THREE)
        is_two = np.isin(three >> 8, _SPACE_TWO)
        space[leads[is_two | is_three]] = True
        space[leads[is_two | is_three] + 1] = True
        space[leads[is_three] + 2] = True
    return space


def word_counts(texts: pa.Array) -> np.ndarray:
    """Whitespace-separated words per string, as len(str.split()): the starts of non-space
    runs, counted on the UTF-8 bytes (Arrow's split would build every word, about 1.5x slower)."""
    offsets, data = string_buffers(pc.fill_null(texts, ""))
    return _word_starts(offsets, data)[2]


def _word_starts(offsets: np.ndarray, data: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per byte: whether it is whitespace, whether it starts a word; per string: its words."""
    space = _space_mask(data)
    starts = ~space  # a non-space byte after a space, or first in its string
    starts[1:] &= space[:-1]
    counts = np.zeros(len(offsets) - 1, np.int64)
    filled = np.diff(offsets) > 0
    first = offsets[:-1][filled]
    if len(first):
        starts[first] = ~space[first]
        counts[filled] = np.add.reduceat(starts, first, dtype=np.int64)
    return space, starts, counts


def _batches(table: pa.Table) -> list[pa.RecordBatch]:
    columns = [c for c in ("conversations", "chosen", "text", "meta") if c in table.column_names]
    return table.select(columns).to_batches(max_chunksize=BATCH_ROWS)


def _turns(conversations: pa.Array) -> tuple[np.ndarray, pa.Array, pa.Array]:
    """Every turn of a batch: its record's index in the batch, its role and its value."""
    flat = pc.list_flatten(conversations)
    parent = pc.list_parent_indices(conversations).to_numpy(zero_copy_only=False)
    roles = pc.fill_null(pc.struct_field(flat, "from"), "")
    values = pc.fill_null(pc.struct_field(flat, "value"), "")
    return parent.astype(np.int64), roles, values


def _is(roles: pa.Array, role: str) -> np.ndarray:
    return pc.equal(roles, role).to_numpy(zero_copy_only=False)


def _lengths(texts: pa.Array) -> np.ndarray:
    return pc.utf8_length(pc.fill_null(texts, "")).to_numpy(zero_copy_only=False).astype(np.int64)


def _sums(rows: np.ndarray, values: np.ndarray | None, n: int) -> np.ndarray:
    """Per record: the sum of `values` over its turns (`rows`), or their count."""
    return np.bincount(rows, weights=values, minlength=n).astype(np.int64)


def _texts(table: pa.Table, kind: str, side: str) -> pa.ChunkedArray:
    chunks = []
    for batch in _batches(table):
        if side == "response" and kind != "sft":
            column = batch.column("chosen" if kind == "dpo" else "text")
            chunks.append(pc.fill_null(column, "").cast(pa.string()))
            continue
        if side == "prompt" and kind == "text":
            chunks.append(pa.array([""] * batch.num_rows, pa.string()))
            continue
        parent, roles, values = _turns(batch.column("conversations"))
        mine = _is(roles, "gpt" if side == "response" else "human")
        counts = np.bincount(parent[mine], minlength=batch.num_rows)
        offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
        lists = pa.ListArray.from_arrays(offsets, values.filter(pa.array(mine)))
        chunks.append(pc.binary_join(lists, "\n").cast(pa.string()))
    return pa.chunked_array(chunks, pa.string())


# ---------------------------------------------------------------- scores


def score(table: pa.Table, kind: str, scorer: str, base_dir: Path) -> np.ndarray:
    """One score per row of `table` from `scorer` (see the module docstring); NaN: no value."""
    return score_columns(text_columns(table, kind), scorer, base_dir)


def score_columns(columns: TextColumns, scorer: str, base_dir: Path) -> np.ndarray:
    """`score`, reusing measured text columns."""
    if scorer == "length":
        return columns.response_chars.astype(np.float64)
    if scorer == "words":
        return columns.response_words.astype(np.float64)
    if scorer == "lexical_diversity":
        return _per_chunk(columns.response_text, _lexical_diversity)
    if scorer == "readability":
        return _per_chunk(columns.response_text, _readability)
    if scorer.startswith("meta."):
        return meta_scores(columns.table, scorer)
    if ":" in scorer:
        return _function_scores(columns.table, scorer, base_dir)
    raise UserError(f"filters.score: {unknown_scorer(scorer)}")


def scorer_problem(scorer: str, base_dir: Path) -> str | None:
    """What is wrong with a scorer name, found without data (a function is imported)."""
    if scorer in BUILTIN:
        return None
    if scorer.startswith("meta."):
        if not all(_meta_path(scorer)):
            return f"scorer {scorer!r}: give a meta field, as in 'meta.rating' or 'meta.a.b'"
        return None
    if ":" in scorer:
        try:
            load_function(scorer, base_dir)
        except UserError as exc:
            return str(exc)
        return None
    return unknown_scorer(scorer)


def unknown_scorer(scorer: str) -> str:
    return (
        f"unknown scorer {scorer!r}{did_you_mean(scorer, BUILTIN)}; built-in: "
        f"{', '.join(BUILTIN)}; or 'meta.FIELD' (a value in the record's meta), or "
        "'package.module:function'"
    )


def _per_chunk(texts: pa.ChunkedArray, fn: Callable[[pa.Array], np.ndarray]) -> np.ndarray:
    parts = [fn(chunk) for chunk in texts.chunks]
    return np.concatenate(parts) if parts else np.zeros(0)


def _words(texts: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Every lower-cased word of a chunk of texts, and the index of its text.

    The words are the texts' non-space bytes, back to back (one copy), cut at each word's
    start: no Python strings, and no Arrow split building a list per text."""
    offsets, data = string_buffers(pc.utf8_lower(pc.fill_null(texts, "")))
    space, starts, counts = _word_starts(offsets, data)
    solid = data[~space]
    cuts = np.append(np.flatnonzero(starts[~space]), len(solid)).astype(np.int32)
    words = pa.StringArray.from_buffers(len(cuts) - 1, pa.py_buffer(cuts), pa.py_buffer(solid))
    return words, np.repeat(np.arange(len(texts)), counts)


def _lexical_diversity(texts: pa.Array) -> np.ndarray:
    words, rows = _words(texts)
    encoded = pc.dictionary_encode(words)
    size = max(len(encoded.dictionary), 1)
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    pairs = pc.unique(pa.array(rows * size + codes)).to_numpy()  # distinct (row, word)
    distinct = np.bincount(pairs // size, minlength=len(texts))
    total = np.bincount(rows, minlength=len(texts))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, distinct / total, np.nan)


_VOWEL = np.zeros(256, np.uint8)
_VOWEL[np.frombuffer(b"aeiouy", np.uint8)] = 1


def _vowel_groups(words: pa.Array) -> np.ndarray:
    """Runs of [aeiouy] in each (non-empty) word, on the UTF-8 bytes: a regex per word is
    4x slower."""
    if not len(words):
        return np.zeros(0, np.int64)
    offsets, data = string_buffers(words)
    vowel = _VOWEL[data]
    starts = vowel.copy()  # a vowel after a non-vowel, or first in its word
    starts[1:] &= 1 - vowel[:-1]
    first = offsets[:-1]
    starts[first] = vowel[first]
    return np.add.reduceat(starts, first, dtype=np.int64)


def _readability(texts: pa.Array) -> np.ndarray:
    """Flesch reading ease: 206.835 - 1.015 words/sentence - 84.6 syllables/word.

    A word's syllables are its vowel groups (at least one); sentences are runs of [.!?]
    (at least one per text)."""
    words, rows = _words(texts)
    syllables = np.bincount(rows, np.maximum(_vowel_groups(words), 1), minlength=len(texts))
    total = np.bincount(rows, minlength=len(texts))
    sentences = pc.count_substring_regex(pc.fill_null(texts, ""), "[.!?]+")
    sentences = np.maximum(sentences.to_numpy(zero_copy_only=False), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ease = 206.835 - 1.015 * total / sentences - 84.6 * syllables / total
    return np.where(total > 0, ease, np.nan)


# ---------------------------------------------------------------- meta


def _meta_path(scorer: str) -> list[str]:
    return scorer.removeprefix("meta.").split(".")


def meta_scores(table: pa.Table, scorer: str) -> np.ndarray:
    """A number from each record's JSON meta (`meta.a.b`); NaN where it is missing or null.

    The whole column is parsed at once by Arrow's JSON reader, reading only that field as a
    number; numbers kept as strings ("4.5") or booleans take a slower path that still
    accepts them."""
    path = _meta_path(scorer)
    meta = pc.fill_null(table.column("meta"), "{}")
    meta = pc.if_else(pc.equal(pc.utf8_trim_whitespace(meta), ""), "{}", meta)
    if pc.any(pc.match_substring_regex(meta, "[\r\n]")).as_py():
        meta = pc.replace_substring_regex(meta, "[\r\n]", " ")  # raw, they are only whitespace
    if not len(meta):
        return np.zeros(0)
    longest = pc.max(pc.binary_length(meta)).as_py()
    everything = meta.combine_chunks().cast(pa.large_string())
    one = pa.LargeListArray.from_arrays(pa.array([0, len(meta)], pa.int64()), everything)
    data = pc.binary_join(one, pa.scalar("\n", pa.large_string()))[0].as_buffer()
    kind: pa.DataType = pa.float64()
    for name in reversed(path):
        kind = pa.struct([(name, kind)])
    options = pj.ParseOptions(explicit_schema=pa.schema(kind), unexpected_field_behavior="ignore")
    read = pj.ReadOptions(block_size=max(1 << 20, 2 * longest + 2))
    try:
        parsed = pj.read_json(pa.BufferReader(data), read_options=read, parse_options=options)
    except pa.ArrowInvalid:
        return _meta_scores_slowly(data, table, scorer, path)
    if parsed.num_rows != len(meta):
        raise UserError(f"filters.score: scorer {scorer!r}: the meta column is not JSON per row")
    values = pc.struct_field(parsed.to_struct_array(), path)
    return pc.fill_null(values, math.nan).to_numpy(zero_copy_only=False).astype(np.float64)


def _meta_scores_slowly(data: pa.Buffer, table: pa.Table, scorer: str, path: list) -> np.ndarray:
    """Per row, for meta whose field is not always a JSON number (or not JSON at all)."""
    import json

    out = np.full(table.num_rows, np.nan)
    ids = table.column("id")
    for i, line in enumerate(data.to_pybytes().decode("utf-8").split("\n")):
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            raise UserError(
                f"filters.score: scorer {scorer!r}: record {ids[i]} has meta that is not JSON"
            ) from None
        for name in path:
            value = value.get(name) if isinstance(value, dict) else None
        if value is None:
            continue
        try:
            out[i] = float(value)
        except (TypeError, ValueError):
            raise UserError(
                f"filters.score: scorer {scorer!r}: record {ids[i]} has {value!r}, not a number"
            ) from None
    return out


# ---------------------------------------------------------------- user functions


def load_function(spec: str, base_dir: Path) -> Callable:
    """The function named `package.module:function`, importable or a module in `base_dir`."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise UserError(f"scorer {spec!r}: expected 'package.module:function'")
    added = str(base_dir) not in sys.path
    if added:
        sys.path.insert(0, str(base_dir))
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise UserError(
                f"scorer {spec!r}: no module {module_name!r} (not installed, and not in {base_dir})"
            ) from None
        raise UserError(f"scorer {spec!r}: importing {module_name!r} failed: {exc}") from None
    except Exception as exc:
        raise UserError(
            f"scorer {spec!r}: importing {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from None
    finally:
        if added:
            sys.path.remove(str(base_dir))
    fn = getattr(module, attr, None)
    if callable(fn) and not getattr(module, "__file__", None):
        raise UserError(
            f"scorer {spec!r}: {module_name!r} is built into Python, not a scorer: write a "
            "function that takes a batch of records and returns one number per record"
        )
    if not callable(fn):
        names = [n for n in dir(module) if not n.startswith("_")]
        raise UserError(
            f"scorer {spec!r}: module {module_name!r} has no function {attr!r}"
            f"{did_you_mean(attr, names)}"
        )
    return fn


def _function_scores(table: pa.Table, spec: str, base_dir: Path) -> np.ndarray:
    """A user scorer, called on batches of BATCH_ROWS records (pa.Table slices)."""
    fn = load_function(spec, base_dir)
    parts = []
    for start in range(0, table.num_rows, BATCH_ROWS):
        batch = table.slice(start, BATCH_ROWS)
        try:
            result = fn(batch)
        except Exception as exc:
            raise UserError(
                f"filters.score: scorer {spec!r} failed: {type(exc).__name__}: {exc}"
            ) from None
        try:
            values = np.asarray(result, dtype=np.float64)
        except (TypeError, ValueError):
            raise UserError(
                f"filters.score: scorer {spec!r} must return numbers, one per row; got "
                f"{type(result).__name__}"
            ) from None
        if values.shape != (batch.num_rows,):
            raise UserError(
                f"filters.score: scorer {spec!r} returned {values.size} values for "
                f"{batch.num_rows} rows; it must return one number per row"
            )
        parts.append(values)
    return np.concatenate(parts) if parts else np.zeros(0)
