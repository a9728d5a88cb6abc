"""`composer stats`: the distribution of one column or score, to choose filter thresholds.

The values come from a file (an output file, records.parquet or an input file: a number
column as it is, a string column as lengths in characters, a list column as its number of
items), from a scorer computed on records (the ones `filters: {score: ...}` uses), or from
one source of a manifest, converted the way the build converts it. Missing values are NaN
and counted apart.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from composer.errors import UserError, did_you_mean
from composer.records import SCHEMA

PERCENTILES = (1, 5, 25, 50, 75, 95, 99)
MANIFEST_SUFFIXES = (".yaml", ".yml")
EIGHTHS = " ▏▎▍▌▋▊▉"
FULL = "█"


# ---------------------------------------------------------------- numbers


def column_stats(values: np.ndarray) -> dict[str, float | int | None]:
    """Count, missing (NaN), min, percentiles, max and mean; None for each when no value."""
    values = np.asarray(values, dtype=float)
    present = values[~np.isnan(values)]
    out: dict[str, float | int | None] = {
        "count": int(present.size),
        "missing": int(values.size - present.size),
    }
    keys = ["min", *(f"p{p}" for p in PERCENTILES), "max", "mean"]
    if not present.size:
        return {**out, **dict.fromkeys(keys)}
    quantiles = np.percentile(present, PERCENTILES)
    numbers = [present.min(), *quantiles, present.max(), present.mean()]
    return {**out, **{k: float(v) for k, v in zip(keys, numbers)}}


def _integral(values: np.ndarray) -> bool:
    return bool(values.size) and bool(np.all(np.mod(values, 1) == 0))


def bins_of(
    values: np.ndarray, bins: int = 20, log: bool = False
) -> tuple[np.ndarray, np.ndarray, bool]:
    """(edges, counts, integral) of the finite values.

    Whole numbers (lengths, counts) get whole-number edges, one bin per value when there
    are few, so that each bin's range is exact. `log` spaces the edges geometrically, for
    long-tailed lengths, when every value is above 0.
    """
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if not values.size:
        return np.array([]), np.array([], dtype=np.int64), False
    low, high = float(values.min()), float(values.max())
    integral = _integral(values)
    geometric = log and low > 0 and high > low
    if integral:
        span = high - low + 1
        if span <= bins:
            edges = np.arange(low, high + 2)
        elif geometric:
            edges = np.unique(np.ceil(np.geomspace(low, high + 1, bins + 1)))
            edges[0], edges[-1] = low, high + 1
        else:
            step = math.ceil(span / bins)
            edges = low + step * np.arange(math.ceil(span / step) + 1)
    elif geometric:
        edges = np.geomspace(low, high, bins + 1)
    else:
        edges = np.linspace(low, high if high > low else low + 1, bins + 1)
    counts, _ = np.histogram(values, bins=edges)
    return edges, counts, integral


def _number(x: float) -> str:
    if x == int(x) and abs(x) < 1e15:
        return f"{int(x):,}"
    return f"{x:,.4g}" if abs(x) < 1e6 else f"{x:.3e}"


def _bar(count: int, most: int, width: int) -> str:
    if not most or not count:
        return ""
    eighths = max(1, round(count / most * width * 8))
    whole, part = divmod(eighths, 8)
    return FULL * whole + (EIGHTHS[part] if part else "")


def text_histogram(values: np.ndarray, bins: int = 20, width: int = 40, log: bool = False) -> str:
    """One row per bin: its range, a bar scaled to the fullest bin, and its count."""
    edges, counts, integral = bins_of(values, bins, log)
    if not counts.size:
        return "(no values)"
    if integral:
        firsts = [_number(edges[i]) for i in range(counts.size)]
        lasts = [_number(edges[i + 1] - 1) for i in range(counts.size)]
        w1, w2 = max(map(len, firsts)), max(map(len, lasts))
        labels = [
            f"{a:>{w1}}" + (" " * (w2 + 3) if a == b else f" – {b:>{w2}}")
            for a, b in zip(firsts, lasts)
        ]
        if all(a == b for a, b in zip(firsts, lasts)):
            labels = [f"{a:>{w1}}" for a in firsts]
    else:
        lows = [_number(e) for e in edges[:-1]]
        highs = [_number(e) for e in edges[1:]]
        w1, w2 = max(map(len, lows)), max(map(len, highs))
        labels = [
            f"[{a:>{w1}}, {b:>{w2}}" + ("]" if i == counts.size - 1 else ")")
            for i, (a, b) in enumerate(zip(lows, highs))
        ]
    label_width = max(len(label) for label in labels)
    count_width = max(len(f"{c:,}") for c in counts)
    most = int(counts.max())
    rows = [
        f"{label:>{label_width}} │{_bar(int(c), most, width):<{width}} {c:>{count_width},}"
        for label, c in zip(labels, counts)
    ]
    return "\n".join(rows)


def describe(
    values: np.ndarray, label: str, bins: int = 20, width: int = 40, log: bool = False
) -> str:
    """What `composer stats` prints: the numbers, then the histogram."""
    s = column_stats(values)
    lines = [f"{label}: {s['count']:,} values, {s['missing']:,} missing"]
    if s["count"]:
        lines.append(
            "  ".join(
                f"{k} {_number(s[k])}"
                for k in ("min", *(f"p{p}" for p in PERCENTILES), "max", "mean")
            )
        )
        lines += ["", text_histogram(values, bins, width, log)]
    return "\n".join(lines)


# ---------------------------------------------------------------- values


def _values(column: pa.ChunkedArray | pa.Array, name: str, label: str, csv: bool) -> np.ndarray:
    """Numbers of one column: numbers as they are, strings as lengths, lists as sizes."""
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        if csv:  # a CSV file is read as text: a column of numbers is still numbers
            try:
                column = pc.cast(column, pa.float64())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass
            else:
                kind = column.type
        if not pa.types.is_floating(kind):
            column = pc.utf8_length(column)
    elif pa.types.is_list(kind) or pa.types.is_large_list(kind):
        column = pc.list_value_length(column)
    elif pa.types.is_boolean(kind):
        column = pc.cast(column, pa.int8())
    elif pa.types.is_null(kind):
        return np.full(len(column), np.nan)
    elif not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
        raise UserError(f"{label}: column {name!r} is {kind}, not numbers, text or a list")
    column = pc.cast(column, pa.float64())
    return column.to_numpy(zero_copy_only=False).astype(float)


def _scorers() -> tuple[str, ...]:
    """The built-in scorers' names (composer.scorers, imported only when needed)."""
    from composer.scorers import BUILTIN

    return tuple(BUILTIN)


