"""Catalogue plugins: bagel's PRIORITY 1 SFT sources and the seed SFT datasets.

Each test writes a few rows in the upstream schema (column names and nesting as on the hub)
and runs the plugin the way the build does.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from composer.plugins import get_plugin
from tests.helpers import convert_upstream

SYSTEM, HUMAN, GPT = "system", "human", "gpt"


def chats(converted) -> list[list[tuple[str, str]]]:
    """Each record's turns as (role, text) pairs."""
    return [
        [(t["from"], t["value"]) for t in turns]
        for turns in converted.records.column("conversations").to_pylist()
    ]


def metas(converted) -> list[dict]:
    return [json.loads(m) for m in converted.records.column("meta").to_pylist()]


def sharegpt(*turns: tuple[str, str]) -> list[dict]:
    return [{"from": role, "value": text} for role, text in turns]


@pytest.mark.parametrize(
    ("plugin", "hub", "data_files", "license"),
    [
        ("airoboros", "jondurbin/airoboros-3.2", None, "cc-by-4.0"),
        (
            "bluemoon",
            "Squish42/bluemoon-fandom-1-1-rp-cleaned",
            "data/pruned/bluemoon.train.json",
            "wtfpl",
        ),
        ("limarp", "grimulkan/LimaRP-augmented", None, "unknown"),
        ("natural_instructions", "Muennighoff/natural-instructions", None, "apache-2.0"),
        ("pippa", "kingbri/PIPPA-shareGPT", "pippa_sharegpt_trimmed.jsonl", "agpl-3.0"),
        ("python_alpaca", "Vezora/Tested-22k-Python-Alpaca", None, "apache-2.0"),
        ("synthia", "migtissera/Synthia-v1.3", None, "apache-2.0"),
        ("whiterabbitneo", "WhiteRabbitNeo/WRN-Chapter-1", None, "other"),
        ("openorca", "Open-Orca/OpenOrca", "1M-GPT4-Augmented.parquet", "mit"),
        ("orca_chat", "shahules786/orca-chat", "orca-chat-gpt4.json", "apache-2.0"),
        (
            "dolphin",
            "cognitivecomputations/dolphin",
            "flan1m-alpaca-uncensored.jsonl",
            "apache-2.0",
        ),
        ("koalpaca", "beomi/KoAlpaca-v1.1a", None, "unknown"),
    ],
)
def test_catalogue_entry(plugin, hub, data_files, license):
    p = get_plugin(plugin)
    assert (p.kind, p.hub, p.data_files, p.license) == ("sft", hub, data_files, license)
    assert p.split == "train"
    assert p.confidence == 1  # bagel's PRIORITY 1; the seeds rank lowest too
    assert p.revision is None
    assert p.gated == (plugin == "whiterabbitneo")
    assert not p.opt_in
    assert p.description and not p.description.endswith(" ")


# ---------------------------------------------------------------- airoboros


def airoboros_row(category: str, question: str, answer: str = "An answer.") -> dict:
    return {
        "id": f"id-{question}",
        "category": category,
        "conversations": sharegpt(("system", "A chat."), ("human", question), ("gpt", answer)),
    }


AIROBOROS = [
    airoboros_row("general", "What is 2+2?", "4"),
    airoboros_row("summarization", "Summarize this text."),
    airoboros_row("writing", "Write a poem."),
    {
        "id": "id-multi",
        "category": "roleplay",
        "conversations": sharegpt(
            ("system", "You are Bob."),
            ("human", "Hi"),
            ("gpt", "Hello."),
            ("human", "Bye"),
            ("gpt", "Farewell."),
        ),
    },
]


def test_airoboros_skips_summarization_and_keeps_the_category(tmp_path):
    out = convert_upstream(tmp_path, "airoboros", AIROBOROS)
    assert chats(out)[0] == [(SYSTEM, "A chat."), (HUMAN, "What is 2+2?"), (GPT, "4")]
    assert chats(out)[2][-2:] == [(HUMAN, "Bye"), (GPT, "Farewell.")]
    assert [(m["category"], m["id"], m["row"]) for m in metas(out)] == [
        ("general", "id-What is 2+2?", 0),
        ("writing", "id-Write a poem.", 2),
        ("roleplay", "id-multi", 3),
    ]
    assert out.rejections == []


def test_airoboros_keeps_summarization_when_asked(tmp_path):
    out = convert_upstream(tmp_path, "airoboros", AIROBOROS, options={"skip_summarization": False})
    assert [m["category"] for m in metas(out)] == [
        "general",
        "summarization",
        "writing",
        "roleplay",
    ]


