"""Read a source's upstream rows into one Arrow table: local files or the Hugging Face Hub.

Local files are read with pyarrow (fast, and precise about where a file is broken); hub
datasets go through `datasets.load_dataset` with id, config, split, revision and
data_files. Unparseable JSON lines do not stop the read: they come back as `BadRow`s, so
the build can reject them with their line number instead of failing the whole source.
"""

from __future__ import annotations

import glob
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from composer.errors import InputError

SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".parquet", ".pq", ".arrow")
# Bounds on hostile input: nesting deeper than this is a rejected row (Python's own parser
# stops near 1,000 with a RecursionError), and a CSV cell may be up to a block in size.
MAX_DEPTH = 100
CSV_BLOCK = 64 << 20
COMPRESSIONS = (".gz", ".bz2", ".zst", ".lz4")


@dataclass
class BadRow:
    where: str
    detail: str


# The first bytes of each compression, to tell a file that only has the suffix.
MAGIC = {
    ".gz": (b"\x1f\x8b", "gzip"),
    ".bz2": (b"BZh", "bzip2"),
    ".zst": (b"\x28\xb5\x2f\xfd", "zstd"),
    ".lz4": (b"\x04\x22\x4d\x18", "lz4"),
}


@dataclass
class Upstream:
    """A source's rows as one table, with where each row came from (file and line)."""

    table: pa.Table
    files: list[str]
    bad_rows: list[BadRow] = field(default_factory=list)
    # For each table row: index into `files`, and the 1-based line (jsonl) or row number.
    file_index: list[int] = field(default_factory=list)
    line: list[int] = field(default_factory=list)
    revision: str | None = None
    # `datasets` features, when some columns hold JSON text (mixed-type fields) to decode.
    features: Any = None

    # The upstream row number of each table row, after `take` (else the table's own).
    numbers: list[int] | None = None
    warnings: list[str] = field(default_factory=list)  # for the report (a file read twice)

    def take(self, rows: list[int]) -> Upstream:
        """Only `rows` (table row indices), keeping where each came from."""
        pick = lambda values: [values[i] for i in rows] if values else values  # noqa: E731
        return Upstream(
            table=self.table.take(pa.array(rows, pa.int64())),
            files=self.files,
            bad_rows=self.bad_rows,
            file_index=pick(self.file_index),
            line=pick(self.line),
            revision=self.revision,
            features=self.features,
            numbers=[self.number(i) for i in rows],
            warnings=self.warnings,
        )

    def number(self, row: int) -> int:
        return self.numbers[row] if self.numbers is not None else row

    def where(self, row: int) -> str:
        if not self.file_index:
            return f"row {self.number(row) + 1}"
        name = os.path.basename(self.files[self.file_index[row]])
        label = "line" if file_type(name) == "jsonl" else "row"
        return f"{name}:{label} {self.line[row]}"

    def batch(self, start: int, size: int) -> dict[str, list]:
        """Rows [start, start + size) as Python columns, JSON-typed fields decoded."""
        columns = self.table.slice(start, size).to_pydict()
        return self.features.decode_batch(columns) if self.features is not None else columns


def resolve_files(path: str | list[str], base: Path, repeats: list[str] | None = None) -> list[str]:
    """Expand a path, a glob or a list of them (relative to the manifest) to files.

    A file reached twice (listed twice, matched by two globs, or through a symlink cycle)
    is read once; its later names are added to `repeats` when a list is given.
    """
    files: list[str] = []
    seen: set[str] = set()
    for item in [path] if isinstance(path, str) else path:
        full = str(base / os.path.expanduser(item))
        matches = sorted(glob.glob(full, recursive=True)) if glob.has_magic(full) else [full]
        for match in matches:
            real = os.path.realpath(match)
            if real in seen:
                if repeats is not None:
                    repeats.append(match)
                continue
            seen.add(real)
            files.append(match)
    return files


def repeats_warning(repeats: list[str], base: Path) -> list[str]:
    """The warning for files a source's globs reached more than once (each read once)."""
    if not repeats:
        return []
    names = sorted({os.path.relpath(os.path.realpath(f), base) for f in repeats})
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return [
        f"{len(repeats):,} path{'s' if len(repeats) > 1 else ''} reached a file already read "
        f"(listed twice, two globs, or a symlink loop): {shown}; each file was read once"
    ]


