"""A real `composer build` killed with SIGKILL while it loads, embeds and writes.

Each kill must leave the previous output folder as it was, byte for byte; the build started
again must finish and write exactly the bytes of a clean build (`--no-cache`, a cache folder
of its own) of the same manifest, reusing what the killed build stored in the cache.

The builds are subprocesses of the CLI. A kill point is found by polling what the build
leaves on disk (its lines in the cache's log, the output's temporary folder) every few
milliseconds. The data is big enough that each phase lasts far longer than that: if a build
ends before it is killed, a phase has become too short and the data must grow (no sleeps,
and no hooks in composer's code).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import snapshot, write_jsonl, write_manifest

BUILD = [sys.executable, "-m", "composer", "build"]
POLL = 0.005  # seconds between looks at the kill point
WAIT = 300  # seconds a build may take at most, kill point or not

WORDS = (
    "apple river stone cloud garden window market silver forest candle engine paper ocean "
    "bridge violet thunder lantern meadow harbor pepper marble rocket velvet canyon orbit"
).split()
BENCHMARK = [
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips "
    "in May. How many clips did Natalia sell altogether in April and May?",
    "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of "
    "babysitting. How much did she earn?",
]
REWORDED = (  # BENCHMARK[1] in other words, the same numbers: an embedding match
    "Priya makes $12 per hour for childminding. Yesterday, she only did 50 minutes of "
    "childminding. How much money did she make?"
)


# ---------------------------------------------------------------- data


def conversation(question: str, answer: str) -> dict:
    return {
        "conversations": [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]
    }


def chat_rows(seed: int, n: int) -> list[dict]:
    """`n` distinct conversations of random words (numbered: dedup keeps them all)."""
    rng = random.Random(seed)

    def words(count: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(count))

    return [
        conversation(f"{words(12)} question {seed}-{i}?", f"{words(24)} answer {i}.")
        for i in range(n)
    ]


# ---------------------------------------------------------------- builds


STARTED: list[Build] = []  # builds a test started: stopped when it ends, whatever happened


class Build:
    """`composer build MANIFEST -q ARGS...` running; `cache`: another COMPOSER_CACHE."""

    def __init__(self, manifest: Path, *args: str, cache: Path | None = None):
        env = dict(os.environ)  # offline, and the test's own cache (see conftest)
        if cache is not None:
            env["COMPOSER_CACHE"] = str(cache)
        # A file, not a pipe (one that nobody reads could fill up); closed when the test ends.
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115
        self.proc = subprocess.Popen(
            [*BUILD, str(manifest), "-q", *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.stderr,
        )
        self.pid = self.proc.pid
        STARTED.append(self)

    def errors(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.stderr.close()

    def finish(self) -> None:
        """Wait for the build; it must succeed."""
        try:
            self.proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.stop()
            raise
        assert self.proc.returncode == 0, self.errors()

    def kill_when(self, reached: Callable[[int], bool], what: str) -> None:
        """SIGKILL the build as soon as `reached(its pid)` is true; it must not have ended."""
        deadline = time.monotonic() + WAIT
        try:
            while not reached(self.pid):
                code = self.proc.poll()
                assert code is None, f"the build ended ({code}) before {what}: {self.errors()}"
                assert time.monotonic() < deadline, f"no {what} after {WAIT} s"
                time.sleep(POLL)
        finally:
            if self.proc.poll() is None:
                os.kill(self.pid, signal.SIGKILL)
            self.proc.wait()
        assert self.proc.returncode == -signal.SIGKILL, (
            f"the build finished before it was killed {what}: make that phase longer"
        )


@pytest.fixture(autouse=True)
def no_build_left():
    yield
    while STARTED:
        STARTED.pop().stop()


def build(manifest: Path, *args: str) -> None:
    Build(manifest, *args).finish()


def killed(manifest: Path, reached: Callable[[int], bool], what: str) -> int:
    """The pid of a build of `manifest`, killed once `reached(pid)`."""
    running = Build(manifest)
    running.kill_when(reached, what)
    return running.pid


def logged(cache: Path, event: str, stage: str, pid: int | None = None) -> list[dict]:
    """The cache log's lines of `event` for `stage` (of one build, with `pid`)."""
    try:
        text = (cache / "log.jsonl").read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        try:
            e = json.loads(line)
        except ValueError:  # a line a kill cut short
            continue
        if e["event"] == event and e["stage"] == stage and (pid is None or e["pid"] == pid):
            out.append(e)
    return out


def last_pid(cache: Path) -> int:
    """The pid of the build that wrote the cache log's last line."""
    return json.loads((cache / "log.jsonl").read_text(encoding="utf-8").splitlines()[-1])["pid"]


def names(entries: list[dict]) -> set[str]:
    return {e["name"] for e in entries}


def hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, by relative path."""
    return {path: hashlib.sha256(data).hexdigest() for path, data in snapshot(folder).items()}


def assert_same_bytes(folder: Path, clean: Path) -> None:
    ours, theirs = snapshot(folder), snapshot(clean)
    assert sorted(ours) == sorted(theirs)
    differ = [path for path in ours if ours[path] != theirs[path]]
    assert not differ, f"{folder}: not the bytes of a clean build: {differ}"


def beside(out: Path, kind: str = "") -> list[Path]:
    """What a build leaves beside the output while it runs (`.out.tmp-*`, `.out.old-*`)."""
    return sorted(out.parent.glob(f".{out.name}.{kind}*"))


# ---------------------------------------------------------------- the tests


def test_a_build_killed_while_loading_or_writing_resumes_to_the_same_bytes(
    tmp_path, composer_cache_env
):
    cache = composer_cache_env
    sources = []
    # The first source is small (loaded soon), the second big: it is being loaded when the
    # first is stored in the cache (about half a second, on a machine with 2 cores).
    for n, rows in enumerate([4_000, 20_000, 6_000]):
        write_jsonl(tmp_path / f"chat{n}.jsonl", chat_rows(n, rows))
        sources.append({"name": f"chat{n}", "plugin": "sharegpt", "path": f"chat{n}.jsonl"})
    everything = {s["name"] for s in sources}
    manifest = write_manifest(
        tmp_path, sources, output={"dir": "out", "jsonl": True}, split={"validation": 0.1}
    )
    out, clean = tmp_path / "out", tmp_path / "clean"
    # The clean build runs beside the others: a cache of its own, and nothing read or stored.
    clean_build = Build(manifest, "--no-cache", "-o", str(clean), cache=tmp_path / "no-cache")
    build(manifest, "--seed", "1")  # the previous output: another seed, another mixture
    previous = hashes(out)
    kept = tmp_path / "previous"
    shutil.copytree(out, kept)

    # 1. While loading: a source stored in the cache, the next one being converted.
    def loading(pid: int) -> bool:
        return bool(logged(cache, "store", "source", pid))

    pid = killed(manifest, loading, "while loading")
    stored = names(logged(cache, "store", "source", pid))
    assert stored and stored != everything
    assert not logged(cache, "store", "output", pid)
    assert hashes(out) == previous
    assert beside(out, "tmp-")  # its unfinished output, which the next build removes

    build(manifest)
    clean_build.finish()
    assert previous != hashes(clean)
    assert beside(out) == []
    assert_same_bytes(out, clean)
    again = last_pid(cache)
    assert names(logged(cache, "hit", "source", again)) == stored  # not converted again
    assert names(logged(cache, "miss", "source", again)) == everything - stored

    # 2. While writing: the rendered rows going into the output's temporary folder.
    shutil.rmtree(out)
    shutil.copytree(kept, out)  # the previous output again
    for stage in ("render", "output"):  # so that the build renders and writes again
        shutil.rmtree(cache / "stages" / stage, ignore_errors=True)

    def writing(pid: int) -> bool:
        return any(
            (tmp / "sft" / "messages" / "train.parquet").exists() for tmp in beside(out, "tmp-")
        )

    pid = killed(manifest, writing, "while writing")
    assert names(logged(cache, "hit", "source", pid)) == everything
    assert not logged(cache, "store", "output", pid)
    assert hashes(out) == previous

    build(manifest)
    assert beside(out) == []
    assert_same_bytes(out, clean)


def test_a_build_killed_while_embedding_resumes_to_the_same_bytes(tmp_path, composer_cache_env):
    cache = composer_cache_env
    (cache / "embeddings").unlink()  # embeddings of this test's own: none computed yet
    write_jsonl(tmp_path / "bench.jsonl", [{"question": q, "answer": "x"} for q in BENCHMARK])
    rows = chat_rows(7, 80)
    rows[10] = conversation(BENCHMARK[0], "72")  # verbatim: found by its n-grams
    rows[20] = conversation(f"Please solve: {BENCHMARK[1]}", "$10")
    rows[30] = conversation(REWORDED, "$10")
    write_jsonl(tmp_path / "chat.jsonl", rows)
    sources = [{"name": "chat", "plugin": "sharegpt", "path": "chat.jsonl"}]
    benchmarks = [{"name": "gsm8k", "path": "bench.jsonl", "split": "test"}]
    # Without the static first pass, the transformer embeds every turn: the long phase (and
    # no static model to distil first).
    manifest = write_manifest(
        tmp_path,
        sources,
        output={"dir": "out"},
        decontaminate={"benchmarks": benchmarks, "static": False},
    )
    # The previous output: the same sources, another seed, and no decontamination, so that
    # no embedding is in the cache before the build that is killed.
    before = write_manifest(tmp_path, sources, "before.yaml", output={"dir": "out"})
    out, clean = tmp_path / "out", tmp_path / "clean"
    clean_build = Build(manifest, "--no-cache", "-o", str(clean), cache=tmp_path / "no-cache")
    build(before, "--seed", "1")
    previous = hashes(out)

    # The benchmark items indexed (the transformer loaded), the source's scan under way.
    def embedding(pid: int) -> bool:
        return bool(logged(cache, "store", "benchmarks", pid))

    pid = killed(manifest, embedding, "while embedding")
    assert logged(cache, "miss", "decontaminate", pid)
    assert not logged(cache, "store", "decontaminate", pid)
    assert hashes(out) == previous
    assert beside(out, "tmp-")

    build(manifest)
    clean_build.finish()
    audit = [json.loads(line) for line in (clean / "contamination.jsonl").open()]
    assert {a["detector"] for a in audit} == {"ngram", "embedding"}
    assert beside(out) == []
    assert_same_bytes(out, clean)
    again = last_pid(cache)
    log = (cache / "log.jsonl").read_text(encoding="utf-8")
    assert logged(cache, "hit", "source", again), log
    assert logged(cache, "hit", "benchmarks", again), log
    assert logged(cache, "store", "decontaminate", again), log
