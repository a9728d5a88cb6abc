"""The catalogue as a whole: every source the issue names, with bagel's confidence, in
`composer sources`, tested, and in manifests/bagel.yaml, which validates offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from composer.plugins import registry
from tests.helpers import ROOT, invoke

# bagel's priorities: 3 highest
SFT = {
    3: "ai2_arc boolq cinematika emobank mathinstruct mmlu openbookqa piqa ropes squad_v2 "
    "airoboros_summarization winogrande",
    2: "apps belebele camel_ai_biology camel_ai_chemistry camel_ai_math camel_ai_physics "
    "capybara drop evol_instruct glaive_function_calling lmsys_chat_1m slimorca rosetta_code "
    "sql_create_context",
    1: "airoboros bluemoon limarp natural_instructions pippa python_alpaca spider synthia "
    "whiterabbitneo",
}
DPO = "airoboros_dpo helpsteer orca_dpo_pairs ultrafeedback truthy contextual_dpo gutenberg_dpo "
DPO += "toxic_dpo lmsys_chat_1m_dpo"
TEXT = "gutenberg cinematika_text"
SEEDS = {"openorca": "sft", "orca_chat": "sft", "dolphin": "sft", "koalpaca": "sft"}
SEEDS |= {"oasst": "sft", "h2o_dpo": "dpo", "redpajama_sample": "text", "fanfics": "text"}
GENERIC = {"sharegpt", "messages", "alpaca", "dpo", "text"}
BAGEL = [n for names in SFT.values() for n in names.split()] + DPO.split() + TEXT.split()


def sources_json() -> dict[str, dict]:
    result = invoke("sources", "--json")
    assert result.exit_code == 0, result.output
    return {row["name"]: row for row in json.loads(result.stdout)}


def test_composer_sources_lists_every_catalogue_plugin_with_its_kind():
    rows = sources_json()
    for confidence, names in SFT.items():
        for name in names.split():
            assert (rows[name]["kind"], rows[name]["confidence"]) == ("sft", confidence), name
    assert {n: rows[n]["kind"] for n in DPO.split()} == dict.fromkeys(DPO.split(), "dpo")
    assert {n: rows[n]["kind"] for n in TEXT.split()} == dict.fromkeys(TEXT.split(), "text")
    assert {n: rows[n]["kind"] for n in SEEDS} == SEEDS


@pytest.mark.parametrize("name", sorted(set(BAGEL) | set(SEEDS)))
def test_a_catalogue_plugin_names_its_upstream_licence_and_purpose(name):
    plugin = registry()[name]
    assert plugin.hub, "a default upstream"
    assert plugin.license, "a licence (or 'unknown')"
    assert plugin.description, "a one-line docstring for `composer sources`"
    assert "train" in plugin.split, "train splits only (mmlu's is auxiliary_train)"


def test_only_the_toxic_source_is_opt_in_and_gated_ones_say_so():
    rows = sources_json()
    assert {n for n, r in rows.items() if r["opt_in"]} == {"toxic_dpo"}
    assert {"lmsys_chat_1m", "whiterabbitneo"} <= {n for n, r in rows.items() if r["gated"]}


@pytest.mark.parametrize("name", sorted(set(registry()) - GENERIC))
def test_every_builtin_plugin_has_a_test_that_names_it(name):
    tests = [
        p.read_text("utf-8")
        for p in (ROOT / "tests").glob("test_*.py")
        if p.name != Path(__file__).name  # this file names them all
    ]
    assert any(f'"{name}"' in t for t in tests)


def test_bagel_manifest_has_every_bagel_source_and_validates_offline():
    path = ROOT / "manifests" / "bagel.yaml"
    manifest = yaml.safe_load(path.read_text("utf-8"))
    plugins = {s.get("plugin", s["name"]) for s in manifest["sources"]}
    assert set(BAGEL) <= plugins
    result = invoke("validate", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{path}: ok (")
    gated = [line for line in result.stderr.splitlines() if "is gated" in line]
    assert len(gated) == 4  # lmsys_chat_1m, its pairs and both WhiteRabbitNeo chapters


def test_seed_manifest_validates_offline():
    path = ROOT / "manifests" / "seeds.yaml"
    result = invoke("validate", str(path))
    assert result.exit_code == 0, result.output
    names = {s["name"] for s in yaml.safe_load(path.read_text("utf-8"))["sources"]}
    assert names == set(SEEDS)