def file_type(path: str) -> str | None:
    """The reader for a path: jsonl, json, csv, parquet, arrow or disk (a save_to_disk folder)."""
    if os.path.isdir(path):
        return "disk"
    name = path.lower()
    for comp in COMPRESSIONS:
        name = name.removesuffix(comp)
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return {"ndjson": "jsonl", "pq": "parquet"}.get(suffix[1:], suffix[1:])
    return None


def _open_bytes(path: str) -> bytes:
    suffix = os.path.splitext(path.lower())[1]
    if suffix in MAGIC:
        magic, name = MAGIC[suffix]
        with open(path, "rb") as f:
            head = f.read(len(magic))
        if head != magic:
            raise InputError(f"{path}: not {name} data, though the name ends in {suffix}")
    compression = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".lz4": "lz4"}.get(suffix)
    with open(path, "rb") as f:  # a Python file: Arrow takes only UTF-8 file names
        if compression is None:
            return f.read()
        with pa.CompressedInputStream(pa.PythonFile(f, mode="r"), compression) as stream:
            return stream.read()


def _arrow_path(path: str) -> Any:
    """`path` for Arrow's own readers, or an open file where the name is not UTF-8 (a
    surrogate escape that Arrow cannot encode)."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return open(path, "rb")  # closed with the reader


def _check_regular(path: str) -> None:
    """A data file must be a regular file with bytes: a named pipe or a device (a link to
    /dev/zero) would block or never end, so each is its own one-line error."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        what = (
            "a named pipe (FIFO)"
            if stat.S_ISFIFO(mode)
            else "a character device"
            if stat.S_ISCHR(mode)
            else "a block device"
            if stat.S_ISBLK(mode)
            else "a socket"
            if stat.S_ISSOCK(mode)
            else "not a regular file"
        )
        link = f" (a link to {os.path.realpath(path)})" if os.path.islink(path) else ""
        raise InputError(f"{path}: {what}{link}, not a data file; point the source at a file")
    if os.path.getsize(path) == 0:
        raise InputError(f"{path}: the file is empty (0 bytes)")


def _unique_names(path: str, names: list[str]) -> None:
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(
            f"{path}: duplicate column name{'s' if len(repeated) > 1 else ''} "
            f"{', '.join(map(repr, repeated))}; each column needs its own name"
        )


def _compressed(path: str) -> bool:
    return os.path.splitext(path.lower())[1] in MAGIC


def _read_parquet(path: str) -> pa.Table:
    """A parquet file (or a compressed one), or one line saying why this file is not one."""
    if _compressed(path):  # .parquet.gz: parquet needs seeks, so decompress into memory
        data = pa.py_buffer(_open_bytes(path))
        head, tail = data[:4].to_pybytes(), data[-4:].to_pybytes()
        source: Any = pa.BufferReader(data)
    else:
        with open(path, "rb") as f:
            head = f.read(4)
            f.seek(max(os.path.getsize(path) - 4, 0))
            tail = f.read(4)
        source = _arrow_path(path)
    if head == b"PAR1" and tail != b"PAR1":
        raise InputError(f"{path}: truncated parquet file (no footer); write or copy it again")
    if head != b"PAR1":
        what = "JSON text" if head.lstrip()[:1] in (b"{", b"[") else "no parquet header"
        raise InputError(f"{path}: not a parquet file ({what}); check the file or its suffix")
    parquet = pq.ParquetFile(source)
    _unique_names(path, parquet.schema_arrow.names)
    return parquet.read()


def _bad_line(path: str, number: int, detail: str) -> BadRow:
    return BadRow(f"{os.path.basename(path)}:line {number}", detail)


def _read_jsonl(path: str, data: bytes) -> tuple[pa.Table, Any, list[int], list[BadRow]]:
    lines = data.split(b"\n")
    numbers = [i + 1 for i, line in enumerate(lines) if line.strip()]
    # Arrow's reader takes only objects (and pyarrow 26 crashes on a leading `null`): any
    # other line sends the file to the line-by-line path, which rejects it with a reason.
    objects = all(lines[n - 1].lstrip().startswith(b"{") for n in numbers)
    try:
        if not objects:
            raise pa.ArrowInvalid("a line that is not a JSON object")
        table = pa_json.read_json(
            pa.BufferReader(data), read_options=pa_json.ReadOptions(block_size=1 << 26)
        )
        # pyarrow reads date-like strings as timestamps: re-read those files as plain JSON.
        # It also keeps invalid UTF-8 in strings: full validation finds it (in C++).
        if _type_depth(table.schema) > MAX_DEPTH:
            raise pa.ArrowInvalid("nested too deep")  # line by line, to reject those rows
        if table.num_rows == len(numbers) and not _has_timestamp(table.schema):
            table.validate(full=True)
            return table, None, numbers, []
    except pa.ArrowInvalid:
        pass  # a broken line or mixed types: parse line by line to find out which
    rows, good, bad = [], [], []
    for number in numbers:
        row, detail = parse_row(lines[number - 1])
        if detail is not None:
            bad.append(_bad_line(path, number, detail))
            continue
        rows.append(row)
        good.append(number)
    table, features = _table_from_rows(path, rows)
    return table, features, good, bad


