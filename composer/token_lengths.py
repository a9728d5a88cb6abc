"""Rendered rows measured in a model's tokens, for the formats that render with a tokenizer.

A row's length is its prompt's tokens plus its completion's (a pair: the longer of the two
answers), tokenized apart as TRL's prompt-completion type does. The report shows each
format's lengths and the share of rows over the format's `max_seq_len`: rows a trainer
would cut or drop.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from composer.report import histogram


class TokenLengths:
    """Each format's rows by length (`counts[name][n]`: rows of n tokens), not a length per
    row: what a build keeps of them does not grow with its rows."""

    def __init__(self, formats: list[Any]):
        self.formats = {f.name: f for f in formats if hasattr(f, "token_lengths")}
        self.counts: dict[str, np.ndarray] = {name: np.zeros(0, np.int64) for name in self.formats}

    def add(self, kind: str, rendered: pa.Table) -> None:
        """Measure the rows of `rendered` (one kind, a `format` column) in each tokenizer."""
        self.extend(self.measure(kind, rendered))

    def extend(self, measured: dict[str, np.ndarray]) -> None:
        """Add lengths measured apart (by `measure`, in an engine's worker)."""
        for name, values in measured.items():
            more = np.bincount(np.asarray(values, np.int64))
            counts = self.counts[name]
            if len(more) > len(counts):
                counts, more = more, counts
            counts[: len(more)] += more
            self.counts[name] = counts

    def measure(self, kind: str, rendered: pa.Table) -> dict[str, np.ndarray]:
        """The token lengths of `rendered`'s rows, by format (nothing for text)."""
        out: dict[str, np.ndarray] = {}
        if kind == "text" or not self.formats:
            return out
        formats = rendered.column("format")
        for name, fmt in self.formats.items():
            rows = rendered.filter(pc.equal(formats, name))
            if not rows.num_rows:
                continue
            prompt = fmt.token_lengths(rows.column("prompt").to_pylist())
            if kind == "sft":
                answer = fmt.token_lengths(rows.column("completion").to_pylist())
            else:
                answer = np.maximum(
                    fmt.token_lengths(rows.column("chosen").to_pylist()),
                    fmt.token_lengths(rows.column("rejected").to_pylist()),
                )
            out[name] = prompt + answer
        return out

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per format: rows, the longest and median row, the max_seq_len and the share over."""
        out = {}
        for name, counts in self.counts.items():
            fmt = self.formats[name]
            rows = int(counts.sum())
            lengths = np.flatnonzero(counts)  # the lengths some row has, ascending
            limit = fmt.max_seq_len
            over = int(counts[limit + 1 :].sum()) if limit else None
            out[name] = {
                "tokenizer": fmt.path.name,
                "rows": rows,
                "max": int(lengths[-1]) if rows else 0,
                "median": _median(counts) if rows else 0.0,
                "max_seq_len": limit,
                "over": over,
                "share_over": round(over / rows, 6) if over is not None and rows else None,
                "histogram": histogram(lengths, log=True, weights=counts[lengths]),
            }
        return out


def _median(counts: np.ndarray) -> float:
    """`np.median` of the rows `counts` describes (rows of each length), without them."""
    total = int(counts.sum())
    cumulative = np.cumsum(counts)
    low = int(np.searchsorted(cumulative, (total - 1) // 2 + 1))  # the lower middle row's
    high = int(np.searchsorted(cumulative, total // 2 + 1))  # the upper middle row's
    return float((low + high) / 2)
