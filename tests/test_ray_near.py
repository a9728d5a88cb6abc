"""Near dedup on a real two-node Ray cluster (tests/test_ray.py's): the stage runs where the
records are, the driver fetching no table, and writes the local engine's bytes, with
MinHash and with embeddings; its cache entry is the local one's and a rerun takes it. And
what a worker warns as it converts a source (a cache it cannot store in, a scorer's
Python warning) reaches the user as the local build shows it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")

import composer
from composer import near_dedup as near_module
from composer.cache import StageCache
from tests.helpers import snapshot, write_jsonl, write_manifest
from tests.test_ray import (  # noqa: F401  (fixtures)
    assert_same_bytes,
    cluster,
    ray_tasks,
    small_batches,
)

ORIGINAL = "Natalia sold clips to 48 of her friends in April, and then she sold half as many."
NEAR = "natalia SOLD clips to 48 of  her friends in april,   and then she sold half as many!"
PROMPT = "Write a short poem about the autumn rain falling on the old stone bridge."
PROMPT_NEAR = "Write a short poem about the autumn rain falling on the old stone bridge, please."
STORY = "The lighthouse keeper climbed the stairs every night to light the great lamp above."
STORY_NEAR = "The lighthouse keeper climbed the stairs every night to light the great lamp."
DISTINCT = [
    "Explain how a bicycle gear works to a child.",
    "Weng earns $12 an hour for babysitting. How much did she earn for 50 minutes?",
    "Betty is saving money for a new wallet which costs $100.",
    "Name three rivers of South America and the countries they cross.",
]


@pytest.fixture
def address(cluster) -> str:  # noqa: F811  (tests.test_ray's two nodes)
    return cluster.address


@pytest.fixture
def sent(ray_tasks) -> list[tuple]:  # noqa: F811
    """(function, tasks, setup) of each map the build sent to the cluster; ("fetch", 1,
    None) for each table it fetched."""
    return ray_tasks


def near_mixture(folder: Path, method: str, **manifest) -> Path:
    """SFT, DPO and text sources, each kind with a near copy of its first item in a more
    trusted source (which keeps it), and items near nothing."""

    def alpaca(texts: list[str], tag: str) -> list[dict]:
        return [{"instruction": t, "output": f"{tag} answer {i}"} for i, t in enumerate(texts)]

    def pairs(prompts: list[str], tag: str) -> list[dict]:
        return [
            {"prompt": p, "chosen": f"{tag} yes {i}", "rejected": f"{tag} no {i}"}
            for i, p in enumerate(prompts)
        ]

    files = {
        "low_sft": alpaca([ORIGINAL, *DISTINCT], "low"),
        "high_sft": alpaca([NEAR, "Write a haiku about the sea at night."], "high"),
        "low_dpo": pairs([PROMPT, *DISTINCT[:2]], "low"),
        "high_dpo": pairs([PROMPT_NEAR, DISTINCT[3]], "high"),
        "low_text": [{"text": STORY}, *({"text": t} for t in DISTINCT[1:])],
        "high_text": [{"text": STORY_NEAR}],
    }
    plugins = {"sft": "alpaca", "dpo": "dpo", "text": "text"}
    sources = [
        {
            "name": name,
            "plugin": plugins[name.split("_")[1]],
            "path": write_jsonl(folder / f"{name}.jsonl", rows),
            "confidence": 3 if name.startswith("high") else 1,
        }
        for name, rows in files.items()
    ]
    threshold = 0.9 if method == "embedding" else 0.7
    return write_manifest(
        folder,
        sources,
        dedup={"key": "instruction", "near": {"method": method, "threshold": threshold}},
        **{"formats": ["chatml", "alpaca"], "split": {"validation": 0.2}, **manifest},
    )


def assert_the_trusted_copies_won(report: dict) -> None:
    lost = {s["name"]: s["near_lost_to"] for s in report["sources"]}
    assert lost == {
        "low_sft": {"high_sft": 1},
        "high_sft": {},
        "low_dpo": {"high_dpo": 1},
        "high_dpo": {},
        "low_text": {"high_text": 1},
        "high_text": {},
    }
    assert {c["kind"] for c in report["near_duplicates"]["clusters"]} == {"sft", "dpo", "text"}


def driver_key_texts(monkeypatch) -> list[int]:
    """Key texts made in this process (the driver): none, when near dedup runs on Ray."""
    made: list[int] = []
    real = near_module.key_texts
    monkeypatch.setattr(near_module, "key_texts", lambda *a: made.append(1) or real(*a))
    return made


@pytest.mark.usefixtures("small_batches")
@pytest.mark.parametrize("method", ["minhash", "embedding"])
def test_near_dedup_on_the_cluster_is_the_local_build(address, tmp_path, sent, monkeypatch, method):
    """The same bytes, and a driver that held no records: near dedup ran as tasks on the
    cluster (a kind a task), and no table was fetched from the object store."""
    path = near_mixture(tmp_path, method)
    local = composer.build(path, tmp_path / "local", workers=1, cache=False)
    assert_the_trusted_copies_won(local.report)
    made = driver_key_texts(monkeypatch)
    on_ray = composer.build(path, tmp_path / "ray", cache=False, engine="ray", address=address)
    assert [count for fn, count, _ in sent if fn == "near_kind"] == [3]  # a task a kind
    # MinHash signatures first, a task a source, in parallel (the embeddings in the kind's)
    signed = [count for fn, count, _ in sent if fn == "source_signatures"]
    assert signed == ([6] if method == "minhash" else [])
    assert "fetch" not in {fn for fn, *_ in sent} and not made
    assert on_ray.report["near_duplicates"] == local.report["near_duplicates"]
    assert_same_bytes(local.output_dir, on_ray.output_dir)


def near_entries(cache: Path) -> dict[str, bytes]:
    return snapshot(cache / "stages" / "near")


@pytest.mark.usefixtures("small_batches")
def test_the_near_cache_entry_is_the_local_one_and_a_rerun_takes_it(
    address, tmp_path, tmp_path_factory, sent, monkeypatch, composer_cache_env
):
    """A Ray build stores near dedup's entry (written on a worker, where the similarities
    are) with the bytes the local build stores; a rerun on Ray reads it (the driver takes
    no similarities) and sends no near dedup task."""
    path = near_mixture(tmp_path, "minhash")
    on_ray = composer.build(path, tmp_path / "ray", engine="ray", address=address)
    events = [e["event"] for e in StageCache().events() if e["stage"] == "near"]
    assert events == ["miss", "store"]
    stored = near_entries(composer_cache_env)
    assert any(name.endswith("similarities.npy") for name in stored)

    local_cache = tmp_path_factory.mktemp("local-cache")
    with monkeypatch.context() as m:
        m.setenv("COMPOSER_CACHE", str(local_cache))
        local = composer.build(path, tmp_path / "local", workers=1)
    assert near_entries(local_cache) == stored
    assert_same_bytes(local.output_dir, on_ray.output_dir)

    sent.clear()
    made = driver_key_texts(monkeypatch)
    path = near_mixture(tmp_path, "minhash", formats=["chatml", "vicuna"])  # a new output
    again = composer.build(path, tmp_path / "again", engine="ray", address=address)
    assert [e["event"] for e in StageCache().events() if e["stage"] == "near"][2:] == ["hit"]
    assert "near 1 reused, 0 computed" in again.cache_use
    assert "near_kind" not in {fn for fn, *_ in sent} and not made
    assert again.report["near_duplicates"] == on_ray.report["near_duplicates"]


# ---------------------------------------------------------------- warnings from the workers

WARNING = "this scorer is only a test"
SCORER = f"""
import warnings

