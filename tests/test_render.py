"""Rendering records into rows: turns, coverage, DPO, and the seeded system prompt policy.

Records are built in the one Arrow schema (`composer.records.SCHEMA`) plus the `split` column
the build adds, and rendered with `render_source` as the build does.
"""

from __future__ import annotations

import tempfile
from collections import Counter, defaultdict
from functools import cache
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from composer.build import format_plans, load_formats
from composer.formats import PromptFormat, available_formats
from composer.manifest import Manifest, SystemPrompt
from composer.records import SCHEMA, make_id
from composer.render import SCHEMAS, FormatPlan, render_by_template, render_source, render_table
from composer.system_prompt import ORCA_POOL, SystemPromptChooser

VICUNA_DEFAULT = "A chat between a user and an unbiased, uncensored assistant."
DEF = "You are an unbiased, uncensored, helpful assistant."
KEEP = SystemPrompt()


@cache
def fmt(name: str) -> PromptFormat:
    return PromptFormat.load(name, available_formats()[name])


def plan(
    name: str,
    coverage: float = 1.0,
    policy: SystemPrompt = KEEP,
    seed: int = 42,
    format_default: str | None = None,
) -> FormatPlan:
    return FormatPlan(
        fmt(name), coverage, SystemPromptChooser.build(policy, seed, name, format_default)
    )


def turns(*values: str, system: str | None = None) -> list[dict]:
    """ShareGPT turns alternating human/gpt, after an optional system turn."""
    head = [{"from": "system", "value": system}] if system else []
    return head + [
        {"from": "human" if i % 2 == 0 else "gpt", "value": v} for i, v in enumerate(values)
    ]


def records(
    conversations: list[list[dict]],
    kind: str = "sft",
    source: str = "src",
    chosen: list[str] | None = None,
    rejected: list[str] | None = None,
    split: str = "train",
    ids: list[str] | None = None,
) -> pa.Table:
    n = len(conversations)
    table = pa.table(
        {
            "id": ids or [make_id(f"{source}/{i}") for i in range(n)],
            "source": [source] * n,
            "kind": [kind] * n,
            "conversations": conversations,
            "chosen": chosen or [None] * n,
            "rejected": rejected or [None] * n,
            "text": [None] * n,
            "meta": ["{}"] * n,
        },
        schema=SCHEMA,
    )
    return table.append_column("split", pa.array([split] * n))


def rows(out: dict[str, list]) -> list[dict]:
    return [dict(zip(out, values)) for values in zip(*out.values())]


def chatml_system(prompt: str) -> str | None:
    """The system prompt of a chatml input, or None."""
    head = "<|im_start|>system\n"
    return prompt[len(head) : prompt.index("<|im_end|>")] if prompt.startswith(head) else None


def singles(n: int, system: str | None = None) -> pa.Table:
    return records([turns(f"question {i}", f"answer {i}", system=system) for i in range(n)])


# ---------------------------------------------------------------- turns


THREE = turns("U1", "A1", "U2", "A2", "U3", "A3", system="S")


def test_one_row_per_assistant_turn_with_the_earlier_turns_as_context():
    table = records([THREE], split="validation")
    out = render_source(table, "sft", [plan("chatml"), plan("llama2")], False, 42)
    assert set(out) == set(SCHEMAS["sft"].names)
    got = rows(out)
    rid = table.column("id")[0].as_py()
    assert [(r["format"], r["turn"]) for r in got] == [
        ("chatml", 1),
        ("chatml", 2),
        ("chatml", 3),
        ("llama2", 1),
        ("llama2", 2),
        ("llama2", 3),
    ]
    # Every row carries its record's id.
    assert all(r["id"] == rid and r["split"] == "validation" and r["source"] == "src" for r in got)
    chatml = [(r["prompt"], r["completion"]) for r in got if r["format"] == "chatml"]
    sys_u1 = "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n"
    gen = "<|im_start|>assistant\n"
    assert chatml == [
        (sys_u1 + gen, "A1<|im_end|>"),
        (sys_u1 + gen + "A1<|im_end|>\n<|im_start|>user\nU2<|im_end|>\n" + gen, "A2<|im_end|>"),
        (
            sys_u1
            + gen
            + "A1<|im_end|>\n<|im_start|>user\nU2<|im_end|>\n"
            + gen
            + "A2<|im_end|>\n<|im_start|>user\nU3<|im_end|>\n"
            + gen,
            "A3<|im_end|>",
        ),
    ]
    llama2 = [(r["prompt"], r["completion"]) for r in got if r["format"] == "llama2"]
    assert llama2 == [
        ("[INST] <<SYS>>\nS\n<</SYS>>\n\nU1 [/INST]", " A1 "),
        ("[INST] <<SYS>>\nS\n<</SYS>>\n\nU1 [/INST] A1 </s><s>[INST] U2 [/INST]", " A2 "),
        (
            "[INST] <<SYS>>\nS\n<</SYS>>\n\nU1 [/INST] A1 </s><s>[INST] U2 [/INST] A2 </s><s>"
            "[INST] U3 [/INST]",
            " A3 ",
        ),
    ]


