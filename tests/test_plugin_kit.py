"""The plugin kit and the plugin contract, with real plugin modules written by the tests.

`composer.kit` (refusal checks, seeded draws and coins, stratified samples, lettered
options); the contract of `composer.plugins` (joined `inputs`, the manifest's `seed`,
`opt_in`, `gated`) through `composer.testing.convert_rows` and the CLI; `composer sources`;
and `composer new-source`, in a checkout and as a package that pip installs.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import math
import os
import re
import subprocess
import sys
import textwrap
from collections import Counter
from fractions import Fraction
from pathlib import Path
from types import ModuleType

import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from composer import kit
from composer.build import gated_notice, load_sources
from composer.errors import UserError
from composer.manifest import load_manifest
from composer.plugins import Plugin, registry
from composer.testing import convert_rows
from tests.helpers import assert_user_error, invoke, write_jsonl, write_manifest


def load_module(path: Path) -> ModuleType:
    """Import the Python file at `path` as a module named after it, as a test plugin."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_module(folder: Path, stem: str, source: str) -> ModuleType:
    """folder/stem.py holding `source` (dedented), imported."""
    path = folder / f"{stem}.py"
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return load_module(path)


def install(monkeypatch, module: ModuleType) -> Plugin:
    """Put a plugin module in the (cached) registry for this test only."""
    plugin = Plugin.from_module(module, "under test")
    monkeypatch.setitem(registry(), plugin.name, plugin)
    return plugin


def metas(converted) -> list[dict]:
    return [json.loads(m) for m in converted.records.column("meta").to_pylist()]


# ---------------------------------------------------------------- kit: refusals


REFUSALS = [
    "I'm sorry, but I can't help with that.",
    "AS AN AI LANGUAGE MODEL, I do not have opinions.",
    "i cannot assist with this request.",
    "I am afraid, but that is against my guidelines.",
    "Sorry. I won't provide instructions for that.",
    "It is not appropriate for me to say.",
]
ANSWERS = [
    "The capital of France is Paris.",
    "Sure! Here is a poem about the sea.",
    "I am sorry to hear that your cat is ill; take her to a vet.",
    "Aspirin can help with a headache.",
    "",
    None,
]


@pytest.mark.parametrize("text", REFUSALS)
def test_has_refusal_flags_refusals_in_any_case(text):
    assert kit.has_refusal(text)
    assert kit.has_refusal(text.upper())
    assert kit.has_refusal(text.lower())


@pytest.mark.parametrize("text", ANSWERS)
def test_has_refusal_passes_ordinary_answers(text):
    assert not kit.has_refusal(text)


@pytest.mark.parametrize(
    "text",
    [
        "As an AI language model, I cannot feel.",
        "AS AN AI, I have no body.",
        "I am an AI and I cannot browse.",
        "That model was trained by OpenAI.",
        "Well, as a large language model I was trained on text.",
    ],
)
def test_as_an_ai_flags_boilerplate_in_any_case(text):
    assert kit.as_an_ai(text)
    assert kit.as_an_ai(text.upper())


@pytest.mark.parametrize(
    "text", [*ANSWERS, "I'm sorry, but I can't help with that.", "Paint it as an aid to memory."]
)
def test_as_an_ai_passes_other_text(text):
    assert not kit.as_an_ai(text)


# ---------------------------------------------------------------- kit: draws and coins


KEYS = [f"instruction {i}" for i in range(50)]


def test_draws_are_fixed_by_seed_keys_and_purpose():
    first = kit.draws(7, KEYS, "shuffle")
    assert first.tolist() == kit.draws(7, list(KEYS), "shuffle").tolist()
    assert all(0 <= x < 1 for x in first)
    assert len(set(first.tolist())) == len(KEYS)


def test_a_draw_does_not_depend_on_the_order_of_the_keys():
    forward = kit.draws(7, KEYS, "shuffle").tolist()
    backward = kit.draws(7, KEYS[::-1], "shuffle").tolist()
    assert backward == forward[::-1]
    # key k alone, first of the list and last of it
    k = KEYS[3]
    alone = kit.draws(7, [k], "shuffle")[0]
    assert kit.draws(7, [k, *KEYS[4:]], "shuffle")[0] == alone
    assert kit.draws(7, [*KEYS[4:], k], "shuffle")[-1] == alone