import numpy as np


def score(batch):
    warnings.warn({WARNING!r}, UserWarning)
    return np.ones(batch.num_rows)
"""


def build_command(manifest: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
    """`composer build` in a process of its own: Python shows its warnings on stderr (in
    this one, pytest records them)."""
    command = [sys.executable, "-m", "composer", "build", str(manifest), "-o", str(out), "-q"]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=240)


def test_what_workers_warn_reaches_the_user_as_the_local_build_shows_it(
    address, tmp_path, tmp_path_factory, monkeypatch
):
    """A cache that cannot be written (its `stages` a file: root ignores modes), and a
    scorer beside the manifest raising a Python warning as each source is filtered: the
    Ray build's stderr has the local build's warning lines, each once."""
    filters = {"score": [{"scorer": "warns:score", "min": 0}]}
    path = near_mixture(tmp_path, "minhash", filters=filters)
    (tmp_path / "warns.py").write_text(SCORER, encoding="utf-8")
    cache = tmp_path_factory.mktemp("unwritable")
    (cache / "stages").write_text("not a folder")
    monkeypatch.setenv("COMPOSER_CACHE", str(cache))

    local = build_command(path, tmp_path / "local", "--workers", "1")
    on_ray = build_command(path, tmp_path / "ray", "--engine", "ray", "--address", address)
    assert local.returncode == 0 and on_ray.returncode == 0, local.stderr + on_ray.stderr

    told = local.stderr.splitlines()
    assert told[0].endswith(f"warns.py:8: UserWarning: {WARNING}"), local.stderr
    assert told[1].strip().startswith("warnings.warn(")  # the line that raised it
    assert told[2].startswith(f"Warning: cannot store in the cache {cache} (source low_sft): ")
    assert len(told) == 3
    assert on_ray.stderr == local.stderr
    assert_same_bytes(tmp_path / "local", tmp_path / "ray")


class OwnWarning(UserWarning):
    """A warning class of a module the driver may not have (a plugin's)."""


def test_a_replayed_warning_has_its_category_file_and_line(monkeypatch):
    """composer.engines.caught without a cluster: each warning recorded once, and raised
    again with its category (one of the same name when its class cannot be imported), file
    and line, so that the driver's filters and `warnings.showwarning` see what they would."""
    import warnings

    from composer.engines import caught

    with caught.recording() as told:
        for _ in range(3):
            warnings.warn("often", OwnWarning, stacklevel=1)
        warnings.warn("once", DeprecationWarning, stacklevel=1)
    assert [(m, c[1]) for m, c, *_ in told] == [
        ("often", "OwnWarning"),
        ("once", "DeprecationWarning"),
    ]
    told[0] = (told[0][0], ("not_a_module_here", "OwnWarning"), *told[0][2:])
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        caught.replay(told)
    assert [(str(w.message), w.category.__name__) for w in shown] == [
        ("often", "OwnWarning"),
        ("once", "DeprecationWarning"),
    ]
    assert issubclass(shown[0].category, UserWarning) and shown[1].category is DeprecationWarning
    assert {(w.filename, w.lineno) for w in shown} == {(f, n) for *_, f, n in told}
    assert shown[0].filename == __file__


def stored_vector(folder: str, x: int) -> int:
    """A scan actor's task in small: it stores an embedding in `folder` (its state)."""
    from composer.embeddings import EmbeddingCache

    cache = EmbeddingCache(Path(folder))
    cache.put(x, np.zeros(2, np.float32))
    cache.save()
    return x


def test_what_an_actor_writes_to_stderr_reaches_the_user_once(address, tmp_path, capfd):
    """The scan's actors say on stderr that they cannot store embeddings (a print, as the
    local engine's workers say it): on Ray the driver writes it, once for the whole map,
    though every task said it."""
    from functools import partial

    from composer.engines.ray import RayEngine

    (tmp_path / "a-file").write_text("not a folder")
    folder = tmp_path / "a-file" / "embeddings"
    with RayEngine(address) as engine:
        capfd.readouterr()
        done = engine.map(stored_vector, list(range(6)), setup=partial(str, str(folder)))
    assert done == list(range(6))
    said = capfd.readouterr().err.splitlines()
    assert said == [f"Warning: cannot store embeddings in {folder}: Not a directory"], said


def test_what_a_task_writes_to_stderr_is_recorded_and_written_once(capsys):
    from composer.engines import caught

    told = []
    for _ in range(2):
        with caught.recording() as one:
            print("Warning: a note", file=sys.stderr)
        told.append(one)
    assert capsys.readouterr().err == ""  # recorded, not written, where the task ran
    written: set[str] = set()
    for one in told:
        caught.replay(one, written)
    assert capsys.readouterr().err == "Warning: a note\n"