def _parse_int(text: str) -> int:
    """JSON integers Arrow can hold (int64); a larger one is its row's problem, not the file's
    (and never reaches Python's 4,300-digit limit on int())."""
    digits = len(text.lstrip("-"))
    value = int(text) if digits <= 19 else None
    if value is None or not -(2**63) <= value < 2**63:
        raise ValueError(f"a number too large to hold ({digits:,} digits)")
    return value


def parse_row(text: bytes | str) -> tuple[Any, str | None]:
    """One JSON row, or None and why it cannot be a row: not JSON, not UTF-8 text (a stray
    byte or an unpaired surrogate), nested deeper than MAX_DEPTH, a number too large, or not
    an object."""
    try:
        row = json.loads(text, parse_int=_parse_int)
    except UnicodeDecodeError as exc:
        return None, f"invalid UTF-8: byte 0x{text[exc.start]:02x} at column {exc.start + 1}"
    except RecursionError:
        return None, f"a value nested deeper than {MAX_DEPTH} levels"
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON: {exc}"
    except ValueError as exc:  # _parse_int's
        return None, str(exc)
    # Bytes that decoded hold no stray byte; only a surrogate escape can make bad text.
    return parse_row_value(row, text, not isinstance(text, bytes) or b"\\ud" in text.lower())


def parse_row_value(row: Any, text: bytes | str, check_text: bool = True) -> tuple[Any, str | None]:
    """`row` (parsed from `text`) if it can be a row, else None and why (see parse_row);
    `check_text=False` when its strings are known to be valid UTF-8."""
    if check_text and not _encodable(row):
        return None, "invalid text: a byte that is not UTF-8, or an unpaired UTF-16 surrogate"
    if not isinstance(row, dict):
        return None, f"expected a JSON object, got {_json_type(row)}"
    brackets = sum(text.count(c) for c in ((b"[", b"{") if isinstance(text, bytes) else "[{"))
    if brackets > MAX_DEPTH and _depth(row) > MAX_DEPTH:
        return None, f"a value nested deeper than {MAX_DEPTH} levels"
    return row, None


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "true/false"}
    return "null" if value is None else names.get(type(value), "a number")