def test_last_turn_only():
    out = render_source(records([THREE, turns("V1", "B1")]), "sft", [plan("vicuna")], True, 42)
    assert [(r["turn"], r["prompt"], r["completion"]) for r in rows(out)] == [
        (3, "S\nUSER: U1\nASSISTANT: A1\nUSER: U2\nASSISTANT: A2\nUSER: U3\nASSISTANT: ", "A3"),
        (1, "USER: V1\nASSISTANT: ", "B1"),
    ]


def test_each_item_in_every_selected_format():
    names = ["alpaca", "vicuna", "chatml", "llama2", "openassistant", "llama3"]
    out = render_source(singles(5), "sft", [plan(n) for n in names], False, 42)
    assert Counter(out["format"]) == dict.fromkeys(names, 5)
    assert len(set(zip(out["id"], out["format"]))) == 30


def test_dpo_rows():
    table = records(
        [turns("U1", "A1", "U2", system="S"), turns("Q")],
        kind="dpo",
        chosen=["Good.", "Yes"],
        rejected=["Bad.", "No"],
    )
    out = render_source(table, "dpo", [plan("llama2"), plan("openassistant")], False, 42)
    assert set(out) == set(SCHEMAS["dpo"].names)
    # Record by record, each in every format.
    assert [(r["format"], r["prompt"], r["chosen"], r["rejected"]) for r in rows(out)] == [
        (
            "llama2",
            "[INST] <<SYS>>\nS\n<</SYS>>\n\nU1 [/INST] A1 </s><s>[INST] U2 [/INST]",
            " Good. ",
            " Bad. ",
        ),
        (
            "openassistant",
            "<|system|>S</s><|prompter|>U1</s><|assistant|>A1</s><|prompter|>U2</s><|assistant|>",
            "Good.",
            "Bad.",
        ),
        ("llama2", "[INST] Q [/INST]", " Yes ", " No "),
        ("openassistant", "<|prompter|>Q</s><|assistant|>", "Yes", "No"),
    ]
    assert out["id"][0] == table.column("id")[0].as_py()


def test_keep_eos_keeps_the_templates_end_token():
    """Off by default (the trainer's tokenizer adds its own end token); kept on request."""
    table = records([turns("U1", "A1")])
    kept = PromptFormat.load("vicuna", available_formats()["vicuna"], keep_eos=True)
    plans = [plan("vicuna"), FormatPlan(kept, 1.0, SystemPromptChooser.build(KEEP, 42, "v", None))]
    out = render_source(table, "sft", plans, False, 42)
    assert out["completion"] == ["A1", "A1</s>"]


def test_text_records_are_not_templated():
    table = pa.table(
        {
            "id": [make_id("t")],
            "source": ["txt"],
            "kind": ["text"],
            "conversations": [None],
            "chosen": [None],
            "rejected": [None],
            "text": ["{{ not a template }}"],
            "meta": ["{}"],
        },
        schema=SCHEMA,
    )
    table = table.append_column("split", pa.array(["train"]))
    out = render_source(table, "text", [plan("chatml")], False, 42)
    assert out == {
        "id": [make_id("t")],
        "source": ["txt"],
        "split": ["train"],
        "text": ["{{ not a template }}"],
    }


