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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from composer.errors import InputError

SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".parquet", ".arrow")
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


def resolve_files(path: str | list[str], base: Path) -> list[str]:
    """Expand a path, a glob or a list of them (relative to the manifest) to files."""
    files: list[str] = []
    for item in [path] if isinstance(path, str) else path:
        full = str(base / os.path.expanduser(item))
        matches = sorted(glob.glob(full, recursive=True)) if glob.has_magic(full) else [full]
        files.extend(matches)
    return files


def file_type(path: str) -> str | None:
    """The reader for a path: jsonl, json, csv, parquet, arrow or disk (a save_to_disk folder)."""
    if os.path.isdir(path):
        return "disk"
    name = path.lower()
    for comp in COMPRESSIONS:
        name = name.removesuffix(comp)
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return {"ndjson": "jsonl"}.get(suffix[1:], suffix[1:])
    return None


def _open_bytes(path: str) -> bytes:
    suffix = os.path.splitext(path.lower())[1]
    if suffix in MAGIC:
        magic, name = MAGIC[suffix]
        with open(path, "rb") as f:
            head = f.read(len(magic))
        if head != magic:
            raise InputError(f"{path}: not {name} data, though the name ends in {suffix}")
    with pa.input_stream(path, compression="detect") as stream:
        return stream.read()


def _read_parquet(path: str) -> pa.Table:
    """A parquet file, or one line saying why this file is not one."""
    with open(path, "rb") as f:
        head = f.read(4)
        f.seek(max(os.path.getsize(path) - 4, 0))
        tail = f.read(4)
    if head == b"PAR1" and tail != b"PAR1":
        raise InputError(f"{path}: truncated parquet file (no footer); write or copy it again")
    if head != b"PAR1":
        what = "JSON text" if head.lstrip()[:1] in (b"{", b"[") else "no parquet header"
        raise InputError(f"{path}: not a parquet file ({what}); check the file or its suffix")
    return pq.read_table(path)


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
        if table.num_rows == len(numbers) and not _has_timestamp(table.schema):
            table.validate(full=True)
            return table, None, numbers, []
    except pa.ArrowInvalid:
        pass  # a broken line or mixed types: parse line by line to find out which
    rows, good, bad = [], [], []
    for number in numbers:
        text = lines[number - 1]
        try:
            row = json.loads(text)
        except UnicodeDecodeError as exc:
            detail = f"invalid UTF-8: byte 0x{text[exc.start]:02x} at column {exc.start + 1}"
            bad.append(_bad_line(path, number, detail))
            continue
        except json.JSONDecodeError as exc:
            bad.append(_bad_line(path, number, f"invalid JSON: {exc}"))
            continue
        if b"\\ud" in text.lower() and not _encodable(row):
            detail = "invalid text: an unpaired UTF-16 surrogate escape"
            bad.append(_bad_line(path, number, detail))
            continue
        if not isinstance(row, dict):
            detail = f"expected a JSON object, got {type(row).__name__}"
            bad.append(_bad_line(path, number, detail))
            continue
        rows.append(row)
        good.append(number)
    table, features = _table_from_rows(path, rows)
    return table, features, good, bad


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


def _read_json(path: str, data: bytes) -> tuple[pa.Table, Any]:
    try:
        rows = json.loads(data)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}:{exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno})"
        ) from exc
    if isinstance(rows, dict):  # {"data": [...]} style files
        lists = [v for v in rows.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise InputError(f"{path}: expected a JSON list of rows (or JSON lines)")
        rows = lists[0]
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise InputError(f"{path}: expected a JSON list of objects")
    return _table_from_rows(path, rows)


def _read_arrow(path: str) -> pa.Table:
    with pa.memory_map(path) as source:
        try:
            return pa.ipc.open_file(source).read_all()
        except pa.ArrowInvalid:
            source.seek(0)
            return pa.ipc.open_stream(source).read_all()


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


def _read_csv(data: bytes) -> pa.Table:
    """Every column as text: an answer "4" or "NA" must not become a number or a null."""
    names = pa_csv.open_csv(pa.BufferReader(data)).schema.names
    options = pa_csv.ConvertOptions(
        column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False, null_values=[]
    )
    return pa_csv.read_csv(pa.BufferReader(data), convert_options=options)


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
            table, features = _read_json(path, data)
        else:
            table = _read_csv(data)
    return table, features, list(range(1, table.num_rows + 1)), []


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
        if kind != "disk" and os.path.getsize(path) == 0:
            raise InputError(f"{path}: the file is empty (0 bytes)")
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