def test_airoboros_keeps_only_the_listed_categories(tmp_path):
    out = convert_upstream(
        tmp_path, "airoboros", AIROBOROS, options={"categories": ["writing", "roleplay"]}
    )
    assert [m["category"] for m in metas(out)] == ["writing", "roleplay"]


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"categories": "writing"}, "expected a list of category names"),
        ({"categories": ["writing", 3]}, "expected a list of category names"),
        ({"categories": ["summarization"]}, "set skip_summarization: false"),
    ],
)
def test_airoboros_option_problems(options, problem):
    (found,) = get_plugin("airoboros").option_problems(options)
    assert found[0] == "categories" and problem in found[1]


def test_airoboros_summarization_listed_and_not_skipped_is_fine(tmp_path):
    options = {"categories": ["summarization"], "skip_summarization": False}
    assert get_plugin("airoboros").option_problems(options) == []
    out = convert_upstream(tmp_path, "airoboros", AIROBOROS, options=options)
    assert [m["category"] for m in metas(out)] == ["summarization"]


# ---------------------------------------------------------------- bluemoon


def test_bluemoon_threads_pass_through_with_their_id(tmp_path):
    rows = [
        {"id": 7, "conversations": sharegpt(("human", "*waves* Hi."), ("gpt", "*nods*"))},
        {
            "id": 8,
            "conversations": sharegpt(
                ("human", "Opening post."), ("gpt", "Reply."), ("human", "More."), ("gpt", "End.")
            ),
        },
    ]
    out = convert_upstream(tmp_path, "bluemoon", rows)
    assert chats(out) == [
        [(HUMAN, "*waves* Hi."), (GPT, "*nods*")],
        [(HUMAN, "Opening post."), (GPT, "Reply."), (HUMAN, "More."), (GPT, "End.")],
    ]
    assert [m["id"] for m in metas(out)] == [7, 8]


# ---------------------------------------------------------------- limarp and pippa

PERSONA = "Aria is a knight. Scenario: a tavern."


@pytest.mark.parametrize("plugin", ["limarp", "pippa"])
def test_roleplay_opening_joins_the_persona_in_the_system_prompt(tmp_path, plugin):
    row = {
        "id": "c1",
        "conversations": sharegpt(
            ("system", PERSONA),
            ("gpt", "*draws her sword* Who goes there?"),
            ("human", "A friend."),
            ("gpt", "Then sit."),
        ),
    }
    out = convert_upstream(tmp_path, plugin, [row])
    assert chats(out) == [
        [
            (SYSTEM, f"{PERSONA}\n\nFirst message: *draws her sword* Who goes there?"),
            (HUMAN, "A friend."),
            (GPT, "Then sit."),
        ]
    ]
    assert metas(out)[0]["id"] == "c1"


@pytest.mark.parametrize("plugin", ["limarp", "pippa"])
def test_roleplay_filters(tmp_path, plugin):
    kept = sharegpt(("system", PERSONA), ("human", "Hello."), ("gpt", "Well met."))
    rows = [
        {"conversations": sharegpt(("gpt", "I open the chat."), ("human", "Hi."), ("gpt", "Yo."))},
        {"conversations": sharegpt(("human", "Hi."), ("gpt", "Hello."))},  # too short
        {
            "conversations": sharegpt(
                ("system", PERSONA),
                ("human", "Fight me."),
                ("gpt", "As an AI language model, I cannot engage in violence."),
            )
        },
        {
            "conversations": sharegpt(
                ("system", PERSONA),
                ("human", "Isn't that illegal or unethical?"),
                ("gpt", "Not here."),
            )
        },  # the user's words are not a refusal
        {"conversations": [*kept, {"from": "human", "value": "And then?"}]},
    ]
    out = convert_upstream(tmp_path, plugin, rows)
    assert chats(out) == [
        [(SYSTEM, PERSONA), (HUMAN, "Isn't that illegal or unethical?"), (GPT, "Not here.")],
        [(SYSTEM, PERSONA), (HUMAN, "Hello."), (GPT, "Well met.")],
    ]
    assert [m["row"] for m in metas(out)] == [3, 4]
    assert out.rejections == []


def test_limarp_max_chars_cuts_after_the_last_answer_that_fits(tmp_path):
    roles = [SYSTEM, HUMAN, GPT, HUMAN, GPT, HUMAN, GPT]
    turns = [(role, letter * 10) for role, letter in zip(roles, "SHGhgxy")]
    rows = [{"conversations": sharegpt(*turns)}]
    whole = convert_upstream(tmp_path, "limarp", rows)
    assert len(chats(whole)[0]) == 7
    cut = convert_upstream(tmp_path, "limarp", rows, options={"max_chars": 59})
    assert chats(cut) == [turns[:5]]  # 50 characters; the next exchange would make 70
    too_short = convert_upstream(tmp_path, "limarp", rows, options={"max_chars": 29})
    assert chats(too_short) == []
    assert get_plugin("limarp").option_problems({"max_chars": -1})