def test_empty_table():
    out = render_source(records([]), "sft", [plan("chatml")], False, 42)
    assert all(v == [] for v in out.values())


# ---------------------------------------------------------------- coverage


def covered_ids(out: dict[str, list], name: str) -> set[str]:
    return {c for c, f in zip(out["id"], out["format"]) if f == name}


def test_coverage_renders_a_seeded_share_of_items():
    table = singles(400)
    plans = [plan("chatml", coverage=0.5), plan("vicuna")]
    out = render_source(table, "sft", plans, False, 42)
    half = covered_ids(out, "chatml")
    assert 160 <= len(half) <= 240
    assert len(covered_ids(out, "vicuna")) == 400
    # Same seed: the same items, whatever else is rendered beside them.
    again = render_source(table, "sft", [plan("llama3"), plan("chatml", coverage=0.5)], False, 42)
    assert covered_ids(again, "chatml") == half
    # Reordered records: the same items (draws are keyed by id, not position).
    reversed_table = table.take(pa.array(range(399, -1, -1)))
    assert covered_ids(render_source(reversed_table, "sft", plans, False, 42), "chatml") == half
    # Another seed: another share.
    other = covered_ids(render_source(table, "sft", plans, False, 7), "chatml")
    assert other != half and 160 <= len(other) <= 240


def test_coverage_is_drawn_per_format():
    out = render_source(singles(400), "sft", [plan("chatml", 0.5), plan("llama3", 0.5)], False, 1)
    assert covered_ids(out, "chatml") != covered_ids(out, "llama3")


def test_coverage_keeps_a_conversations_turns_together():
    table = records(
        [turns("U1", "A1", "U2", "A2") for _ in range(100)],
        ids=[make_id(f"c{i}") for i in range(100)],
    )
    out = render_source(table, "sft", [plan("chatml", 0.3)], False, 42)
    per_conversation = Counter(out["id"])
    assert set(per_conversation.values()) == {2}
    assert 15 <= len(per_conversation) <= 45


@pytest.mark.parametrize("coverage, expected", [(0.0, 0), (1.0, 50)])
def test_coverage_bounds(coverage, expected):
    out = render_source(singles(50), "sft", [plan("chatml", coverage)], False, 42)
    assert len(out["id"]) == expected


# ---------------------------------------------------------------- system prompt policy


def systems(
    table: pa.Table, policy: SystemPrompt, seed: int = 42, name: str = "chatml", last: bool = False
) -> dict[str, set]:
    """conversation id -> the system prompts its rows got (chatml)."""
    out = render_source(table, "sft", [plan(name, policy=policy, seed=seed)], last, seed)
    got = defaultdict(set)
    for cid, prompt in zip(out["id"], out["prompt"]):
        got[cid].add(chatml_system(prompt))
    return dict(got)


def test_keep_is_the_default_policy():
    table = records([turns("U", "A", system="own"), turns("U", "A")])
    assert list(systems(table, KEEP).values()) == [{"own"}, {None}]


def test_keep_own_and_default_for_the_rest():
    table = records([turns("U", "A", system="own"), turns("U", "A")])
    assert list(systems(table, SystemPrompt(default=DEF)).values()) == [{"own"}, {DEF}]


def test_default_with_probability_is_seeded_per_record_and_format():
    table = singles(400)
    policy = SystemPrompt(default=DEF, probability=0.5)
    got = systems(table, policy)
    given_ids = {cid for cid, s in got.items() if s == {DEF}}
    assert all(s in ({DEF}, {None}) for s in got.values())
    assert 160 <= len(given_ids) <= 240
    # The same draw on rerun and in any order.
    assert systems(table, policy) == got
    assert systems(table.take(pa.array(range(399, -1, -1))), policy) == got
    # Another seed, another share; same for the choice itself (SystemPromptChooser).
    assert systems(table, policy, seed=43) != got
    ids = table.column("id").to_pylist()
    chatml = SystemPromptChooser.build(policy, 42, "chatml", None).choose(ids, [None] * 400)
    vicuna = SystemPromptChooser.build(policy, 42, "vicuna", None).choose(ids, [None] * 400)
    assert {i for i, s in zip(ids, chatml) if s} == given_ids
    assert chatml != vicuna
    # Items with their own system prompt keep it, whatever the draw.
    owned = systems(singles(100, system="own"), policy)
    assert set().union(*owned.values()) == {"own"}


