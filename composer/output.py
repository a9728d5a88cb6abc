"""Write a build's files atomically: into a temporary folder beside the target, then rename.

A build that fails or is killed leaves the previous output as it was; a folder that is not
a composer output is never replaced.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from composer.engines.pool import default_workers
from composer.errors import UserError

MARKER = "report.json"
# Bytes of rows a RowWriter holds in writes not done, at most (one write may pass it): what
# the writes in flight keep of a build's memory, whatever the rows and formats. Enough for
# the threads to have work queued while the caller renders the next batch.
WRITE_BYTES = 64 << 20


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

    Files are encoded and compressed on `threads` threads (default: one a core, up to 4;
    pyarrow lets go of the GIL meanwhile), so that the formats' files are written at once,
    and while the caller renders the next batch. Each file's batches are written in the
    order they were given (a write waits for the file's previous one), so its bytes are
    those of a writer without threads. Use it as a context manager: a build that fails
    waits for its writes and closes every file before its folder is removed."""

    def __init__(
        self,
        folder: Path,
        file_sets: dict[str, pa.Schema],
        splits: list[str],
        jsonl: bool = False,
        json_list: bool = False,
        threads: int | None = None,
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
        threads = threads or min(4, default_workers())
        self._threads = ThreadPoolExecutor(threads, thread_name_prefix="composer-write")
        self._last: dict[tuple[str, str], Future] = {}  # each file's latest write
        self._pending: deque[tuple[Future, int]] = deque()  # (write, bytes of its rows)
        self._limit = 4 * len(self.sinks) + 8  # writes in flight, at most (their rows held)
        self._held = 0  # bytes of the rows in flight

    def write_table(self, name: str, table: pa.Table) -> None:
        split = table.column("split")
        for part_name in self.splits:
            part = table.filter(pc.equal(split, part_name)).drop_columns(["split"])
            if part.num_rows:
                self._submit((name, part_name), part)

    def write_rendered(self, kind: str, table: pa.Table) -> None:
        """Rendered rows (with a `format` column) into each format's own file set."""
        formats = table.column("format")
        for fmt in pc.unique(formats).to_pylist():
            part = table.filter(pc.equal(formats, fmt)).drop_columns(["format"])
            self.write_table(f"formats/{fmt}/{kind}", part)

    def _submit(self, key: tuple[str, str], part: pa.Table) -> None:
        size = part.nbytes
        while self._pending and (
            len(self._pending) >= self._limit
            or self._held + size > WRITE_BYTES
            or self._pending[0][0].done()
        ):
            done, held = self._pending.popleft()
            done.result()  # a failed write raises here
            self._held -= held
        self._last[key] = future = self._threads.submit(
            _after, self._last.get(key), self.sinks[key].write, part
        )
        self._pending.append((future, size))
        self._held += size

    def close(self) -> dict[str, int]:
        """Close every file; the row count of each, by its path under the output folder."""
        self._threads.shutdown(wait=True)
        for future, _ in self._pending:
            future.result()
        for sink in self.sinks.values():
            sink.close()
        return {f"{name}/{split}.parquet": sink.rows for (name, split), sink in self.sinks.items()}

    def __enter__(self) -> RowWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if exc_info[0] is None:
            return
        self._threads.shutdown(wait=True, cancel_futures=True)
        for sink in self.sinks.values():
            with suppress(Exception):
                sink.close()


def _after(previous: Future | None, write, part: pa.Table) -> None:
    """`write(part)` once the file's previous write is done (a thread runs the writes it is
    given in order, and the previous one started before this one: no thread waits forever)."""
    if previous is not None:
        previous.result()
    write(part)