def _is_scorer(name: str) -> bool:
    return name in _scorers() or name.startswith("meta.") or ":" in name


def _scores(table: pa.Table, scorer: str, base_dir: Path, label: str) -> np.ndarray:
    """`scorer` on every record, each kind scored apart (records.parquet mixes them)."""
    from composer.filters import score

    out = np.full(table.num_rows, np.nan)
    kinds = table.column("kind")
    for kind in pc.unique(kinds).to_pylist():
        rows = np.flatnonzero(pc.equal(kinds, kind).to_numpy(zero_copy_only=False))
        part = table.take(pa.array(rows))
        values = score(part, kind, scorer, base_dir)
        if isinstance(values, pa.ChunkedArray | pa.Array):
            values = values.to_numpy(zero_copy_only=False)
        out[rows] = np.asarray(values, dtype=float)
    return out


def _choices(names: list[str], records: bool) -> list[str]:
    return [*names, *(_scorers() if records else ())]


def _unknown(column: str, names: list[str], records: bool, label: str) -> UserError:
    choices = _choices(names, records)
    hint = did_you_mean(column, choices)
    scorers = (
        ""
        if records
        else (
            "; a scorer (length, words, ...) needs records: records.parquet, or a manifest and "
            "--source"
        )
    )
    return UserError(f"{label}: no column {column!r}{hint}; columns: {', '.join(choices)}{scorers}")


def _from_table(
    table: pa.Table, column: str, label: str, base_dir: Path, csv: bool = False
) -> np.ndarray:
    names = table.column_names
    records = set(SCHEMA.names) <= set(names)
    if column in names:
        return _values(table.column(column), column, label, csv)
    if records and _is_scorer(column):
        return _scores(table, column, base_dir, label)
    raise _unknown(column, names, records, label)


def _manifest_values(path: Path, column: str, source: str | None) -> np.ndarray:
    """`column` of one source's records, converted the way the build converts it."""
    from composer.build import prepare
    from composer.convert import convert_source
    from composer.plugins import registry

    manifest = prepare(path)
    names = [s.name for s in manifest.sources]
    if source is None:
        raise UserError(f"{path}: a manifest needs --source, one of: {', '.join(names)}")
    if source not in names:
        raise UserError(
            f"{path}: no source {source!r}{did_you_mean(source, names)}; sources: "
            f"{', '.join(names)}"
        )
    index = names.index(source)
    spec = manifest.sources[index]
    converted = convert_source(manifest, index, spec, registry()[spec.plugin_name])
    return _from_table(converted.records, column, f"{path} ({source})", manifest.base_dir)


def _read(path: Path, column: str, source: str | None) -> pa.Table:
    """The file's table; of a parquet file, only the columns needed when `column` is one."""
    from composer.errors import InputError
    from composer.readers import read_local

    if path.suffix.lower() == ".parquet" and path.is_file():
        import pyarrow.parquet as pq

        try:
            names = pq.read_schema(path).names
            wanted = None
            if column in names:
                wanted = [column] + (["source"] if source and "source" in names else [])
            return pq.read_table(path, columns=list(dict.fromkeys(wanted)) if wanted else None)
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"{path}: cannot read as parquet: {exc}") from exc
    return read_local([str(path)]).table


def load_values(path_or_manifest: str, column: str, source: str | None = None) -> np.ndarray:
    """The numbers `composer stats` describes, one per row (NaN where missing).

    A manifest (.yaml) with `source`: that source's records, converted as the build does.
    A data file: its column, or a scorer on its records; with `source`, only that source's
    rows (records.parquet and the output files have a `source` column).
    """
    from composer.readers import file_type

    path = Path(path_or_manifest)
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    if path.suffix.lower() in MANIFEST_SUFFIXES:
        return _manifest_values(path, column, source)
    label = str(path)
    table = _read(path, column, source)
    if source is not None:
        if "source" not in table.column_names:
            raise UserError(f"{label}: --source needs a `source` column; this file has none")
        sources = pc.unique(table.column("source")).to_pylist()
        if source not in sources:
            raise UserError(
                f"{label}: no rows of source {source!r}{did_you_mean(source, sources)}; "
                f"sources: {', '.join(str(s) for s in sources)}"
            )
        table = table.filter(pc.equal(table.column("source"), source))
    csv = file_type(str(path)) == "csv"
    return _from_table(table, column, label, path.parent, csv)