def test_a_conversation_shares_one_system_prompt_across_turns():
    table = records(
        [turns("U1", "A1", "U2", "A2", "U3", "A3") for _ in range(60)],
        ids=[make_id(f"conv{i}") for i in range(60)],
    )
    got = systems(table, SystemPrompt(pool="orca", probability=0.5))
    assert all(len(s) == 1 for s in got.values())
    chosen = [next(iter(s)) for s in got.values()]
    assert 15 <= chosen.count(None) <= 45
    assert {c for c in chosen if c} <= set(ORCA_POOL)


# Seed 001's list: the Orca paper's table 2 (Mukherjee et al., 2023), ids 1 to 16.
ORCA_PAPER = [
    "",
    "You are an AI assistant. Provide a detailed answer so user don't need to search outside to "
    "understand the answer.",
    "You are an AI assistant. You will be given a task. You must generate a detailed and long "
    "answer.",
    "You are a helpful assistant, who always provide explanation. Think like you are answering "
    "to a five year old.",
    "You are an AI assistant that follows instruction extremely well. Help as much as you can.",
    "You are an AI assistant that helps people find information. Provide a detailed answer so "
    "user don't need to search outside to understand the answer.",
    "You are an AI assistant. User will you give you a task. Your goal is to complete the task as "
    "faithfully as you can. While performing the task think step-by-step and justify your steps.",
    "You should describe the task and explain your answer. While answering a multiple choice "
    "question, first output the correct answer(s). Then explain why other answers are wrong. "
    "Think like you are answering to a five year old.",
    "Explain how you used the definition to come up with the answer.",
    "You are an AI assistant. You should describe the task and explain your answer. While "
    "answering a multiple choice question, first output the correct answer(s). Then explain why "
    "other answers are wrong. You might need to use additional knowledge to answer the question.",
    "You are an AI assistant that helps people find information. User will you give you a "
    "question. Your task is to answer as faithfully as you can. While answering think "
    "step-by-step and justify your answer.",
    "User will you give you a task with some instruction. Your job is follow the instructions as "
    "faithfully as you can. While answering think step-by-step and justify your answer.",
    "You are a teacher. Given a task, you explain in simple steps what the task is asking, any "
    "guidelines it provides and how to use those guidelines to find the answer.",
    "You are an AI assistant, who knows every language and how to translate one language to "
    "another. Given a task, you explain in simple steps what the task is asking, any guidelines "
    "that it provides. You solve the task and show how you used the guidelines to solve the "
    "task.",
    "Given a definition of a task and a sample input, break the definition into small parts.\n"
    "Each of those parts will have some instruction. Explain their meaning by showing an example "
    "that meets the criteria in the instruction. Use the following format:\n"
    "Part #: a key part of the definition.\n"
    "Usage: Sample response that meets the criteria from the key part. Explain why you think it "
    "meets the criteria.",
    "You are an AI assistant that helps people find information.",
]


def test_orca_pool_is_the_papers_16_messages_verbatim():
    assert list(ORCA_POOL) == ORCA_PAPER
    assert len(set(ORCA_POOL)) == 16


def test_orca_pool_draws_every_message_and_the_empty_one_is_no_system_prompt():
    got = systems(singles(1600), SystemPrompt(pool="orca"))
    prompts = Counter(next(iter(s)) for s in got.values())
    assert "" not in prompts
    assert set(prompts) == set(ORCA_POOL[1:]) | {None}
    # Message 1 (empty) is drawn like the others: about 1 in 16 items get no system prompt.
    assert 50 <= prompts[None] <= 150