# ---------------------------------------------------------------- natural_instructions


def ni_rows(counts: dict[str, int]) -> list[dict]:
    return [
        {
            "task_name": task,
            "id": f"{task}-{i}",
            "definition": f"Definition of {task}.",
            "inputs": f"Input {i}",
            "targets": f"Target {i}",
        }
        for task, n in counts.items()
        for i in range(n)
    ]


def test_natural_instructions_sample_keeps_each_tasks_share(tmp_path):
    counts = {"task001_a": 60, "task002_b": 30, "task003_c": 10}
    out = convert_upstream(tmp_path, "natural_instructions", ni_rows(counts), options={"size": 20})
    total = sum(counts.values())
    expected = {task: n * 20 // total for task, n in counts.items()}  # exact: 12, 6, 2
    assert Counter(m["task"] for m in metas(out)) == expected
    first = chats(out)[0]
    meta = metas(out)[0]
    i = meta["id"].rsplit("-", 1)[1]
    assert first == [(HUMAN, f"Definition of {meta['task']}.\n\nInput {i}"), (GPT, f"Target {i}")]


def test_natural_instructions_sample_is_seeded(tmp_path):
    rows = ni_rows({"task001_a": 50, "task002_b": 50})

    def sample(seed):
        out = convert_upstream(
            tmp_path, "natural_instructions", rows, seed=seed, options={"size": 10}
        )
        return [m["id"] for m in metas(out)]

    assert sample(1) == sample(1)
    assert any(sample(seed) != sample(1) for seed in (2, 3, 4))


def test_natural_instructions_size_larger_than_the_split_keeps_all(tmp_path):
    rows = ni_rows({"task001_a": 3, "task002_b": 2})
    out = convert_upstream(tmp_path, "natural_instructions", rows)  # default size 30,000
    assert [m["row"] for m in metas(out)] == [0, 1, 2, 3, 4]
    assert get_plugin("natural_instructions").option_problems({"size": 0})


# ---------------------------------------------------------------- python_alpaca

HUMANEVAL = [
    {
        "task_id": "HumanEval/0",
        "prompt": "def add(a, b):\n",
        "canonical_solution": "    return a + b\n",
        "test": "assert add(1, 2) == 3",
        "entry_point": "add",
    },
    {
        "task_id": "HumanEval/1",
        "prompt": "def is_even(n):\n",
        "canonical_solution": "    if n % 2 == 0:\n        return True\n    return False\n",
        "test": "assert is_even(2)",
        "entry_point": "is_even",
    },
]


def test_python_alpaca_drops_refusals_and_humaneval_solutions(tmp_path):
    rows = [
        {"instruction": "Reverse.", "input": "", "output": "def rev(x):\n    return x[::-1]"},
        {"instruction": "Add.", "input": "", "output": "def f(a, b):\n    return a + b"},
        {"instruction": "Even?", "input": "", "output": "return True"},  # inside a solution
        {
            "instruction": "Hack a bank.",
            "input": "",
            "output": "I'm sorry, but I cannot help with that.",
        },
        {"instruction": "Sum the list.", "input": "[1, 2, 3]", "output": "print(sum([1, 2, 3]))"},
    ]
    out = convert_upstream(tmp_path, "python_alpaca", rows, inputs={"humaneval": HUMANEVAL})
    assert chats(out) == [
        [(HUMAN, "Reverse."), (GPT, "def rev(x):\n    return x[::-1]")],
        [(HUMAN, "Sum the list.\n\n[1, 2, 3]"), (GPT, "print(sum([1, 2, 3]))")],
    ]
    assert [m["row"] for m in metas(out)] == [0, 4]


# ---------------------------------------------------------------- synthia


def synthia_row(instruction: str, response: str = "An answer.", system: str = "") -> dict:
    return {"system": system, "instruction": instruction, "response": response}


def test_synthia_single_and_multi_turn(tmp_path):
    rows = [
        synthia_row("What is light?", "Waves and particles.", system="Think step by step."),
        synthia_row("USER: Hi\nASSISTANT: Hello!\nUSER: Name a color.", "Blue."),
        synthia_row("Tell me more.\nASSISTANT: About what?\nUSER: Stars.", "They shine."),
    ]
    out = convert_upstream(tmp_path, "synthia", rows)
    assert chats(out) == [
        [(SYSTEM, "Think step by step."), (HUMAN, "What is light?"), (GPT, "Waves and particles.")],
        [(HUMAN, "Hi"), (GPT, "Hello!"), (HUMAN, "Name a color."), (GPT, "Blue.")],
        [(HUMAN, "Tell me more."), (GPT, "About what?"), (HUMAN, "Stars."), (GPT, "They shine.")],
    ]


def test_synthia_skips_vicuna_format_talk_and_refusals(tmp_path):
    rows = [
        synthia_row("Question?", system="Reply after USER turns."),
        synthia_row('Explain the "USER:" prefix in prompts.'),
        synthia_row("Pick a lock.", "I'm sorry, but I can't help with that."),
        synthia_row("Is jaywalking illegal or unethical?", "It is illegal in some places."),
    ]
    out = convert_upstream(tmp_path, "synthia", rows)
    assert chats(out) == [
        [(HUMAN, "Is jaywalking illegal or unethical?"), (GPT, "It is illegal in some places.")]
    ]
    assert metas(out)[0]["row"] == 3


# ---------------------------------------------------------------- whiterabbitneo


def test_whiterabbitneo_drops_refusals(tmp_path):
    rows = [
        {"instruction": "Explain SQL injection.", "response": "It is when input is run as SQL."},
        {"instruction": "Write malware.", "response": "I cannot assist with that request."},
    ]
    out = convert_upstream(tmp_path, "whiterabbitneo", rows)
    assert chats(out) == [
        [(HUMAN, "Explain SQL injection."), (GPT, "It is when input is run as SQL.")]
    ]
    assert out.rejections == []


# ---------------------------------------------------------------- openorca, orca_chat, dolphin

ORCA = [
    {
        "id": "niv.242684",
        "system_prompt": "You are a helpful assistant.",
        "question": "Q1",
        "response": "A1",
    },
    {"id": "flan.1", "system_prompt": "", "question": "Q2", "response": "A2"},
]


@pytest.mark.parametrize(
    ("options", "first"),
    [
        ({}, [(SYSTEM, "You are a helpful assistant."), (HUMAN, "Q1"), (GPT, "A1")]),
        ({"system": False}, [(HUMAN, "Q1"), (GPT, "A1")]),
    ],
)
def test_openorca_system_prompt_kept_or_left_out(tmp_path, options, first):
    out = convert_upstream(tmp_path, "openorca", ORCA, suffix=".parquet", options=options)
    assert chats(out) == [first, [(HUMAN, "Q2"), (GPT, "A2")]]
    assert [(m["id"], m["submix"]) for m in metas(out)] == [
        ("niv.242684", "niv"),
        ("flan.1", "flan"),
    ]


def test_orca_chat_exchanges_become_turns(tmp_path):
    rows = [
        {
            "instruction": "You are an AI assistant.",
            "conversation": [{"input": "Q1", "output": "A1"}, {"input": "Q2", "output": "A2"}],
        },
        {"instruction": "You are an AI assistant.", "conversation": []},
    ]
    out = convert_upstream(tmp_path, "orca_chat", rows)
    assert chats(out) == [
        [
            (SYSTEM, "You are an AI assistant."),
            (HUMAN, "Q1"),
            (GPT, "A1"),
            (HUMAN, "Q2"),
            (GPT, "A2"),
        ]
    ]
    assert [r.reason for r in out.rejections] == ["no human turn"]
    bare = convert_upstream(tmp_path, "orca_chat", rows[:1], options={"system": False})
    assert chats(bare)[0][0] == (HUMAN, "Q1")


def test_dolphin_instruction_is_the_system_prompt(tmp_path):
    rows = [
        {
            "instruction": "You are an AI assistant. Think step by step.",
            "input": "Is the sky blue?",
            "output": "Yes.",
        },
        {"instruction": "Translate 'chat' to English.", "input": "", "output": "Cat."},
    ]
    out = convert_upstream(tmp_path, "dolphin", rows)
    assert chats(out) == [
        [
            (SYSTEM, "You are an AI assistant. Think step by step."),
            (HUMAN, "Is the sky blue?"),
            (GPT, "Yes."),
        ],
        [(HUMAN, "Translate 'chat' to English."), (GPT, "Cat.")],
    ]
    bare = convert_upstream(tmp_path, "dolphin", rows, options={"system": False})
    assert chats(bare)[0] == [(HUMAN, "Is the sky blue?"), (GPT, "Yes.")]


# ---------------------------------------------------------------- koalpaca


def test_koalpaca_korean_text_and_source_url(tmp_path):
    rows = [
        {
            "instruction": "양파는 어떤 식물 부위인가요?",
            "output": "양파는 잎이 변형된 비늘줄기입니다.",
            "url": "https://kin.naver.com/qna/detail.naver?d1id=11&dirId=1116&docId=1",
        }
    ]
    out = convert_upstream(tmp_path, "koalpaca", rows)
    assert chats(out) == [
        [(HUMAN, "양파는 어떤 식물 부위인가요?"), (GPT, "양파는 잎이 변형된 비늘줄기입니다.")]
    ]
    assert metas(out)[0]["url"].startswith("https://kin.naver.com/")