def _depth(value: Any) -> int:
    """How deep lists and objects nest in `value` (iterative: no recursion to overflow)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level > MAX_DEPTH:
                return level
            stack.extend(
                (v, level + 1) for v in (item.values() if isinstance(item, dict) else item)
            )
    return deepest


def _encodable(row: Any) -> bool:
    """False for text that UTF-8 cannot hold (a lone surrogate such as "\\ud800")."""
    try:
        json.dumps(row, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _table_from_rows(path: str, rows: list[dict[str, Any]]) -> tuple[pa.Table, Any]:
    """Rows as a table (every key of every row a column), and features if JSON-typed."""
    # A field named "" can be no plugin's column, and `datasets` cannot hold one: left out.
    keys = [k for k in dict.fromkeys(k for row in rows for k in row) if k != ""]
    try:
        return pa.Table.from_pydict({k: [row.get(k) for row in rows] for k in keys}), None
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass  # a field with mixed types (string here, list there): let datasets hold it as JSON
    import datasets

    rows = [{k: row.get(k) for k in keys} for row in rows]  # every row, every column
    try:
        dataset = datasets.Dataset.from_list(rows, on_mixed_types="use_json")
    except Exception as exc:  # datasets' many ways to refuse odd fields: one clear line
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise InputError(f"{path}: cannot hold these rows' fields as columns ({detail})") from exc
    return dataset.data.table, json_features(dataset.features)


def json_features(features: Any) -> Any:
    """`features` if any column is stored as JSON text (and so must be decoded), else None."""
    return features if '"Json"' in json.dumps(features.to_dict()) else None


def _type_depth(fields: Any) -> int:
    """How deep lists and structs nest in Arrow fields."""
    deepest, stack = 0, [(f.type, 1) for f in fields]
    while stack:
        t, level = stack.pop()
        if pa.types.is_struct(t):
            deepest = max(deepest, level)
            stack.extend((f.type, level + 1) for f in t)
        elif pa.types.is_list(t) or pa.types.is_large_list(t):
            deepest = max(deepest, level)
            stack.append((t.value_type, level + 1))
    return deepest


def _has_timestamp(fields: Any) -> bool:
    for f in fields:
        t = f.type
        if pa.types.is_timestamp(t) or pa.types.is_date(t) or pa.types.is_time(t):
            return True
        if pa.types.is_struct(t) and _has_timestamp(list(t)):
            return True
        if (pa.types.is_list(t) or pa.types.is_large_list(t)) and _has_timestamp([t.value_field]):
            return True
    return False


def _read_json(path: str, data: bytes) -> tuple[pa.Table, Any, list[int], list[BadRow]]:
    """A JSON list of rows (or {"data": [...]}). One bad element (a stray byte, a number too
    large, nesting too deep, not an object) is a bad row with its line; the rest are read."""
    try:
        rows = json.loads(data, parse_int=_parse_int)
        if isinstance(rows, dict):  # {"data": [...]} style files
            lists = [v for v in rows.values() if isinstance(v, list)]
            if len(lists) != 1:
                raise InputError(f"{path}: expected a JSON list of rows (or JSON lines)")
            rows = lists[0]
        if not isinstance(rows, list):
            raise InputError(f"{path}: expected a JSON list of objects")
        if b"\\ud" in data.lower() or not all(isinstance(r, dict) for r in rows):
            raise ValueError("look at each element")
        table, features = _table_from_rows(path, rows)
        if _type_depth(table.schema) <= MAX_DEPTH:  # else: which element nests too deep
            return table, features, list(range(1, len(rows) + 1)), []
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}:{exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno})"
        ) from exc
    except (UnicodeDecodeError, RecursionError, ValueError):
        pass  # one bad element: read element by element to find which
    return _read_json_elements(path, data)


def _read_json_elements(path: str, data: bytes) -> tuple[pa.Table, Any, list[int], list[BadRow]]:
    """A JSON list read one element at a time with the json module's own `raw_decode`, so
    each bad element is a bad row with its line number."""
    text = data.decode("utf-8", errors="surrogateescape")  # a stray byte: that element's
    decoder = json.JSONDecoder(parse_int=_parse_int)
    space = re.compile(r"[ \t\n\r]*")
    at = space.match(text, 0).end()
    if text[at : at + 1] != "[":
        raise InputError(f"{path}: expected a JSON list of objects")
    at = space.match(text, at + 1).end()
    rows, good, bad = [], [], []
    while text[at : at + 1] != "]":
        line = text.count("\n", 0, at) + 1
        try:
            row, end = decoder.raw_decode(text, at)
            detail = None
        except RecursionError:
            raise InputError(
                f"{path}:{line}: a value nested deeper than Python's JSON parser allows"
            ) from None
        except json.JSONDecodeError as exc:
            raise InputError(
                f"{path}:{exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno})"
            ) from exc
        except ValueError as exc:  # a number too large: skip to the end of this element
            row, end, detail = None, _element_end(text, at), str(exc)
        if detail is None:
            row, detail = parse_row_value(row, text[at:end])
        if detail is None:
            rows.append(row)
            good.append(len(good) + len(bad) + 1)  # the element's number, as the fast path
        else:
            bad.append(_bad_line(path, line, detail))
        at = space.match(text, end).end()
        if text[at : at + 1] == ",":
            at = space.match(text, at + 1).end()
        elif text[at : at + 1] != "]":
            raise InputError(
                f"{path}:{text.count(chr(10), 0, at) + 1}: invalid JSON: expected , or ]"
            )
    table, features = _table_from_rows(path, rows)
    return table, features, good, bad


def _element_end(text: str, at: int) -> int:
    """Where the element at `at` ends, read again with large integers as text."""
    return json.JSONDecoder(parse_int=str).raw_decode(text, at)[1]


def _read_arrow(path: str) -> pa.Table:
    if _compressed(path):  # .arrow.gz: the IPC file format needs seeks
        source: Any = pa.BufferReader(_open_bytes(path))
    else:
        name = _arrow_path(path)
        source = pa.memory_map(name) if isinstance(name, str) else pa.PythonFile(name, mode="r")
    with source:
        try:
            table = pa.ipc.open_file(source).read_all()
        except pa.ArrowInvalid:
            source.seek(0)
            table = pa.ipc.open_stream(source).read_all()
    _unique_names(path, table.column_names)
    return table


def _invalid_rows(table: pa.Table) -> list[int]:
    """Rows holding text that is not UTF-8 (a parquet or arrow file may carry such bytes in
    a string column). Arrow's full validation finds them, halving the range to the rows."""
    try:
        table.validate(full=True)
        return []
    except pa.ArrowInvalid:
        pass
    bad, ranges = [], [(0, table.num_rows)]
    while ranges:
        start, stop = ranges.pop()
        try:
            table.slice(start, stop - start).validate(full=True)
        except pa.ArrowInvalid:
            if stop - start == 1:
                bad.append(start)
            else:
                middle = (start + stop) // 2
                ranges += [(middle, stop), (start, middle)]
    return sorted(bad)


