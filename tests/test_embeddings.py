"""The transformer's backends: the packaged MiniLM exported to ONNX (a real export, once a
test session, in the session's cache) against sentence-transformers' torch, and the
fallback to torch for any other model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from composer.embeddings import (
    DEFAULT_MODEL,
    OnnxModel,
    TransformerEmbedder,
    default_backend,
    model_path,
    onnx_path,
)

TEXTS = [
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips "
    "in May. How many clips did Natalia sell altogether in April and May?",
    'def add(x: int, y: int) -> int:\n    """Add two numbers x and y\n    >>> add(2, 3)\n'
    '    5\n    """\n',
    "  spaces around, and a tab\tinside  ",
    "Café naïve — unicode, emoji 🙂 and CJK 漢字.",
    "a",
    " ".join(["the long text is cut at 256 tokens as sentence-transformers cuts it"] * 40),
]


@pytest.fixture(scope="module")
def torch_vectors() -> np.ndarray:
    return TransformerEmbedder(cached=False, backend="torch").encode(TEXTS)


def test_the_onnx_backend_gives_the_torch_vectors(torch_vectors):
    embedder = TransformerEmbedder(cached=False, backend="onnx")
    vectors = embedder.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), 384) and vectors.dtype == np.float32
    assert np.abs(vectors - torch_vectors).max() < 1e-5
    cosines, expected = vectors @ vectors.T, torch_vectors @ torch_vectors.T
    assert np.abs(cosines - expected).max() < 1e-5
    assert onnx_path(DEFAULT_MODEL).exists()


def test_the_packaged_model_runs_in_onnx_runtime_on_a_cpu():
    import torch

    expected = "torch-fp16" if torch.cuda.is_available() else "onnx"
    assert default_backend(DEFAULT_MODEL) == default_backend("all-MiniLM-L6-v2") == expected


def test_any_other_model_runs_in_sentence_transformers(torch_vectors):
    # The packaged weights named by their folder: a model the ONNX path does not know.
    embedder = TransformerEmbedder(model_path(DEFAULT_MODEL), cached=False)
    vectors = embedder.encode(TEXTS)
    assert embedder.backend in ("torch", "torch-fp16")
    if embedder.backend == "torch":
        assert np.abs(vectors - torch_vectors).max() < 1e-6


def test_a_texts_vector_depends_on_nothing_but_the_text():
    """One text a call: the same bits alone, among others, and on any number of threads
    (a worker runs one, a one-worker build every core), so any split gives the same bytes."""
    import composer.embeddings as embeddings

    model = OnnxModel(DEFAULT_MODEL)
    alone = np.stack([model.encode([t])[0] for t in TEXTS])
    assert np.array_equal(model.encode(TEXTS), alone)
    assert np.array_equal(model.encode(TEXTS[::-1])[::-1], alone)
    embeddings.set_threads(1)
    try:
        assert np.array_equal(OnnxModel(DEFAULT_MODEL).encode(TEXTS), alone)
    finally:
        embeddings.THREADS = None


def test_the_embedding_cache_is_kept_apart_by_backend(composer_cache_env):
    (composer_cache_env / "embeddings").unlink()  # embeddings of this test's own
    on_torch = TransformerEmbedder(backend="torch")
    on_torch.encode(TEXTS[:2])
    on_onnx = TransformerEmbedder(backend="onnx")
    on_onnx.encode(TEXTS[:2])  # not read from torch's vectors
    assert (on_torch.computed, on_onnx.computed) == (2, 2)
    assert on_torch.cache.folder != on_onnx.cache.folder
    again = TransformerEmbedder(backend="onnx")
    again.encode(TEXTS[:2])
    assert again.computed == 0


def test_the_export_is_keyed_by_the_runtimes_version(monkeypatch):
    path = onnx_path(DEFAULT_MODEL)
    monkeypatch.setattr(onnxruntime, "__version__", "0.0.1")
    assert onnx_path(DEFAULT_MODEL) != path
    assert onnx_path(DEFAULT_MODEL).name == "model.onnx"


EXPORT = "from composer.embeddings import *; print(export_onnx(DEFAULT_MODEL))"


def test_two_processes_exporting_at_once_leave_one_sound_model(
    tmp_path, torch_vectors, monkeypatch
):
    monkeypatch.setenv("COMPOSER_CACHE", str(tmp_path))  # a cache with no export yet
    env = dict(os.environ)
    runs = [
        subprocess.Popen([sys.executable, "-c", EXPORT], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    paths = {run.communicate(timeout=300)[0].strip() for run in runs}
    assert all(run.returncode == 0 for run in runs)
    [path] = paths
    assert [p.name for p in Path(path).parent.iterdir()] == ["model.onnx"]  # no temp file left
    assert np.abs(OnnxModel(DEFAULT_MODEL).encode(TEXTS) - torch_vectors).max() < 1e-5
    Path(path).write_bytes(b"cut short")  # damaged: exported again
    assert np.abs(OnnxModel(DEFAULT_MODEL).encode(TEXTS) - torch_vectors).max() < 1e-5