def test_another_seed_or_purpose_changes_the_draws():
    base = kit.draws(7, KEYS, "shuffle").tolist()
    for other in (kit.draws(8, KEYS, "shuffle"), kit.draws(7, KEYS, "drop")):
        other = other.tolist()
        assert sum(a != b for a, b in zip(base, other)) == len(KEYS)


def test_coin_is_fair_at_one_half():
    keys = [f"row {i}" for i in range(2000)]
    heads = kit.coin(3, keys, "flip")
    assert all(isinstance(h, bool) for h in heads)
    assert 0.45 < sum(heads) / len(heads) < 0.55
    assert heads == kit.coin(3, keys, "flip")


def test_coin_at_zero_and_one():
    keys = [f"row {i}" for i in range(500)]
    assert kit.coin(3, keys, "flip", p=0) == [False] * 500
    assert kit.coin(3, keys, "flip", p=1) == [True] * 500


def test_coin_agrees_with_draws():
    assert kit.coin(5, KEYS, "x", p=0.3) == [d < 0.3 for d in kit.draws(5, KEYS, "x")]


# ---------------------------------------------------------------- kit: stratified samples


def largest_remainder(strata: list, total: int) -> dict:
    """Each stratum's quota, computed apart from the kit: floors of the exact shares, then
    one more to each of the largest remainders; ties go to the stratum seen first."""
    counts = Counter(strata)  # insertion order: first seen first
    n = len(strata)
    exact = {s: Fraction(c * total, n) for s, c in counts.items()}  # exact, as the kit is
    quota = {s: math.floor(e) for s, e in exact.items()}
    left = total - sum(quota.values())
    by_remainder = sorted(counts, key=lambda s: -(exact[s] - quota[s]))  # stable: first seen
    for s in by_remainder[:left]:
        quota[s] += 1
    return quota


def shuffled_strata(sizes: dict[str, int], seed: int = 0) -> list[str]:
    import random

    strata = [s for s, k in sizes.items() for _ in range(k)]
    random.Random(seed).shuffle(strata)
    return strata


@pytest.mark.parametrize(
    ("sizes", "size"),
    [
        ({"a": 50, "b": 30, "c": 15, "d": 5}, 33),  # remainders .5 .9 .95 .65
        ({"math": 7, "code": 91, "chat": 2}, 10),
        ({"x": 1, "y": 1000}, 100),
    ],
)
def test_stratified_sample_keeps_each_stratum_share(sizes, size):
    strata = shuffled_strata(sizes)
    picked = kit.stratified_sample(strata, size, 42, "tasks")
    assert len(picked) == size
    assert picked == sorted(set(picked))
    assert all(0 <= i < len(strata) for i in picked)
    assert Counter(strata[i] for i in picked) == Counter(
        {s: q for s, q in largest_remainder(strata, size).items() if q}
    )


def test_stratified_sample_gives_a_tied_leftover_to_the_stratum_seen_first():
    strata = ["b", "a", "b", "a"]  # each stratum's share of 1 row is 0.5
    picked = kit.stratified_sample(strata, 1, 0)
    assert [strata[i] for i in picked] == ["b"]


@given(
    sizes=st.lists(st.integers(1, 40), min_size=1, max_size=6),
    fraction=st.floats(0, 1),
    seed=st.integers(0, 2**32),
)
@settings(max_examples=100, deadline=None)
def test_stratified_sample_invariants(sizes, fraction, seed):
    """Whatever the ties: total exact, each quota the floor or ceiling of its exact share,
    and a stratum that got the ceiling had a remainder at least as large as one that did not."""
    strata = shuffled_strata({f"s{i}": k for i, k in enumerate(sizes)}, seed)
    n = len(strata)
    total = round(fraction * n)
    picked = kit.stratified_sample(strata, total, seed)
    assert len(picked) == total
    assert picked == sorted(set(picked))
    got = Counter(strata[i] for i in picked)
    counts = Counter(strata)
    exact = {s: Fraction(c * total, n) for s, c in counts.items()}  # exact, as the kit is
    for s in counts:
        assert got[s] in (math.floor(exact[s]), math.ceil(exact[s]))
    up = [exact[s] % 1 for s in counts if got[s] > exact[s]]
    down = [exact[s] % 1 for s in counts if got[s] < exact[s]]
    if up and down:
        assert min(up) >= max(down)