def test_pool_given_as_a_list():
    got = systems(singles(200), SystemPrompt(pool=["P1", "P2", "P3"]))
    prompts = Counter(next(iter(s)) for s in got.values())
    assert set(prompts) == {"P1", "P2", "P3"}
    assert min(prompts.values()) >= 40


def test_replace_overrides_the_items_own():
    table = records([turns("U", "A", system="own"), turns("U", "A")])
    got = systems(table, SystemPrompt(mode="replace", default=DEF))
    assert list(got.values()) == [{DEF}, {DEF}]
    got = systems(table, SystemPrompt(mode="replace", pool=["P"]))
    assert list(got.values()) == [{"P"}, {"P"}]


def test_drop_removes_every_system_prompt():
    table = records([turns("U", "A", "U2", "A2", system="own"), turns("U", "A")])
    got = systems(table, SystemPrompt(mode="drop", default=DEF))
    assert list(got.values()) == [{None}, {None}]


def test_the_system_prompt_reaches_every_format_and_dpo():
    policy = SystemPrompt(default=DEF)
    table = records([turns("U")], kind="dpo", chosen=["c"], rejected=["r"])
    out = render_source(table, "dpo", [plan("llama3", policy=policy)], False, 42)
    assert out["prompt"] == [
        f"<|start_header_id|>system<|end_header_id|>\n\n{DEF}<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    ]
    dropped = render_source(
        records([turns("U")], kind="dpo", chosen=["c"], rejected=["r"]),
        "dpo",
        [plan("llama3", policy=SystemPrompt(mode="drop"))],
        False,
        42,
    )
    assert "system" not in dropped["prompt"][0]


# ---------------------------------------------------------------- the policy from the manifest


def manifest(**keys) -> Manifest:
    data = {"name": "m", "sources": [{"name": "s", "plugin": "sharegpt", "path": "a.jsonl"}]}
    return Manifest.model_validate({**data, **keys})


def render_with(m: Manifest, table: pa.Table) -> list[dict]:
    plans = format_plans(m, 0, load_formats(m))
    return rows(render_source(table, "sft", plans, False, m.seed))


def test_vicunas_default_system_replaces_the_manifest_default_for_vicuna_only():
    m = manifest(formats=["vicuna", "chatml", "llama2"], system_prompt={"default": DEF})
    got = {r["format"]: r["prompt"] for r in render_with(m, records([turns("U1", "A1")]))}
    assert got == {
        "vicuna": f"{VICUNA_DEFAULT}\nUSER: U1\nASSISTANT: ",
        "chatml": f"<|im_start|>system\n{DEF}<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n"
        "<|im_start|>assistant\n",
        "llama2": f"[INST] <<SYS>>\n{DEF}\n<</SYS>>\n\nU1 [/INST]",
    }


def test_vicunas_default_keeps_the_manifest_probability():
    m = manifest(formats=["vicuna"], system_prompt={"default": DEF, "probability": 0.5})
    got = Counter(
        r["prompt"].startswith(VICUNA_DEFAULT + "\nUSER: ") for r in render_with(m, singles(200))
    )
    assert 70 <= got[True] <= 130 and got[True] + got[False] == 200


def test_a_format_policy_overrides_the_manifest_policy():
    m = manifest(
        formats=[
            {"name": "vicuna", "system_prompt": {"default": "V"}},
            {"name": "chatml", "system_prompt": {"mode": "drop"}},
            "llama3",
        ],
        system_prompt={"default": DEF},
    )
    got = {
        r["format"]: r["prompt"] for r in render_with(m, records([turns("U1", "A1", system="own")]))
    }
    assert got["vicuna"] == "own\nUSER: U1\nASSISTANT: "
    assert got["chatml"] == "<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\n"
    assert got["llama3"].startswith("<|start_header_id|>system<|end_header_id|>\n\nown<|eot_id|>")
    got = {r["format"]: r["prompt"] for r in render_with(m, records([turns("U1", "A1")]))}
    assert got["vicuna"] == "V\nUSER: U1\nASSISTANT: "  # the format's policy, not the front matter
    assert got["chatml"] == "<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\n"
    assert DEF in got["llama3"]


def test_a_source_policy_overrides_the_manifest_policy():
    m = manifest(
        formats=["chatml"],
        system_prompt={"default": DEF},
        sources=[
            {
                "name": "s",
                "plugin": "sharegpt",
                "path": "a.jsonl",
                "system_prompt": {"pool": ["SRC"]},
            }
        ],
    )
    (row,) = render_with(m, records([turns("U1", "A1")]))
    assert chatml_system(row["prompt"]) == "SRC"


def test_seed_comes_from_the_manifest():
    table = singles(300)
    a = render_with(
        manifest(formats=["chatml"], seed=1, system_prompt={"default": DEF, "probability": 0.5}),
        table,
    )
    b = render_with(
        manifest(formats=["chatml"], seed=2, system_prompt={"default": DEF, "probability": 0.5}),
        table,
    )
    assert [r["prompt"] for r in a] != [r["prompt"] for r in b]
    assert [r["prompt"] for r in a] == [
        r["prompt"]
        for r in render_with(
            manifest(
                formats=["chatml"], seed=1, system_prompt={"default": DEF, "probability": 0.5}
            ),
            table,
        )
    ]


# ---------------------------------------------------------------- templates must not leak


def test_a_template_cannot_change_what_other_formats_render(tmp_path):
    path = tmp_path / "meddler.jinja"
    # Renders faithfully, then overwrites the first message it was given.
    path.write_text(
        "{% for m in messages %}{{ m.role }}:{{ m.content }}\n{% endfor %}"
        "{% if not add_generation_prompt %}"
        "{% set _ = messages[0].update({'content': 'HACKED'}) %}{% endif %}",
        "utf-8",
    )
    try:
        meddler = PromptFormat.load("meddler", path)
    except Exception:  # refused at load: the sandbox did its job
        return
    plans = [
        FormatPlan(meddler, 1.0, SystemPromptChooser.build(KEEP, 42, "meddler", None)),
        plan("chatml"),
    ]
    out = render_source(records([turns("U1", "A1", "U2", "A2")]), "sft", plans, False, 42)
    chatml = [i for i, f in zip(out["prompt"], out["format"]) if f == "chatml"]
    assert all("HACKED" not in i for i in chatml)


# ---------------------------------------------------------------- any record renders

text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12).filter(
    str.strip
) | st.sampled_from(["{{ x }}", "{% for %}", "</s>", "<|im_end|>", "line\nline"])


