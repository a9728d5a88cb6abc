"""Fixtures every test module gets: no network, and no cache outside a temporary folder."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def offline_hf(tmp_path_factory, monkeypatch):
    """Keep `datasets` and `huggingface_hub` off the network and out of the user's cache.

    Both libraries read these variables once, at import, so their module constants are
    patched as well as the environment. The cache is a folder of its own, not under the
    test's tmp_path, so that tests can list their tmp_path without seeing it.
    """
    import datasets.config
    import huggingface_hub.constants

    cache = tmp_path_factory.mktemp("hf-cache")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(cache))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache / "datasets"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache / "datasets")
    monkeypatch.setattr(datasets.config, "HF_MODULES_CACHE", cache / "modules")


@pytest.fixture(scope="session")
def composer_cache(tmp_path_factory):
    """One composer cache for the session: the static model is distilled once (about 30 s),
    the transformer exported to ONNX once (about 10 s)."""
    return tmp_path_factory.mktemp("composer-cache")


@pytest.fixture(autouse=True)
def composer_cache_env(composer_cache, tmp_path_factory, monkeypatch):
    """A stage cache of the test's own (a test that monkeypatches code must not read what
    another test stored under the same key), sharing the session's static model and
    embeddings."""
    own = tmp_path_factory.mktemp("stage-cache")
    for shared in ("static", "embeddings", "onnx"):
        (composer_cache / shared).mkdir(exist_ok=True)
        (own / shared).symlink_to(composer_cache / shared, target_is_directory=True)
    monkeypatch.setenv("COMPOSER_CACHE", str(own))
    return own