def test_stratified_sample_is_fixed_by_its_seed():
    strata = shuffled_strata({"a": 60, "b": 40})
    first = kit.stratified_sample(strata, 20, 1, "p")
    assert kit.stratified_sample(strata, 20, 1, "p") == first
    assert kit.stratified_sample(strata, 20, 2, "p") != first
    assert kit.stratified_sample(strata, 20, 1, "q") != first


def test_stratified_sample_takes_a_fraction():
    strata = shuffled_strata({"a": 60, "b": 40})
    picked = kit.stratified_sample(strata, 0.25, 1)
    assert len(picked) == 25
    assert Counter(strata[i] for i in picked) == {"a": 15, "b": 10}


@pytest.mark.parametrize("size", [10, 11, 1000, 1.0])
def test_stratified_sample_of_at_least_everything_is_everything(size):
    strata = shuffled_strata({"a": 6, "b": 4})
    assert kit.stratified_sample(strata, size, 1) == list(range(10))


def test_stratified_sample_of_nothing():
    assert kit.stratified_sample(["a", "b", "a"], 0, 1) == []
    assert kit.stratified_sample([], 5, 1) == []


# ---------------------------------------------------------------- kit: lettered options


def test_lettered_labels_options_a_b_c():
    assert kit.lettered("Q", ["x", "y"]) == "Q\nA. x\nB. y"
    assert kit.lettered("Which?", ["1", "2", "3"]) == "Which?\nA. 1\nB. 2\nC. 3"


def test_lettered_takes_custom_labels():
    assert kit.lettered("Q", ["x", "y"], ["1", "2"]) == "Q\n1. x\n2. y"
    assert kit.lettered("Q", ["x", "y"], "ab") == "Q\na. x\nb. y"


# ---------------------------------------------------------------- the plugin contract


JOINED = '''\
    """Joined demo: answers looked up by question in an older dump."""

    from composer.turns import turn

    name = "joined_demo"
    kind = "sft"
    columns = ("question",)
    inputs = {"old": {"hub": "x/y"}}
    batch_size = 2


    def convert(batch, old, seed=0, prefix=""):
        if "Boom?" in batch["question"]:
            raise ValueError("boom")
        answers = dict(zip(old["question"], old["answer"]))
        return {
            "conversations": [
                [turn("human", prefix + q), turn("gpt", answers.get(q))]
                for q in batch["question"]
            ],
            "meta": [
                {"seed": seed, "old_rows": len(old["question"]), "old_columns": sorted(old)}
                for _ in batch["question"]
            ],
            "error": [None if q in answers else "no answer in old" for q in batch["question"]],
        }
'''
QUESTIONS = [{"question": q} for q in ("One?", "Two?", "Three?", "Four?", "Five?")]
OLD = [
    {"question": "One?", "answer": "1"},
    {"question": "Two?", "answer": "2"},
    {"question": "Three?", "answer": "3"},
    {"question": "Five?", "answer": "5"},
]


@pytest.fixture
def joined(tmp_path) -> ModuleType:
    return write_module(tmp_path, "joined_plugin", JOINED)


def test_a_joined_input_reaches_convert_whole_as_column_lists(joined, tmp_path):
    converted = convert_rows(joined, QUESTIONS, folder=tmp_path, inputs={"old": OLD}, seed=7)
    assert converted.records.column("conversations").to_pylist() == [
        [{"from": "human", "value": q}, {"from": "gpt", "value": a}]
        for q, a in [("One?", "1"), ("Two?", "2"), ("Three?", "3"), ("Five?", "5")]
    ]
    # every batch of 2 rows sees all 4 old rows; the manifest's seed, not convert's default
    assert [(m["seed"], m["old_rows"], m["old_columns"]) for m in metas(converted)] == [
        (7, 4, ["answer", "question"])
    ] * 4
    assert [(r.where, r.reason, r.detail) for r in converted.rejections] == [
        ("joined_demo.jsonl:line 4", "invalid row", "no answer in old")
    ]


