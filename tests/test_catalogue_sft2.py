"""Catalogue SFT plugins of bagel's PRIORITY 2 (apps, belebele, CAMEL-AI, capybara,
evol_instruct, glaive_function_calling, lmsys_chat_1m, slimorca, rosetta_code,
sql_create_context), run as the build runs them on rows in each upstream's own schema."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from composer.plugins import get_plugin
from tests.helpers import convert_upstream

REFUSAL = "I'm sorry, but I cannot help with that request."
CAMEL = ["camel_ai_biology", "camel_ai_chemistry", "camel_ai_math", "camel_ai_physics"]


def conversations(converted) -> list[list[tuple[str, str]]]:
    return [
        [(t["from"], t["value"]) for t in turns]
        for turns in converted.records.column("conversations").to_pylist()
    ]


def metas(converted) -> list[dict]:
    return [json.loads(m) for m in converted.records.column("meta").to_pylist()]


def rejected(converted) -> list[tuple[str, str]]:
    return [(r.reason, r.detail) for r in converted.rejections]


# ---------------------------------------------------------------- catalogue entries


@pytest.mark.parametrize(
    ("name", "hub", "license", "gated"),
    [
        ("apps", "json", "mit", False),
        ("belebele", "facebook/belebele", "cc-by-sa-4.0", False),
        *((n, f"camel-ai/{n.rsplit('_', 1)[1]}", "cc-by-nc-4.0", False) for n in CAMEL),
        ("capybara", "LDJnr/Capybara", "apache-2.0", False),
        ("evol_instruct", "WizardLMTeam/WizardLM_evol_instruct_70k", "mit", False),
        ("glaive_function_calling", "glaiveai/glaive-function-calling-v2", "apache-2.0", False),
        ("lmsys_chat_1m", "lmsys/lmsys-chat-1m", "other", True),
        ("slimorca", "Open-Orca/SlimOrca", "mit", False),
        ("rosetta_code", "cakiki/rosetta-code", "gfdl", False),
        ("sql_create_context", "b-mc2/sql-create-context", "cc-by-4.0", False),
    ],
)
def test_catalogue_entry(name, hub, license, gated):
    plugin = get_plugin(name)
    assert (plugin.kind, plugin.hub, plugin.confidence) == ("sft", hub, 2)
    assert (plugin.license, plugin.gated, plugin.opt_in, plugin.revision) == (
        license,
        gated,
        False,
        None,
    )
    assert plugin.description


def test_apps_reads_the_train_jsonl_beside_the_loading_script():
    plugin = get_plugin("apps")
    assert plugin.data_files == "hf://datasets/codeparrot/apps/train.jsonl"
    assert plugin.inputs["humaneval"] == {"hub": "openai/openai_humaneval", "split": "test"}


# ---------------------------------------------------------------- code, HumanEval joined

HUMANEVAL = [
    {
        "task_id": "HumanEval/53",
        "prompt": 'def add(x: int, y: int):\n    """Add two numbers x and y"""\n',
        "canonical_solution": "    return x + y\n",
        "test": "def check(candidate):\n    assert candidate(0, 1) == 1\n",
        "entry_point": "add",
    },
    {
        "task_id": "HumanEval/23",
        "prompt": 'def strlen(string: str) -> int:\n    """Return length of given string"""\n',
        "canonical_solution": "    return len(string)\n",
        "test": "def check(candidate):\n    assert candidate('') == 0\n",
        "entry_point": "strlen",
    },
]


def apps_row(problem_id: int, question: str, solutions: list[str] | str) -> dict:
    return {
        "problem_id": problem_id,
        "question": question,
        "solutions": solutions if isinstance(solutions, str) else json.dumps(solutions),
        "input_output": json.dumps({"inputs": ["1 2\n"], "outputs": ["3\n"]}),
        "difficulty": "interview",
        "url": f"https://codeforces.com/problemset/problem/{problem_id}/A",
        "starter_code": "",
    }


def test_apps_first_solution_and_humaneval_filter(tmp_path):
    rows = [
        apps_row(
            1,
            "Print the sum of two integers.",
            [
                "a, b = map(int, input().split())\nprint(a + b)",
                "print(sum(map(int, input().split())))",
            ],
        ),
        # the first solution holds a canonical solution: dropped (a later one would not matter)
        apps_row(2, "Write add(x, y).", ["def add(x, y):\n    return x + y\n", "print(1)"]),
        # the first solution sits inside a canonical solution: dropped too
        apps_row(3, "Length of a string.", ["return len(string)"]),
        apps_row(4, "Reverse a list.", ["print(1)", "def add(x, y):\n    return x + y\n"]),
        apps_row(5, "A problem without solutions.", ""),
    ]
    converted = convert_upstream(tmp_path, "apps", rows, inputs={"humaneval": HUMANEVAL})
    prompt = "Provide a python solution to the following:\n"
    assert conversations(converted) == [
        [
            ("human", prompt + "Print the sum of two integers."),
            ("gpt", "a, b = map(int, input().split())\nprint(a + b)"),
        ],
        [("human", prompt + "Reverse a list."), ("gpt", "print(1)")],
    ]
    assert [(m["row"], m["problem_id"], m["difficulty"]) for m in metas(converted)] == [
        (0, 1, "interview"),
        (3, 4, "interview"),
    ]
    assert rejected(converted) == [("invalid row", "no solution")]


ROSETTA = [
    (
        "Go",
        "Hello world/Text",
        "Display the string Hello world! on a text console.",
        'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("Hello world!") }',
    ),
    ("Python", "Sum of two numbers", "Add two integers.", "def add(x, y):\n    return x + y"),
    ("Python", "String length", "Find the length of a string.", "len(string)"),
    ("Rust", "Loops/Infinite", "Print SPAM forever.", 'fn main() { loop { println!("SPAM"); } }'),
]


def test_rosetta_code_prompt_and_humaneval_filter(tmp_path):
    rows = [
        {
            "task_url": f"http://rosettacode.org/wiki/{task.replace(' ', '_')}",
            "task_name": task,
            "task_description": description,
            "language_url": f"http://rosettacode.org/wiki/Category:{language}",
            "language_name": language,
            "code": code,
        }
        for language, task, description, code in ROSETTA
    ]
    converted = convert_upstream(
        tmp_path, "rosetta_code", rows, suffix=".parquet", inputs={"humaneval": HUMANEVAL}
    )
    assert conversations(converted) == [
        [
            ("human", f"Create a solution in {language} to the following:\n{description}"),
            ("gpt", code),
        ]
        for language, _, description, code in (ROSETTA[0], ROSETTA[3])
    ]
    assert [(m["row"], m["task"], m["language"]) for m in metas(converted)] == [
        (0, "Hello world/Text", "Go"),
        (3, "Loops/Infinite", "Rust"),
    ]
    assert converted.rejections == []


# ---------------------------------------------------------------- belebele


def belebele_row(dialect: str, n: int, correct: str = "2") -> dict:
    return {
        "link": f"https://en.wikibooks.org/wiki/Page_{n}",
        "question_number": 1,
        "flores_passage": f"Passage {n} in {dialect}.",
        "question": f"Question {n}?",
        "mc_answer1": f"wrong {n}",
        "mc_answer2": f"right {n}",
        "mc_answer3": f"wrong again {n}",
        "mc_answer4": f"no {n}",
        "correct_answer_num": correct,
        "dialect": dialect,
        "ds": "2023-05-03",
    }


def test_belebele_prompt_and_answer(tmp_path):
    rows = [belebele_row("eng_Latn", 0), belebele_row("fra_Latn", 1, correct="4")]
    converted = convert_upstream(tmp_path, "belebele", rows)
    assert conversations(converted) == [
        [("human", "Passage 0 in eng_Latn.\nQuestion 0?"), ("gpt", "right 0")],
        [("human", "Passage 1 in fra_Latn.\nQuestion 1?"), ("gpt", "no 1")],
    ]
    assert [m["language"] for m in metas(converted)] == ["eng_Latn", "fra_Latn"]


def test_belebele_rejects_an_answer_number_out_of_range(tmp_path):
    converted = convert_upstream(tmp_path, "belebele", [belebele_row("eng_Latn", 0, "5")])
    assert rejected(converted) == [("invalid row", "correct_answer_num '5' is not 1-4")]


def test_belebele_keeps_per_language_questions_of_each_language(tmp_path):
    counts = {"eng_Latn": 9, "fra_Latn": 4, "zul_Latn": 2}
    rows = [belebele_row(d, n) for d, total in counts.items() for n in range(total)]
    converted = convert_upstream(tmp_path, "belebele", rows, options={"per_language": 3})
    kept = Counter(m["language"] for m in metas(converted))
    assert kept == {d: min(3, total) for d, total in counts.items()}


def test_belebele_sample_is_seeded(tmp_path):
    rows = [belebele_row("eng_Latn", n) for n in range(40)]

    def picked(seed: int, folder: str) -> list[int]:
        (tmp_path / folder).mkdir()
        converted = convert_upstream(
            tmp_path / folder, "belebele", rows, seed=seed, options={"per_language": 5}
        )
        return [m["row"] for m in metas(converted)]

    first = picked(1, "a")
    assert len(first) == 5
    assert picked(1, "b") == first
    assert any(picked(seed, f"s{seed}") != first for seed in range(2, 6))


# ---------------------------------------------------------------- CAMEL-AI


def camel_rows(per_topic: dict[str, int], refusals: int = 0) -> list[dict]:
    rows = [
        {
            "role_1": "Biologist_RoleType.ASSISTANT",
            "topic;": topic,
            "sub_topic": f"{topic} subtopic {n % 3}",
            "message_1": f"{topic} problem {n}?",
            "message_2": f"{topic} solution {n}.",
        }
        for topic, total in per_topic.items()
        for n in range(total)
    ]
    for n in range(refusals):  # refusing solutions in the first topic
        rows[n]["message_2"] = REFUSAL
    return rows


@pytest.mark.parametrize("plugin", CAMEL)
def test_camel_drops_refusals_then_samples_by_topic(tmp_path, plugin):
    rows = camel_rows({"Cell biology": 12, "Ecology": 6}, refusals=2)
    converted = convert_upstream(tmp_path, plugin, rows, options={"size": 6})
    # 16 answers left (10 and 6): shares 3.75 and 2.25, the larger remainder rounds up
    assert Counter(m["topic"] for m in metas(converted)) == {"Cell biology": 4, "Ecology": 2}
    for (human, gpt), meta in zip(conversations(converted), metas(converted)):
        row = rows[meta["row"]]
        assert human == ("human", row["message_1"])
        assert gpt == ("gpt", row["message_2"]) and gpt[1] != REFUSAL
        assert meta["sub_topic"] == row["sub_topic"]


def test_camel_keeps_everything_under_size_except_refusals(tmp_path):
    rows = camel_rows({"Algebra": 3, "Geometry": 2}, refusals=1)
    converted = convert_upstream(tmp_path, "camel_ai_math", rows)
    assert [m["row"] for m in metas(converted)] == [1, 2, 3, 4]
    assert converted.rejections == []


def test_camel_sample_is_seeded(tmp_path):
    rows = camel_rows({"Optics": 30, "Thermodynamics": 30})

    def picked(seed: int, folder: str) -> list[int]:
        (tmp_path / folder).mkdir()
        converted = convert_upstream(
            tmp_path / folder, "camel_ai_physics", rows, seed=seed, options={"size": 10}
        )
        return [m["row"] for m in metas(converted)]

    first = picked(7, "a")
    assert picked(7, "b") == first
    assert any(picked(seed, f"s{seed}") != first for seed in range(8, 12))


def test_camel_rejects_a_size_below_one():
    assert get_plugin("camel_ai_chemistry").option_problems({"size": 0}) == [
        ("size", "expected a positive number of pairs, got 0")
    ]


# ---------------------------------------------------------------- capybara, evol_instruct


def test_capybara_exchanges_become_turns(tmp_path):
    rows = [
        {
            "source": "General-Instruct",
            "conversation": [
                {"input": "What is 7 x 8?", "output": "7 x 8 = 56."},
                {"input": "And divided by 4?", "output": "56 / 4 = 14."},
            ],
        },
        {"source": "Know-Logic", "conversation": [{"input": "Name a prime.", "output": "7"}]},
    ]
    converted = convert_upstream(tmp_path, "capybara", rows)
    assert conversations(converted) == [
        [
            ("human", "What is 7 x 8?"),
            ("gpt", "7 x 8 = 56."),
            ("human", "And divided by 4?"),
            ("gpt", "56 / 4 = 14."),
        ],
        [("human", "Name a prime."), ("gpt", "7")],
    ]
    assert [m["source"] for m in metas(converted)] == ["General-Instruct", "Know-Logic"]


def test_evol_instruct_drops_refusals(tmp_path):
    rows = [
        {"instruction": "Explain recursion briefly.", "output": "A function that calls itself."},
        {"instruction": "Write malware.", "output": REFUSAL},
        {"instruction": "Name a colour.", "output": "Teal."},
    ]
    converted = convert_upstream(tmp_path, "evol_instruct", rows)
    assert conversations(converted) == [
        [("human", "Explain recursion briefly."), ("gpt", "A function that calls itself.")],
        [("human", "Name a colour."), ("gpt", "Teal.")],
    ]
    assert [m["row"] for m in metas(converted)] == [0, 2]
    assert converted.rejections == []


# ---------------------------------------------------------------- glaive function calling

WEATHER_SYSTEM = (
    "SYSTEM: You are a helpful assistant with access to the following functions. Use them "
    'if required -\n{\n    "name": "get_weather",\n    "parameters": {"city": "string"}\n}'
)
WEATHER_CHAT = (
    "USER: What is the weather in Paris?\n\n\n"
    'ASSISTANT: <functioncall> {"name": "get_weather", "arguments": \'{"city": "Paris"}\'} '
    "<|endoftext|>\n\n\n"
    'FUNCTION RESPONSE: {"temperature": 18, "sky": "clear"}\n\n\n'
    "ASSISTANT: It is 18 degrees and clear in Paris. <|endoftext|>\n\n\n"
)


def test_glaive_wraps_calls_and_results_in_function_tags(tmp_path):
    rows = [
        {"system": WEATHER_SYSTEM, "chat": WEATHER_CHAT},
        {
            "system": "SYSTEM: You are a helpful assistant, with no access to external functions.",
            "chat": "USER: How are chats marked?\n\n\nASSISTANT: Each turn starts with a role, "
            "as in USER: hello. <|endoftext|>\n\n\nUSER: Thanks\n\n\nASSISTANT: You're "
            "welcome! <|endoftext|>\n",
        },
    ]
    converted = convert_upstream(tmp_path, "glaive_function_calling", rows)
    assert conversations(converted) == [
        [
            ("system", WEATHER_SYSTEM.removeprefix("SYSTEM: ")),
            ("human", "What is the weather in Paris?"),
            (
                "function_call",
                '<|begin_func|> {"name": "get_weather", "arguments": \'{"city": "Paris"}\'} '
                "<|end_func|>",
            ),
            (
                "observation",
                '<|begin_func_response|>{"temperature": 18, "sky": "clear"}<|end_func_response|>',
            ),
            ("gpt", "It is 18 degrees and clear in Paris."),
        ],
        [
            ("system", "You are a helpful assistant, with no access to external functions."),
            ("human", "How are chats marked?"),
            ("gpt", "Each turn starts with a role, as in USER: hello."),
            ("human", "Thanks"),
            ("gpt", "You're welcome!"),
        ],
    ]


def test_glaive_rejects_chats_without_an_answer_or_with_stray_text(tmp_path):
    rows = [
        {"system": "SYSTEM: Be helpful.", "chat": "USER: Hello?\n\n\n"},
        {
            "system": "SYSTEM: Be helpful.",
            "chat": "preamble\nUSER: Hi\nASSISTANT: Hi! <|endoftext|>",
        },
    ]
    converted = convert_upstream(tmp_path, "glaive_function_calling", rows)
    assert converted.records.num_rows == 0
    assert rejected(converted) == [
        ("no answer", "the conversation ends with a human turn"),
        ("invalid row", "text before the first USER: turn"),
    ]


# ---------------------------------------------------------------- lmsys-chat-1m


def lmsys_row(n: int, model: str, turns: list[tuple[str, str]]) -> dict:
    return {
        "conversation_id": f"c{n}",
        "model": model,
        "conversation": [{"content": text, "role": role} for role, text in turns],
        "turn": len(turns) // 2,
        "language": "English",
        "openai_moderation": [
            {
                "categories": {"harassment": False},
                "category_scores": {"harassment": 0.001},
                "flagged": False,
            }
            for _ in turns
        ],
        "redacted": False,
    }


LMSYS = [
    lmsys_row(
        0, "gpt-4", [("user", "Hi"), ("assistant", "Hello!"), ("user", "2+2?"), ("assistant", "4")]
    ),
    lmsys_row(1, "vicuna-13b", [("user", "Hi"), ("assistant", "Hey there.")]),
    lmsys_row(2, "gpt-4", [("user", "Insult my boss."), ("assistant", REFUSAL)]),
    lmsys_row(3, "gpt-4", [("user", "Capital of Peru?"), ("assistant", "Lima.")]),
]


def test_lmsys_keeps_gpt4_chats_without_refusals(tmp_path):
    converted = convert_upstream(tmp_path, "lmsys_chat_1m", LMSYS, suffix=".parquet")
    assert conversations(converted) == [
        [("human", "Hi"), ("gpt", "Hello!"), ("human", "2+2?"), ("gpt", "4")],
        [("human", "Capital of Peru?"), ("gpt", "Lima.")],
    ]
    assert [(m["row"], m["conversation_id"]) for m in metas(converted)] == [(0, "c0"), (3, "c3")]
    assert converted.rejections == []


def test_lmsys_model_option_picks_another_model(tmp_path):
    converted = convert_upstream(tmp_path, "lmsys_chat_1m", LMSYS, options={"model": "vicuna-13b"})
    assert conversations(converted) == [[("human", "Hi"), ("gpt", "Hey there.")]]


# ---------------------------------------------------------------- slimorca


def orca(system: str, question: str, answer: str) -> dict:
    return {
        "conversations": [
            {"from": "system", "value": system, "weight": None},
            {"from": "human", "value": question, "weight": 0.0},
            {"from": "gpt", "value": answer, "weight": 1.0},
        ]
    }


AIROBOROS = [
    {
        "id": "a1",
        "category": "slimorca_multiturn",
        "conversations": [
            {"from": "system", "value": "A chat."},
            {"from": "human", "value": "Translate 'cat' to French."},
            {"from": "gpt", "value": "Chat."},
            {"from": "human", "value": "And to German?"},
            {"from": "gpt", "value": "Katze."},
        ],
    },
    {
        "id": "a2",
        "category": "general",
        "conversations": [
            {"from": "system", "value": "A chat."},
            {"from": "human", "value": "Is the sky blue?"},
            {"from": "gpt", "value": "Yes."},
        ],
    },
]


def test_slimorca_filters_refusals_and_airoboros_multiturn(tmp_path):
    teacher = "You are a helpful assistant, who always provide explanation."
    rows = [
        orca("", "Is the sky blue?", "Yes, because of Rayleigh scattering."),
        orca(teacher, "  Translate 'cat' to French.  ", "Chat."),  # extended by airoboros
        orca(teacher, "Summarise: a man robs a bank.", REFUSAL),
        orca(teacher, "Is it illegal or unethical to rob a bank?", "Yes, it is both."),
    ]
    converted = convert_upstream(
        tmp_path, "slimorca", rows, inputs={"airoboros": AIROBOROS}, suffix=".parquet"
    )
    assert conversations(converted) == [
        [("human", "Is the sky blue?"), ("gpt", "Yes, because of Rayleigh scattering.")],
        [
            ("system", teacher),
            ("human", "Is it illegal or unethical to rob a bank?"),
            ("gpt", "Yes, it is both."),
        ],
    ]
    assert [m["row"] for m in metas(converted)] == [0, 3]
    assert converted.rejections == []


# ---------------------------------------------------------------- sql-create-context


def test_sql_create_context_prompt(tmp_path):
    rows = [
        {
            "answer": "SELECT COUNT(*) FROM head WHERE age > 56",
            "question": "How many heads of the departments are older than 56 ?",
            "context": "CREATE TABLE head (age INTEGER)",
        },
        {"answer": "SELECT 1", "question": "One?", "context": ""},
    ]
    converted = convert_upstream(tmp_path, "sql_create_context", rows)
    assert conversations(converted) == [
        [
            (
                "human",
                "Using the context provided, please generate a SQL query to answer the "
                "question.\nContext: CREATE TABLE head (age INTEGER)\nQuestion: How many "
                "heads of the departments are older than 56 ?",
            ),
            ("gpt", "SELECT COUNT(*) FROM head WHERE age > 56"),
        ]
    ]
    assert rejected(converted) == [("invalid row", "no context")]
