"""The stage cache: what a build computed, stored by the hash of everything it depends on.

A stage's result (a source's converted and filtered records, near dedup's verdicts, a
benchmark index, a source's decontamination, a source's rendered rows, a whole output
folder) is an *entry*: a folder
of files under `CACHE/stages/STAGE/KEY/`, where KEY is the sha256 of the stage's inputs
(file hashes, plugin and composer code hashes, the manifest keys it reads, the seed,
package versions). Nothing is ever updated in place, so an entry cannot go stale: a
changed input is a new key.

- Written atomically: into a temporary folder, then renamed; a killed build leaves no
  half entry, and the entries it finished are reused when it is started again.
- Checked on read: `entry.json` lists each file's sha256; a file that does not match (or
  cannot be loaded) makes the entry corrupt, and it is removed and computed again.
- Logged: every hit, miss, store and corrupt entry is a line of `CACHE/log.jsonl`, which is
  what `composer cache info` and the tests count.

The cache folder is `$COMPOSER_CACHE`, else ~/.cache/composer; embeddings, the distilled
static model and the ONNX export live beside the stages (see composer.embeddings).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from composer.output import umask

T = TypeVar("T")

ENTRY = "entry.json"
LOG = "log.jsonl"
STAGES = ("source", "near", "benchmarks", "decontaminate", "render", "output")
# Folders beside the stages that `composer cache` also reports and clears.
OTHERS = ("embeddings", "static", "onnx")


def cache_dir() -> Path:
    """Where composer keeps what it can reuse: `$COMPOSER_CACHE`, else ~/.cache/composer."""
    return Path(os.environ.get("COMPOSER_CACHE") or Path.home() / ".cache" / "composer")


def digest(*parts: Any) -> str:
    """The sha256 of JSON-able parts: a cache key."""
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    # A file name that is not UTF-8 holds surrogate escapes: hash its own bytes back.
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def file_sha(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes, read now (composer.codehash keeps code files' once)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class StageCache:
    """Entries by (stage, key) under `root`; `enabled=False` reads and writes nothing."""

    def __init__(self, root: Path | None = None, enabled: bool = True, quiet: bool = False):
        self.root = Path(root) if root is not None else cache_dir()
        self.enabled = enabled
        self.stages = self.root / "stages"
        self.seen: Counter = Counter()  # (stage, event) in this process, for `summary`
        # A worker's cache (`quiet`) prints no warning: what it could not store is kept in
        # `unstored` for the task's result, and the driver's cache shows it (`told`).
        self.quiet = quiet
        self.unstored: list[tuple[str, str, str]] = []  # (stage, name, why)

    # ---------------------------------------------------------------- entries

    def entry(self, stage: str, key: str) -> Path:
        return self.stages / stage / key[:2] / key

    def get(self, stage: str, key: str, name: str = "") -> Path | None:
        """The folder of a sound entry, or None (missing, disabled, or found corrupt)."""
        if not self.enabled:
            return None
        folder = self.entry(stage, key)
        try:
            listed = json.loads((folder / ENTRY).read_text(encoding="utf-8"))["files"]
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (OSError, ValueError, KeyError, TypeError):
            self.discard(stage, key, name, "unreadable entry.json")
            return None
        for file, sha in listed.items():
            try:
                sound = file_sha(folder / file) == sha
            except OSError:
                sound = False
            if not sound:
                self.discard(stage, key, name, f"{file} does not match its checksum")
                return None
        with contextlib.suppress(OSError):  # a read-only cache: reading is all a build needs
            os.utime(folder / ENTRY)  # last use, for whoever prunes by age
        return folder

    @contextmanager
    def put(self, stage: str, key: str, name: str = "") -> Iterator[Path]:
        """A folder to write an entry's files into; renamed into place when the block ends."""
        parent = self.stages / stage / key[:2]
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(), dir=parent))
        os.chmod(tmp, 0o777 & ~umask())  # mkdtemp makes it private; a cache may be shared
        try:
            yield tmp
            files = {
                p.relative_to(tmp).as_posix(): file_sha(p)
                for p in sorted(tmp.rglob("*"))
                if p.is_file()
            }
            (tmp / ENTRY).write_text(json.dumps({"files": files}, indent=1), encoding="utf-8")
            try:
                os.rename(tmp, self.entry(stage, key))
            except OSError:
                if not self.entry(stage, key).is_dir():
                    raise
                shutil.rmtree(tmp)  # another build stored the same entry meanwhile
            self.log("store", stage, key, name)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def sweep(self) -> int:
        """Remove what killed builds left: entries half written by a process that is gone.
        (A live build's temporary folder is left alone.)"""
        removed = 0
        for tmp in self.stages.glob("*/*/.tmp-*") if self.enabled else []:
            if abandoned(tmp):
                shutil.rmtree(tmp, ignore_errors=True)
                removed += 1
        return removed

    def discard(self, stage: str, key: str, name: str, why: str) -> None:
        shutil.rmtree(self.entry(stage, key), ignore_errors=True)
        self.log("corrupt", stage, key, name, why=why)

    def through(
        self,
        stage: str,
        key: str,
        name: str,
        compute: Callable[[], T],
        save: Callable[[T, Path], None],
        load: Callable[[Path], T],
    ) -> T:
        """The stage's result from the cache, else computed and stored. An empty key: not
        cacheable (hub data at no known commit), computed and logged as such."""
        value = self.find(stage, key, name, load)
        if value is None:
            value = compute()
            self.keep(stage, key, name, value, save)
        return value

    def find(self, stage: str, key: str, name: str, load: Callable[[Path], T]) -> T | None:
        """The stage's result from the cache, or None, logged as a miss (`uncached` for an
        empty key): `through` split in two, for a driver that computes its misses together
        (on an engine's workers) and then `keep`s them."""
        if not key:
            self.log("uncached", stage, key, name)
            return None
        folder = self.get(stage, key, name)
        if folder is not None:
            try:
                value = load(folder)
            except Exception as exc:  # sound bytes that do not load: written by a bug
                self.discard(stage, key, name, f"cannot load: {type(exc).__name__}: {exc}")
            else:
                self.log("hit", stage, key, name)
                return value
        self.log("miss", stage, key, name)
        return None

    def keep(self, stage: str, key: str, name: str, value: T, save: Callable[[T, Path], None]):
        """Store a computed result (nothing for an empty key or a disabled cache; a warning,
        not an error, when the cache cannot be written)."""
        if self.enabled and key:
            try:
                with self.put(stage, key, name) as tmp:
                    save(value, tmp)
            except OSError as exc:
                self.cannot_store(stage, name, exc)

    def cannot_store(self, stage: str, name: str, exc: OSError | str) -> None:
        """A full disk or a read-only cache costs the next build time, not this build: a
        warning, once a build."""
        why = exc if isinstance(exc, str) else exc.strerror or str(exc)
        self.unstored.append((stage, name, why))
        if not self.quiet and not self.seen["", "cannot store"]:
            print(
                f"Warning: cannot store in the cache {self.root} ({stage} {name}): "
                f"{why}; the build goes on without storing",
                file=sys.stderr,
            )
        self.seen["", "cannot store"] += 1

    def told(self, unstored: list[tuple[str, str, str]]) -> None:
        """What a worker's cache (on the same folder) could not store, shown as if this
        cache had tried: a worker's stderr does not reach the user."""
        for stage, name, why in unstored:
            self.cannot_store(stage, name, why)

    # ---------------------------------------------------------------- the log

    def log(self, event: str, stage: str, key: str = "", name: str = "", **extra: Any) -> None:
        if not self.enabled:
            return
        self.seen[stage, event] += 1
        line = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "pid": os.getpid(),
            "event": event,
            "stage": stage,
            "name": name,
            "key": key[:16],
            **extra,
        }
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            # One write of one line with O_APPEND: concurrent builds do not interleave lines.
            fd = os.open(self.root / LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, (json.dumps(line, ensure_ascii=False) + "\n").encode())
            finally:
                os.close(fd)
        except OSError:  # a full disk loses a log line, not the build
            return

    def summary(self) -> str:
        """What this build took from the cache, in a line."""
        if not self.enabled:
            return "not used (--no-cache)"
        if self.seen["output", "hit"]:
            return "output copied from the cache (no input changed)"
        parts = []
        for stage in STAGES[:-1]:
            hit, miss = self.seen[stage, "hit"], self.seen[stage, "miss"]
            if hit or miss:
                parts.append(f"{stage} {hit} reused, {miss} computed")
        uncached = sum(n for (_, event), n in self.seen.items() if event == "uncached")
        if uncached:
            parts.append(f"{uncached} not cached (hub data at no known commit)")
        corrupt = sum(n for (_, event), n in self.seen.items() if event == "corrupt")
        if corrupt:
            parts.append(f"{corrupt} corrupt entr{'y' if corrupt == 1 else 'ies'} recomputed")
        return "; ".join(parts)

    def events(self) -> list[dict[str, Any]]:
        """The log's lines, oldest first (lines a killed write cut short are skipped)."""
        try:
            text = (self.root / LOG).read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    # ---------------------------------------------------------------- info and clear

    def info(self) -> dict[str, Any]:
        """Entries and bytes per stage (and per other cache folder), and the log's counts."""
        folders = {}
        for stage in STAGES:
            base = self.stages / stage
            found = base.glob("*/*/" + ENTRY) if base.is_dir() else []
            entries = [e for e in found if not e.parent.name.startswith(".")]
            folders[stage] = {"entries": len(entries), "bytes": _size(base)}
        for other in OTHERS:
            base = self.root / other
            folders[other] = {"entries": None, "bytes": _size(base)}
        counts = Counter((e.get("stage"), e.get("event")) for e in self.events())
        for (stage, event), n in counts.items():
            if stage in folders:
                folders[stage][event] = n
        return {"path": str(self.root), "folders": folders}

    def prune(self, days: float) -> tuple[int, int]:
        """Remove the stage entries no build has used for `days` days (a hit refreshes an
        entry's time); (entries, bytes) removed."""
        cutoff = time.time() - days * 24 * 3600
        removed = size = 0
        for entry in sorted(self.stages.glob(f"*/*/*/{ENTRY}")):
            folder = entry.parent
            if folder.name.startswith(".") or entry.stat().st_mtime >= cutoff:
                continue
            size += _size(folder)
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
        return removed, size

    def clear(self, names: list[str] | tuple[str, ...] = ()) -> list[str]:
        """Remove the named stages and folders (all of them, and the log, when none named)."""
        unknown = [n for n in names if n not in STAGES + OTHERS]
        if unknown:
            from composer.errors import UserError, did_you_mean

            raise UserError(
                f"unknown cache part {unknown[0]!r}{did_you_mean(unknown[0], STAGES + OTHERS)}; "
                f"parts: {', '.join(STAGES + OTHERS)}"
            )
        removed = []
        for name in names or STAGES + OTHERS:
            folder = self.stages / name if name in STAGES else self.root / name
            if folder.is_symlink():  # a folder shared with another cache: not ours to empty
                folder.unlink()
                removed.append(name)
            elif folder.exists():
                shutil.rmtree(folder)
                removed.append(name)
        if not names:
            (self.root / LOG).unlink(missing_ok=True)
            if self.stages.exists():
                shutil.rmtree(self.stages)
        return removed