def _read_disk(path: str, split: str | None) -> tuple[pa.Table, Any]:
    import datasets

    loaded = datasets.load_from_disk(path)
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise InputError(
                f"{path}: no split {split!r} in this saved dataset (splits: {', '.join(loaded)})"
            )
        loaded = loaded[split]
    return loaded.data.table, json_features(loaded.features)


def _read_csv(path: str, data: bytes) -> tuple[pa.Table, list[BadRow]]:
    """Every column as text: an answer "4" or "NA" must not become a number or a null.

    Quoted cells may hold line breaks, a cell may be up to CSV_BLOCK bytes, and a row with
    the wrong number of cells is a bad row (Arrow's `invalid_row_handler`), not a failed file.
    """
    bad: list[BadRow] = []

    def ragged(row: Any) -> str:
        where = os.path.basename(path)  # a line number only where Arrow knows one
        where += f":line {row.number}" if row.number is not None else ""
        text = row.text if len(row.text) <= 200 else row.text[:199] + "…"
        detail = f"expected {row.expected_columns} cells, got {row.actual_columns}: {text}"
        bad.append(BadRow(where, detail))
        return "skip"

    parse = pa_csv.ParseOptions(newlines_in_values=True, invalid_row_handler=ragged)
    # Arrow's usual block size keeps reads parallel; a row larger than a block (a huge
    # cell) is read again with blocks of CSV_BLOCK, the limit on a row's size.
    for size in (1 << 20, CSV_BLOCK):
        read = pa_csv.ReadOptions(block_size=size)
        try:
            names = pa_csv.open_csv(
                pa.BufferReader(data), read_options=read, parse_options=parse
            ).schema.names
            bad.clear()  # the handler saw the first block's ragged rows: they come again
            _unique_names(path, names)
            options = pa_csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                null_values=[],
            )
            table = pa_csv.read_csv(
                pa.BufferReader(data),
                read_options=read,
                parse_options=parse,
                convert_options=options,
            )
            return table, bad
        except pa.ArrowInvalid as exc:
            if "straddl" not in str(exc) or size == CSV_BLOCK:
                raise
            bad.clear()
    raise AssertionError("unreachable")


def read_file(
    path: str, kind: str, split: str | None
) -> tuple[pa.Table, Any, list[int], list[BadRow]]:
    """One file as (table, features to decode or None, line or row number per row, bad rows)."""
    features = None
    if kind == "disk":
        table, features = _read_disk(path, split)
    elif kind == "parquet":
        table = _read_parquet(path)
    elif kind == "arrow":
        table = _read_arrow(path)
    else:
        data = _open_bytes(path)
        if kind == "jsonl":
            return _read_jsonl(path, data)
        if kind == "json":
            return _read_json(path, data)
        table, bad = _read_csv(path, data)
        return table, None, list(range(1, table.num_rows + 1)), bad
    numbers = list(range(1, table.num_rows + 1))
    invalid = _invalid_rows(table)
    if not invalid:
        return table, features, numbers, []
    name = os.path.basename(path)
    bad = [BadRow(f"{name}:row {i + 1}", "invalid UTF-8 in a text column") for i in invalid]
    keep = sorted(set(range(table.num_rows)) - set(invalid))
    return table.take(pa.array(keep, pa.int64())), features, [i + 1 for i in keep], bad