def test_a_row_that_makes_convert_raise_is_rejected_and_its_batch_keeps_seed_and_input(
    joined, tmp_path
):
    rows = [{"question": "One?"}, {"question": "Boom?"}, {"question": "Two?"}]
    converted = convert_rows(joined, rows, folder=tmp_path, inputs={"old": OLD}, seed=7)
    assert [m["seed"] for m in metas(converted)] == [7, 7]
    assert [m["old_rows"] for m in metas(converted)] == [4, 4]
    assert [(r.where, r.reason, r.detail) for r in converted.rejections] == [
        ("joined_demo.jsonl:line 2", "plugin error", "ValueError: boom")
    ]


def test_convert_gets_the_manifest_seed_whatever_it_is(joined, tmp_path):
    for seed in (0, 7, 123456):
        converted = convert_rows(
            joined, QUESTIONS[:1], folder=tmp_path, inputs={"old": OLD}, seed=seed
        )
        assert metas(converted)[0]["seed"] == seed


def test_seed_and_inputs_are_not_options(joined, tmp_path):
    plugin = Plugin.from_module(joined, "under test")
    assert plugin.options == {"prefix": ""}
    assert plugin.takes_seed
    assert plugin.inputs == {"old": {"hub": "x/y"}}
    with pytest.raises(ValueError, match=r"options\.seed: unknown option"):
        convert_rows(joined, QUESTIONS, folder=tmp_path, inputs={"old": OLD}, options={"seed": 1})
    converted = convert_rows(
        joined, QUESTIONS[:1], folder=tmp_path, inputs={"old": OLD}, options={"prefix": ""}
    )
    assert converted.records.num_rows == 1


def test_a_plugin_without_seed_is_not_passed_one(tmp_path):
    module = write_module(
        tmp_path,
        "no_seed_plugin",
        """\
        from composer.turns import turn

        kind = "sft"
        columns = ("q",)


        def convert(batch):
            return {"conversations": [[turn("human", q), turn("gpt", "ok")] for q in batch["q"]]}
        """,
    )
    plugin = Plugin.from_module(module, "under test")
    assert plugin.name == "no_seed_plugin"
    assert not plugin.takes_seed
    assert convert_rows(module, [{"q": "hi"}], folder=tmp_path, seed=9).records.num_rows == 1


@pytest.mark.parametrize(
    ("declared", "signature", "message"),
    [
        (
            "",
            "batch, old",
            "plugin 'bad' (bad_plugin): convert parameters without a default (old) "
            "must match its inputs (none)",
        ),
        (
            'inputs = {"old": {"hub": "x/y"}}',
            "batch",
            "plugin 'bad' (bad_plugin): convert parameters without a default (none) "
            "must match its inputs (old)",
        ),
        (
            'inputs = {"old": {"hub": "x/y"}}',
            "batch, *, older",
            "plugin 'bad' (bad_plugin): convert parameters without a default (older) "
            "must match its inputs (old)",
        ),
    ],
)
def test_an_undeclared_input_is_a_user_error(tmp_path, declared, signature, message):
    module = write_module(
        tmp_path,
        "bad_plugin",
        f"""\
        name = "bad"
        kind = "sft"
        {declared}


        def convert({signature}):
            return {{}}
        """,
    )
    with pytest.raises(UserError) as caught:
        Plugin.from_module(module, "under test")
    assert str(caught.value) == message


def test_validate_names_an_unknown_input(joined, tmp_path, monkeypatch):
    install(monkeypatch, joined)
    write_jsonl(tmp_path / "q.jsonl", QUESTIONS)
    write_jsonl(tmp_path / "old.jsonl", OLD)
    manifest = write_manifest(
        tmp_path,
        [{"name": "j", "plugin": "joined_demo", "path": "q.jsonl", "inputs": {"olf": "old.jsonl"}}],
    )
    result = invoke("validate", str(manifest))
    assert result.exit_code == 2
    assert (
        "sources[0].inputs.olf: plugin 'joined_demo' joins no input 'olf' (did you mean 'old'?); "
        "its inputs: old"
    ) in result.stderr


