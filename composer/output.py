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
import pyarrow.parquet as pq

from composer.errors import UserError

MARKER = "report.json"


@contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a fresh folder; on success it replaces `target` in one rename."""
    target = Path(target)
    if target.exists() and (not target.is_dir() or (any(target.iterdir())
                                                    and not (target / MARKER).exists())):
        raise UserError(f"{target}: exists and is not a composer output folder; "
                        "choose another output.dir (or -o) or remove it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    if target.exists():
        os.rename(target, old)
    os.rename(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def write_table(table: pa.Table, path: Path, jsonl: bool = False, json_list: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd")
    if jsonl or json_list:
        rows = table.to_pylist()
        if jsonl:
            with open(path.with_suffix(".jsonl"), "w", encoding="utf-8") as f:
                f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        if json_list:
            with open(path.with_suffix(".json"), "w", encoding="utf-8") as f:
                json.dump(rows, f, ensure_ascii=False, indent=1)


def write_jsonl(rows: list[dict], path: Path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False, sort_keys=True, default=str) + "\n"
                     for r in rows)