def temp_prefix() -> str:
    """`.tmp-HOST-PID-`: whoever finds it knows whether the build writing it still runs."""
    return f".tmp-{socket.gethostname().replace('-', '_')}-{os.getpid()}-"


def abandoned(path: Path, after: float = 24 * 3600) -> bool:
    """A temporary file or folder a killed build left: its process (on this host) is gone,
    or, made on another host (a shared cache), it is older than `after` seconds."""
    parts = path.name.split("-")
    try:
        host, pid = parts[1], int(parts[2])
    except (IndexError, ValueError):
        host, pid = "", 0
    if host and host == socket.gethostname().replace("-", "_"):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # another user's live process
            return False
        return False
    try:
        return time.time() - path.stat().st_mtime > after
    except OSError:
        return False


def scratch(stage: str) -> tempfile.TemporaryDirectory:
    """A temporary folder under the cache root, removed when its block ends (and by `sweep`
    after a killed build): for what a stage's workers read, which on a Ray cluster run on
    other machines (the cache folder is shared storage there; the driver's /tmp is not).
    Used with or without `--no-cache`; a cache root that cannot be written falls back to
    this machine's temporary folder (enough for workers on this machine)."""
    parent = cache_dir() / "stages" / stage / "scratch"
    try:
        parent.mkdir(parents=True, exist_ok=True)
        folder = tempfile.TemporaryDirectory(prefix=temp_prefix(), dir=parent)
    except OSError:
        return tempfile.TemporaryDirectory(prefix="composer-")
    os.chmod(folder.name, 0o777 & ~umask())  # mkdtemp makes it private; a cache may be shared
    return folder


def _size(folder: Path) -> int:
    if not folder.is_dir():
        return 0
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def copy_entry(src: Path, dst: Path) -> None:
    """Copy an entry's files (all but entry.json) into `dst`, which must exist."""
    for path in sorted(src.rglob("*")):
        if path.is_file() and path.name != ENTRY:
            target = dst / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