def test_a_build_joins_a_local_input_and_passes_the_seed(joined, tmp_path, monkeypatch):
    install(monkeypatch, joined)
    write_jsonl(tmp_path / "q.jsonl", QUESTIONS)
    write_jsonl(tmp_path / "old.jsonl", OLD)
    manifest = write_manifest(
        tmp_path,
        [{"name": "j", "plugin": "joined_demo", "path": "q.jsonl", "inputs": {"old": "old.jsonl"}}],
        seed=11,
    )
    assert invoke("validate", str(manifest)).exit_code == 0
    result = invoke("build", str(manifest), "-o", str(tmp_path / "out"), "-q")
    assert result.exit_code == 0, result.output
    records = pq.read_table(tmp_path / "out" / "records.parquet").to_pylist()
    assert len(records) == 4
    assert {json.loads(r["meta"])["seed"] for r in records} == {11}


# ---------------------------------------------------------------- opt_in and gated


OPT_IN = '''\
    """Rude replies: toxic on purpose."""

    from composer.turns import turn

    name = "rude_demo"
    kind = "sft"
    hub = "someone/rude"
    opt_in = True
    columns = ("q", "a")


    def convert(batch):
        return {"conversations": [[turn("human", q), turn("gpt", a)]
                                  for q, a in zip(batch["q"], batch["a"])]}
'''
GATED = '''\
    """Gated chats."""

    name = "gated_demo"
    kind = "text"
    hub = "org/gated-set"
    gated = True
    columns = ("text",)


    def convert(batch):
        return {"text": batch["text"]}
'''


def test_an_opt_in_plugin_needs_opt_in_in_the_manifest(tmp_path, monkeypatch):
    plugin = install(monkeypatch, write_module(tmp_path, "rude_plugin", OPT_IN))
    assert plugin.opt_in
    manifest = write_manifest(tmp_path, [{"name": "r", "plugin": "rude_demo"}])
    result = invoke("validate", str(manifest))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"Error: {manifest}: invalid manifest\n")
    assert (
        "sources[0]: source 'r': plugin 'rude_demo' is opt-in (its data is toxic or unsafe "
        "on purpose): add `opt_in: true` to the source to use it"
    ) in result.stderr

    manifest = write_manifest(tmp_path, [{"name": "r", "plugin": "rude_demo", "opt_in": True}])
    result = invoke("validate", str(manifest))
    assert result.exit_code == 0, result.output
    assert result.stderr == ""


def test_a_gated_upstream_gets_a_note_and_a_local_path_none(tmp_path, monkeypatch):
    install(monkeypatch, write_module(tmp_path, "gated_plugin", GATED))
    manifest = write_manifest(tmp_path, [{"name": "g", "plugin": "gated_demo"}])
    result = invoke("validate", str(manifest))
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        "note: source 'g': org/gated-set is gated on the Hugging Face Hub: accept its terms at "
        "https://huggingface.co/datasets/org/gated-set and log in (`hf auth login` or HF_TOKEN) "
        "before building\n"
    )

    manifest = write_manifest(
        tmp_path, [{"name": "g", "plugin": "gated_demo", "hub": "mirror/gated-copy"}]
    )
    result = invoke("validate", str(manifest))
    assert result.exit_code == 0
    assert result.stderr == gated_notice("g", "mirror/gated-copy") + "\n"

    write_jsonl(tmp_path / "g.jsonl", [{"text": "hello"}])
    manifest = write_manifest(tmp_path, [{"name": "g", "plugin": "gated_demo", "path": "g.jsonl"}])
    result = invoke("validate", str(manifest))
    assert result.exit_code == 0
    assert result.stderr == ""


def test_load_sources_notes_a_gated_upstream_before_reading_it(tmp_path, monkeypatch, capsys):
    install(monkeypatch, write_module(tmp_path, "gated_plugin", GATED))
    write_jsonl(tmp_path / "g.jsonl", [{"text": "hello"}])
    manifest = load_manifest(
        write_manifest(
            tmp_path,
            [
                {"name": "g", "plugin": "gated_demo"},
                {"name": "h", "plugin": "gated_demo", "path": "g.jsonl"},
            ],
        )
    )
    read = []
    stages = importlib.import_module("composer.stages")
    monkeypatch.setattr(
        stages, "prepare_source", lambda m, i, plugin, phase=None: read.append(m.sources[i].name)
    )
    load_sources(manifest)
    assert read == ["g", "h"]
    assert capsys.readouterr().err == gated_notice("g", "org/gated-set") + "\n"


