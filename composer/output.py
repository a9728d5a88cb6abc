"""Write a build's files atomically: into a temporary folder beside the target, then rename.

A build that fails or is killed leaves the previous output as it was; a folder that is not
a composer output is never replaced.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from composer.errors import UserError

MARKER = "report.json"


def is_composer_output(folder: Path) -> bool:
    """A folder composer wrote: its report.json parses and has the report's keys."""
    try:
        report = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(report, dict) and {"name", "dedup_key", "sources", "outputs"} <= set(report)


def _recover(target: Path) -> None:
    """Undo what a killed build left beside `target`: temp folders, a moved-away output."""
    for leftover in sorted(target.parent.glob(f".{target.name}.tmp-*")):
        shutil.rmtree(leftover, ignore_errors=True)
    for old in sorted(target.parent.glob(f".{target.name}.old-*")):
        if not target.exists() and is_composer_output(old / "output"):
            os.rename(old / "output", target)  # killed between the renames: put it back
        shutil.rmtree(old, ignore_errors=True)


def umask() -> int:
    """The process's umask (reading it means setting it: set back at once)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_target(target: Path) -> None:
    """Refuse, before any work, an output path that composer must not replace."""
    if target.exists() and (
        not target.is_dir() or (any(target.iterdir()) and not is_composer_output(target))
    ):
        raise UserError(
            f"{target}: exists and is not a composer output folder; "
            "choose another output.dir (or -o) or remove it"
        )


@contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a fresh folder; on success it replaces `target` by renames, never half-written."""
    target = Path(target)
    check_target(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _recover(target)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    except OSError as exc:
        raise UserError(f"{target}: cannot write the output here: {exc.strerror or exc}") from exc
    os.chmod(tmp, 0o777 & ~umask())  # mkdtemp makes it private; the output should not be
    try:
        yield tmp
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        if target.exists():
            os.rename(target, old / "output")
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def write_table(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd")


def write_jsonl(rows: list[dict], path: Path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(
            json.dumps(r, ensure_ascii=False, sort_keys=True, default=str) + "\n" for r in rows
        )


class _Sink:
    """One output file set (kind/split): parquet always, jsonl and a JSON list on request."""

    def __init__(self, path: Path, schema: pa.Schema, jsonl: bool, json_list: bool):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.rows = 0
        self.parquet = pq.ParquetWriter(path, schema, compression="zstd")
        # Held open across batches and closed in close(): a with-block cannot span them.
        self.jsonl = open(path.with_suffix(".jsonl"), "w", encoding="utf-8") if jsonl else None  # noqa: SIM115
        self.json = open(path.with_suffix(".json"), "w", encoding="utf-8") if json_list else None  # noqa: SIM115
        if self.json:
            self.json.write("[")

    def write(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        self.parquet.write_table(table)
        if self.jsonl or self.json:
            lines = [json.dumps(r, ensure_ascii=False) for r in table.to_pylist()]
            if self.jsonl:
                self.jsonl.writelines(line + "\n" for line in lines)
            if self.json:
                self.json.write(("," if self.rows else "") + "\n" + ",\n".join(lines))
        self.rows += table.num_rows

    def close(self) -> None:
        self.parquet.close()
        if self.jsonl:
            self.jsonl.close()
        if self.json:
            self.json.write("\n]\n")
            self.json.close()


class RowWriter:
    """Streams rows into OUT/<file set>/<split>.parquet, one batch at a time.

    `file_sets`: each file set's folder under OUT (`sft/messages`, `formats/chatml/sft`,
    `text`) and its schema, which has a `split` column that picks the file and is not
    written. Every split's file is written, an empty one too.
    """

    def __init__(
        self,
        folder: Path,
        file_sets: dict[str, pa.Schema],
        splits: list[str],
        jsonl: bool = False,
        json_list: bool = False,
    ):
        self.splits = splits
        self.sinks = {
            (name, split): _Sink(
                folder / name / f"{split}.parquet",
                schema.remove(schema.get_field_index("split")),
                jsonl,
                json_list,
            )
            for name, schema in file_sets.items()
            for split in splits
        }

    def write_table(self, name: str, table: pa.Table) -> None:
        split = table.column("split")
        for part_name in self.splits:
            part = table.filter(pc.equal(split, part_name)).drop_columns(["split"])
            self.sinks[name, part_name].write(part)

    def write_rendered(self, kind: str, table: pa.Table) -> None:
        """Rendered rows (with a `format` column) into each format's own file set."""
        formats = table.column("format")
        for fmt in pc.unique(formats).to_pylist():
            part = table.filter(pc.equal(formats, fmt)).drop_columns(["format"])
            self.write_table(f"formats/{fmt}/{kind}", part)

    def close(self) -> dict[str, int]:
        """Close every file; the row count of each, by its path under the output folder."""
        for sink in self.sinks.values():
            sink.close()
        return {f"{name}/{split}.parquet": sink.rows for (name, split), sink in self.sinks.items()}