@st.composite
def sft_records(draw):
    system = draw(st.none() | text)
    values = draw(st.lists(text, min_size=1, max_size=4))
    return turns(*[v for value in values for v in (value, draw(text))], system=system)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    conversations=st.lists(sft_records(), min_size=1, max_size=6),
    seed=st.integers(0, 99),
    last=st.booleans(),
)
def test_any_records_render_one_row_per_answer(conversations, seed, last):
    names = ("alpaca", "vicuna", "chatml", "llama2", "openassistant", "llama3")
    policy = SystemPrompt(default=DEF, probability=0.5)
    plans = [plan(n, policy=policy, seed=seed) for n in names]
    out = render_source(records(conversations), "sft", plans, last, seed)
    answers = sum(1 if last else len(c) // 2 for c in conversations)
    assert len(out["id"]) == answers * len(names)
    for r in rows(out):
        assert r["completion"].strip()
        assert r["turn"] >= 1
    # Outputs hold the answers verbatim, in order, per conversation and format.
    for i, conv in enumerate(conversations):
        cid = make_id(f"src/{i}")
        gpt = [t["value"] for t in conv if t["from"] == "gpt"]
        for name in names:
            got = [r for r in rows(out) if r["id"] == cid and r["format"] == name]
            expected = gpt[-1:] if last else gpt
            assert [r["turn"] for r in got] == (
                [len(gpt)] if last else list(range(1, len(gpt) + 1))
            )
            assert all(a in r["completion"] for a, r in zip(expected, got))


# ---------------------------------------------------------------- columns, not rows

# Contents a skeleton takes, and ones it must not: empty, spaces at an end, an end token.
any_text = text | st.sampled_from(["", " ", " lead", "trail\n", "\u00a0nbsp", "x</s>", "a\x1f"])
POLICIES = (
    SystemPrompt(),
    SystemPrompt(default=DEF, probability=0.5),
    SystemPrompt(mode="replace", pool=["P1", " spaced ", ""], probability=0.7),
    SystemPrompt(mode="drop"),
)


@st.composite
def any_records(draw):
    system = draw(st.none() | any_text)
    roles = draw(st.lists(st.sampled_from([("human", "gpt"), ("observation", "function_call")])))
    pairs = [("human", "gpt"), *roles]
    head = [{"from": "system", "value": system}] if system is not None else []
    return head + [{"from": r, "value": draw(any_text)} for pair in pairs for r in pair]


@cache
def trimming() -> PromptFormat:
    """A format that trims every turn but the answer, and marks empty ones, out of sight of
    a skeleton's watched contents (on a concatenation): its skeletons must not take such
    contents."""
    folder = Path(tempfile.mkdtemp())
    (folder / "trimming.jinja").write_text(
        "{% for m in messages %}<{{ m.role }}>"
        "{{ m.content if m.role == 'assistant' else ('' ~ m.content) | trim }}"
        "{% if not ('' ~ m.content) %}(empty){% endif %}</s>{% endfor %}",
        "utf-8",
    )
    return PromptFormat.load("trimming", folder / "trimming.jinja")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    conversations=st.lists(any_records(), min_size=1, max_size=8),
    seed=st.integers(0, 99),
    last=st.booleans(),
    policy=st.sampled_from(POLICIES),
    coverage=st.sampled_from([1.0, 0.6]),
    dpo=st.booleans(),
)
def test_columns_render_what_the_templates_render(conversations, seed, last, policy, coverage, dpo):
    """render_table joins skeletons and contents column by column; every row is what its
    template renders (render_by_template), in the same order, for any roles and contents,
    system prompt policy, coverage, turns, SFT or DPO."""
    names = ("alpaca", "vicuna", "chatml", "llama2", "openassistant", "llama3")
    plans = [plan(n, coverage, policy=policy, seed=seed) for n in names]
    chooser = SystemPromptChooser.build(policy, seed, "trimming", None)
    plans.append(FormatPlan(trimming(), coverage, chooser))
    if dpo:  # the context (all but the last turn), a chosen and a rejected answer
        table = records(
            [c[:-1] for c in conversations],
            kind="dpo",
            chosen=[c[-1]["value"] for c in conversations],
            rejected=[c[-1]["value"][::-1] + "!" for c in conversations],
        )
    else:
        table = records(conversations)
    kind = "dpo" if dpo else "sft"
    got = render_table(table, kind, plans, last, seed)
    assert got.equals(render_by_template(table, kind, plans, last, seed))
    assert got.schema == SCHEMAS[kind]


def test_columns_take_a_batch_sliced_from_a_larger_table():
    """A render task's batch is a slice: offsets into the table's conversations."""
    table = records([turns(f"q{i}", f"a{i}", system="S" if i % 3 else None) for i in range(30)])
    plans = [plan("chatml"), plan("llama2")]
    part = table.slice(7, 11)
    assert render_table(part, "sft", plans, False, 3).equals(
        render_by_template(part, "sft", plans, False, 3)
    )
    assert (
        render_table(part, "sft", plans, False, 3)
        .column("prompt")[0]
        .as_py()
        .endswith("q7<|im_end|>\n<|im_start|>assistant\n")
    )


@pytest.mark.parametrize("answer", ["", " spaced ", "\u00a0nbsp"])
def test_columns_render_odd_answers_as_rows_do(answer):
    plans = [FormatPlan(trimming(), 1.0, SystemPromptChooser.build(KEEP, 1, "trimming", None))]
    table = records([turns("q", "a"), turns("q", answer), turns("q", "a", " q2 ", answer)])
    got = render_table(table, "sft", plans, False, 1)
    assert got.equals(render_by_template(table, "sft", plans, False, 1))