def test_toxic_dpo_is_opt_in(tmp_path):
    pytest.importorskip("composer.sources.toxic_dpo")
    assert registry()["toxic_dpo"].opt_in
    manifest = write_manifest(tmp_path, [{"name": "toxic_dpo"}])
    result = invoke("validate", str(manifest))
    assert result.exit_code == 2
    assert "sources[0]: source 'toxic_dpo': plugin 'toxic_dpo' is opt-in" in result.stderr
    assert "`opt_in: true`" in result.stderr

    manifest = write_manifest(tmp_path, [{"name": "toxic_dpo", "opt_in": True}])
    result = invoke("validate", str(manifest))
    assert result.exit_code == 0, result.output


def test_lmsys_chat_1m_is_gated(tmp_path):
    pytest.importorskip("composer.sources.lmsys_chat_1m")
    plugin = registry()["lmsys_chat_1m"]
    assert plugin.gated
    manifest = write_manifest(tmp_path, [{"name": "lmsys_chat_1m"}])
    result = invoke("validate", str(manifest))
    assert result.exit_code == 0, result.output
    assert result.stderr == gated_notice("lmsys_chat_1m", plugin.hub) + "\n"
    assert f"https://huggingface.co/datasets/{plugin.hub}" in result.stderr

    write_jsonl(tmp_path / "chats.jsonl", [{"conversation": []}])
    manifest = write_manifest(tmp_path, [{"name": "lmsys_chat_1m", "path": "chats.jsonl"}])
    result = invoke("validate", str(manifest))
    assert result.exit_code == 0, result.output
    assert result.stderr == ""


# ---------------------------------------------------------------- composer sources

SOURCE_KEYS = {
    "name",
    "kind",
    "confidence",
    "upstream",
    "revision",
    "license",
    "gated",
    "opt_in",
    "origin",
}


def test_sources_lists_every_plugin():
    result = invoke("sources")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "NAME", "KIND", "CONF", "UPSTREAM", "REVISION", "LICENSE", "FLAGS", "ORIGIN"
    ]  # fmt: skip
    assert [line.split()[0] for line in lines[1:]] == list(registry())


def test_sources_json_rows():
    rows = json.loads(invoke("sources", "--json").stdout)
    assert [r["name"] for r in rows] == list(registry())
    for row in rows:
        assert set(row) >= SOURCE_KEYS, row["name"]
        plugin = registry()[row["name"]]
        assert (row["kind"], row["confidence"], row["upstream"]) == (
            plugin.kind,
            plugin.confidence,
            plugin.hub,
        )
        assert (row["gated"], row["opt_in"], row["origin"]) == (
            plugin.gated,
            plugin.opt_in,
            plugin.origin,
        )
    assert {r["origin"] for r in rows if r["name"] in ("alpaca", "dpo", "text")} == {"built-in"}


@pytest.mark.parametrize("kind", ["sft", "dpo", "text"])
def test_sources_of_one_kind(kind):
    rows = json.loads(invoke("sources", "--json", "--kind", kind).stdout)
    assert [r["name"] for r in rows] == [n for n, p in registry().items() if p.kind == kind]
    assert rows
    lines = invoke("sources", "--kind", kind).stdout.splitlines()[1:]
    assert [line.split()[1] for line in lines] == [kind] * len(rows)


def test_sources_shows_flags(tmp_path, monkeypatch):
    install(monkeypatch, write_module(tmp_path, "rude_plugin", OPT_IN))
    install(monkeypatch, write_module(tmp_path, "gated_plugin", GATED))
    lines = {line.split()[0]: line for line in invoke("sources").stdout.splitlines()}
    assert " opt_in " in lines["rude_demo"]
    assert " gated " in lines["gated_demo"]
    assert lines["rude_demo"].endswith("under test")


# ---------------------------------------------------------------- composer new-source


@pytest.fixture
def checkout(tmp_path, monkeypatch) -> Path:
    """An empty composer checkout (sources/ and tests/), the current directory."""
    (tmp_path / "sources").mkdir()
    (tmp_path / "tests").mkdir()
    monkeypatch.chdir(tmp_path)
    return Path.cwd()


