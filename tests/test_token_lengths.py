"""composer.token_lengths keeps each format's rows by length, not a length per row: its
summary is the one the rows' lengths themselves give (max, median, rows over max_seq_len,
the log histogram), batch after batch, for seeded random lengths."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from composer.report import histogram
from composer.token_lengths import TokenLengths


@pytest.mark.parametrize("seed", range(5))
def test_counts_by_length_summarise_as_the_lengths_do(seed: int):
    rng = np.random.default_rng(seed)
    fmt = SimpleNamespace(
        name="mini", token_lengths=None, max_seq_len=[None, 40, 300][seed % 3], path=Path("tok")
    )
    lengths = TokenLengths([fmt, SimpleNamespace(name="plain")])
    batches = [
        rng.integers(1, int(rng.integers(2, 2000)), int(rng.integers(0, 300))) for _ in range(7)
    ]
    for batch in batches:
        lengths.extend({"mini": batch})
    values = np.concatenate(batches)
    summary = lengths.summary()
    assert list(summary) == ["mini"]
    mini = summary["mini"]
    limit = fmt.max_seq_len
    over = int((values > limit).sum()) if limit else None
    assert mini == {
        "tokenizer": "tok",
        "rows": len(values),
        "max": int(values.max()),
        "median": float(np.median(values)),
        "max_seq_len": limit,
        "over": over,
        "share_over": round(over / len(values), 6) if over is not None else None,
        "histogram": histogram(values, log=True),
    }
    assert max(len(c) for c in lengths.counts.values()) <= values.max() + 1


def test_no_rows_summarise_as_none():
    fmt = SimpleNamespace(name="mini", token_lengths=None, max_seq_len=10, path=Path("tok"))
    summary = TokenLengths([fmt]).summary()["mini"]
    assert summary["rows"] == 0 and summary["histogram"] == {"edges": [], "counts": []}
    assert summary["max"] == 0 and summary["median"] == 0.0 and summary["over"] == 0