def read_local(files: list[str], split: str | None = None) -> Upstream:
    if not files:
        raise InputError("no files match the source's path")
    tables, file_index, lines, bad, features = [], [], [], [], None
    for i, path in enumerate(files):
        kind = file_type(path)
        if not os.path.exists(path):
            raise InputError(f"{path}: no such file or folder")
        if kind is None:
            raise InputError(
                f"{path}: unsupported file type; use {', '.join(SUFFIXES)} "
                f"(optionally {', '.join(COMPRESSIONS)}) or a save_to_disk folder"
            )
        if kind != "disk":
            _check_regular(path)
        try:
            table, file_features, numbers, bad_rows = read_file(path, kind, split)
            features = features or file_features
        except InputError:
            raise
        except (OSError, pa.ArrowException, ValueError, OverflowError) as exc:
            detail = " ".join(str(exc).split())  # one line
            raise InputError(f"{path}: cannot read as {kind}: {detail}") from exc
        tables.append(table)
        file_index.extend([i] * table.num_rows)
        lines.extend(numbers)
        bad.extend(bad_rows)
    try:
        table = (
            pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
        )
    except pa.ArrowException as exc:
        raise InputError(f"{', '.join(files)}: files do not share one schema ({exc})") from exc
    if table.num_rows == 0 and not bad:
        raise InputError(f"{', '.join(files)}: no rows in the data (empty)")
    if table.num_rows == 0:
        first = bad[0]
        raise InputError(
            f"{', '.join(files)}: no readable row: all {len(bad):,} unreadable; "
            f"first: {first.where}: {first.detail}"
        )
    return Upstream(
        table=table, files=files, bad_rows=bad, file_index=file_index, line=lines, features=features
    )


def read_hub(
    hub: str,
    config: str | None,
    split: str,
    revision: str | None,
    data_files: Any = None,
    trust_remote_code: bool = False,
) -> Upstream:
    """Load a hub dataset (or a local dataset folder in hub layout) with `datasets`.

    `trust_remote_code` is passed only when true, and only to a `datasets` that still runs
    loading scripts (before 4.0); later ones refuse scripts whatever it says.
    """
    import datasets

    kwargs: dict[str, Any] = {}
    if trust_remote_code and _runs_scripts(datasets.__version__):
        kwargs["trust_remote_code"] = True
    try:
        dataset = datasets.load_dataset(
            hub, config, split=split, revision=revision, data_files=data_files, **kwargs
        )
    except Exception as exc:  # datasets raises many types; all mean "cannot load this"
        what = ", ".join(
            f"{k}={v}"
            for k, v in (("config", config), ("split", split), ("revision", revision))
            if v
        )
        raise InputError(hub_error_message(hub, exc, what)) from exc
    return Upstream(
        table=dataset.data.table,
        files=[hub],
        revision=revision,
        features=json_features(dataset.features),
    )


def _runs_scripts(version: str) -> bool:
    return int(version.split(".")[0]) < 4


def hub_error_message(hub: str, exc: BaseException, what: str = "") -> str:
    """One line saying why `hub` could not be loaded and what to do, from `datasets`'s error
    (or the `huggingface_hub` error it wraps: gated, missing, offline, a loading script)."""
    from huggingface_hub.errors import GatedRepoError, OfflineModeIsEnabled, RepositoryNotFoundError

    chain, seen = [], exc
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    text = " ".join(f"{type(e).__name__}: {e}" for e in chain)
    names = {type(e).__name__ for e in chain}
    where = f" ({what})" if what else ""
    has = lambda cls: any(isinstance(e, cls) for e in chain)  # noqa: E731
    if has(GatedRepoError) or re.search(r"\bgated\b|\b(401|403)\b", text, re.IGNORECASE):
        return (
            f"hub dataset {hub!r} is gated: accept its terms at "
            f"https://huggingface.co/datasets/{hub} and log in (HF_TOKEN)"
        )
    if has(RepositoryNotFoundError) or "DatasetNotFoundError" in names:
        return f"hub dataset {hub!r} not found (or private): check the id, or log in"
    if has(OfflineModeIsEnabled) or "OfflineModeIsEnabled" in text:
        return (
            f"cannot load hub dataset {hub!r}{where}: not in the local cache, and "
            "HF_HUB_OFFLINE is set: go online once to download it"
        )
    if "scripts are no longer supported" in text:
        return (
            f"hub dataset {hub!r} is a loading script, which datasets {_datasets_version()} no "
            "longer runs (trust_remote_code cannot help): use a parquet copy of it "
            "(revision: refs/convert/parquet) or datasets<4"
        )
    detail = " ".join(f"{type(exc).__name__}: {exc}".split())
    return f"cannot load hub dataset {hub!r}{where}: {detail}"


def _datasets_version() -> str:
    import datasets

    return datasets.__version__