def run_generated_tests(test_file: Path, plugin: ModuleType, tmp_path: Path) -> int:
    """Run the scaffold's test functions against `plugin` loaded by path (it is not in the
    registry): its `convert_rows("NAME", ...)` calls get the module instead."""
    generated = load_module(test_file)
    generated.convert_rows = lambda name, rows, **kw: convert_rows(plugin, rows, **kw)
    tests = [f for n, f in vars(generated).items() if n.startswith("test_")]
    for i, test in enumerate(tests):
        folder = tmp_path / f"run{i}"
        folder.mkdir(parents=True)
        test(folder)
    return len(tests)


@pytest.mark.parametrize("kind", ["sft", "dpo", "text"])
def test_new_source_writes_a_plugin_and_a_test_that_passes(checkout, kind):
    result = invoke("new-source", "my_src", "--kind", kind)
    assert result.exit_code == 0, result.output
    plugin_file = checkout / "sources" / "my_src.py"
    test_file = checkout / "tests" / "test_source_my_src.py"
    assert result.stdout == f"wrote {plugin_file}\nwrote {test_file}\n"
    assert sorted(p.relative_to(checkout).as_posix() for p in checkout.rglob("*.py")) == [
        "sources/my_src.py",
        "tests/test_source_my_src.py",
    ]
    module = load_module(plugin_file)
    plugin = Plugin.from_module(module, "under test")
    assert (plugin.name, plugin.kind, plugin.license) == ("my_src", kind, "unknown")
    assert plugin.description.startswith("my_src: ")
    assert run_generated_tests(test_file, module, checkout / "runs") == 2


def test_new_source_rows_convert_to_the_records_the_scaffold_asserts(checkout):
    invoke("new-source", "my_sft")
    module = load_module(checkout / "sources" / "my_sft.py")
    rows = load_module(checkout / "tests" / "test_source_my_sft.py").ROWS
    converted = convert_rows(module, rows, folder=checkout)
    assert converted.records.column("conversations").to_pylist() == [
        [{"from": "human", "value": "Name a prime number."}, {"from": "gpt", "value": "7"}],
        [
            {"from": "system", "value": "Be brief."},
            {"from": "human", "value": "Say hi."},
            {"from": "gpt", "value": "Hi!"},
        ],
    ]
    assert [(r.where, r.reason) for r in converted.rejections] == [
        ("my_sft.jsonl:line 3", "missing value")
    ]


def test_new_source_text_takes_max_chunk_size(checkout):
    invoke("new-source", "my_text", "--kind", "text")
    module = load_module(checkout / "sources" / "my_text.py")
    assert Plugin.from_module(module, "under test").options == {"max_chunk_size": 2000}
    text = "First paragraph here.\n\nSecond paragraph here."
    converted = convert_rows(
        module, [{"text": text}], folder=checkout, options={"max_chunk_size": 25}
    )
    assert converted.records.num_rows == 2
    assert [json.loads(m)["row"] for m in converted.records.column("meta").to_pylist()] == [0, 0]


INVALID_NAME = (
    "invalid source name {!r}: use lower-case letters, digits and underscores, "
    "starting with a letter (it is a Python module name)"
)


@pytest.mark.parametrize("name", ["Bad-Name", "class", "9lives", "my-src", "_private", ""])
def test_new_source_refuses_an_invalid_name(checkout, name):
    assert_user_error(invoke("new-source", name), INVALID_NAME.format(name))
    assert not list(checkout.rglob("*.py"))


@pytest.mark.parametrize("name", ["alpaca", "sharegpt"])
def test_new_source_refuses_a_name_taken(checkout, name):
    assert_user_error(
        invoke("new-source", name), f"a source plugin named {name!r} exists already (built-in)"
    )
    assert not list(checkout.rglob("*.py"))


@pytest.mark.parametrize("existing", ["sources/my_src.py", "tests/test_source_my_src.py"])
def test_new_source_never_overwrites(checkout, existing):
    (checkout / existing).write_text("# mine\n", encoding="utf-8")
    assert_user_error(
        invoke("new-source", "my_src"), f"{checkout / existing} exists already; not overwriting it"
    )
    assert [p.relative_to(checkout).as_posix() for p in checkout.rglob("*.py")] == [existing]
    assert (checkout / existing).read_text(encoding="utf-8") == "# mine\n"


def test_new_source_needs_a_checkout_or_a_package(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_user_error(
        invoke("new-source", "my_src"),
        f"{Path.cwd()} has no sources/ folder: run this in a composer checkout, "
        "or give --package DIR for a plugin package of its own",
    )
    assert list(tmp_path.iterdir()) == []


def test_new_source_refuses_an_unknown_kind(checkout):
    result = invoke("new-source", "my_src", "--kind", "rlhf")
    assert result.exit_code == 2
    assert "Invalid value for '--kind'" in result.stderr
    assert not list(checkout.rglob("*.py"))


def test_new_source_package_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("new-source", "pk_demo", "--kind", "dpo", "--package", "pkg")
    assert result.exit_code == 0, result.output
    pkg = Path.cwd() / "pkg"
    assert sorted(p.relative_to(pkg).as_posix() for p in pkg.rglob("*") if p.is_file()) == [
        "README.md",
        "composer_source_pk_demo.py",
        "pyproject.toml",
        "tests/test_pk_demo.py",
    ]
    pyproject = (pkg / "pyproject.toml").read_text(encoding="utf-8")
    assert 'name = "composer-source-pk-demo"' in pyproject
    assert '[project.entry-points."composer.sources"]\npk_demo = "composer_source_pk_demo"' in (
        pyproject
    )
    module = load_module(pkg / "composer_source_pk_demo.py")
    assert run_generated_tests(pkg / "tests" / "test_pk_demo.py", module, tmp_path / "runs") == 2
    again = invoke("new-source", "pk_demo", "--package", "pkg")
    assert_user_error(again, f"{Path('pkg', 'pyproject.toml')} exists already; not overwriting it")


def composer_command(*args: str) -> list[str]:
    """`composer ARGS` with this interpreter (`python -m composer` has no __main__)."""
    return [sys.executable, "-c", "from composer.cli import cli; cli(prog_name='composer')", *args]


def normalized(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def test_a_scaffolded_package_installs_as_a_third_party_plugin(tmp_path, monkeypatch):
    # Slower than the rest (about 10 s): pip builds and installs the package, and composer
    # and pytest run in subprocesses, so that the plugin is found through its entry point.
    monkeypatch.chdir(tmp_path)
    assert invoke("new-source", "tp_demo", "--package", "pkg").exit_code == 0
    site = tmp_path / "site"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
         "--no-index", "--quiet", "--target", str(site), str(tmp_path / "pkg")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert pip.returncode == 0, pip.stderr
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH")) if p)

    def run(*cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path)

    listed = run(*composer_command("sources", "--json"))
    assert listed.returncode == 0, listed.stderr
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert rows["tp_demo"]["kind"] == "sft"
    assert normalized(rows["tp_demo"]["origin"]) == "composer-source-tp-demo"
    assert rows["alpaca"]["origin"] == "built-in"
    table = run(*composer_command("sources")).stdout.splitlines()
    assert any(line.split()[0] == "tp_demo" for line in table)

    tests = run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "pkg/tests")
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "2 passed" in tests.stdout

    write_jsonl(
        tmp_path / "rows.jsonl",
        [
            {"instruction": "Name a prime number.", "response": "7"},
            {"instruction": "Say hi.", "response": "Hi!"},
            {"instruction": "Spell cat.", "response": "c-a-t"},
        ],
    )
    manifest = write_manifest(tmp_path, [{"name": "tp_demo", "path": "rows.jsonl"}])
    built = run(*composer_command("build", str(manifest), "-o", "out", "-q"))
    assert built.returncode == 0, built.stderr
    records = pq.read_table(tmp_path / "out" / "records.parquet").to_pylist()
    assert [r["source"] for r in records] == ["tp_demo"] * 3
    assert {r["conversations"][0]["value"] for r in records} == {
        "Name a prime number.",
        "Say hi.",
        "Spell cat.",
    }


def test_per_input_derives_once_per_joined_input_not_per_batch():
    from composer.kit import per_input

    calls = []

    @per_input
    def words(joined: dict) -> set:
        calls.append(1)
        return set(joined["text"])

    first = {"text": ["a", "b"]}
    assert [words(first) for _ in range(3)] == [{"a", "b"}] * 3
    assert len(calls) == 1  # the same input with every batch: made once
    assert words({"text": ["c"]}) == {"c"} and len(calls) == 2  # another build's input
