"""Catalogue SFT plugins of bagel's confidence 3: fed rows in their upstream (Hub) schema.

Each test writes rows shaped as the dataset is on the Hub (column names, nesting, types),
runs the plugin the way the build does (`convert_upstream`) and checks the turns: prompts,
answer formats, seeded choices, samples and the rows dropped or rejected.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest

from composer.convert import convert_source
from composer.manifest import load_manifest
from composer.plugins import get_plugin, registry
from tests.helpers import convert_upstream, write_manifest

LETTERS = "ABCDEFGH"
ARC_ONLY = "Only output the letter of the correct answer."
MMLU_ONLY = "Answer with only the letter of the answer."


def turns(converted) -> list[list[tuple[str, str]]]:
    return [
        [(t["from"], t["value"]) for t in conv]
        for conv in converted.records.column("conversations").to_pylist()
    ]


def metas(converted) -> list[dict]:
    return [json.loads(m) for m in converted.records.column("meta").to_pylist()]


def convert_entry(tmp_path: Path, entry: dict, seed: int = 42):
    """Convert one manifest source entry as the build does (for sources that are not a
    jsonl or parquet file written by `convert_upstream`)."""
    manifest = load_manifest(write_manifest(tmp_path, [entry], seed=seed))
    return convert_source(manifest, 0, manifest.sources[0], get_plugin(entry["name"]))


# ---------------------------------------------------------------- the catalogue entries


@pytest.mark.parametrize(
    ("plugin", "hub", "config", "split", "license", "options"),
    [
        (
            "ai2_arc",
            "allenai/ai2_arc",
            "ARC-Challenge",
            "train",
            "cc-by-sa-4.0",
            {"letter_only": 0.5},
        ),
        ("boolq", "google/boolq", None, "train", "cc-by-sa-3.0", {}),
        ("cinematika", "jondurbin/cinematika-v0.1", None, "train", "cc-by-nc-4.0", {}),
        ("emobank", "csv", None, "train", "cc-by-4.0", {}),
        ("mathinstruct", "TIGER-Lab/MathInstruct", None, "train", "mit", {"size": 75000}),
        ("mmlu", "cais/mmlu", "all", "auxiliary_train", "mit", {"letter_only": 0.5}),
        ("openbookqa", "allenai/openbookqa", "main", "train", "unknown", {"letter_only": 0.5}),
        ("piqa", "ybisk/piqa", None, "train", "unknown", {"letter_only": 0.25}),
        ("ropes", "allenai/ropes", None, "train", "cc-by-4.0", {}),
        (
            "squad_v2",
            "rajpurkar/squad_v2",
            None,
            "train",
            "cc-by-sa-4.0",
            {"answered": 2500, "unanswerable": 500},
        ),
        (
            "airoboros_summarization",
            "mattpscott/airoboros-summarization",
            None,
            "train",
            "bsd-3-clause",
            {"max_chars": 16000},
        ),
        ("winogrande", "allenai/winogrande", "winogrande_xl", "train", "cc-by", {}),
    ],
)
def test_catalogue_entry(plugin, hub, config, split, license, options):
    p = get_plugin(plugin)
    assert (p.kind, p.hub, p.config, p.split, p.license) == ("sft", hub, config, split, license)
    assert p.confidence == 3
    assert p.options == options
    assert not p.gated and not p.opt_in
    assert p.description and len(p.description) <= 100


def test_the_shared_module_is_not_a_plugin():
    assert "_choices" not in registry()


def test_plugins_that_sample_or_draw_see_every_row_and_the_seed():
    for name in ("mathinstruct", "squad_v2"):
        assert get_plugin(name).batch_size is None
    for name in ("ai2_arc", "openbookqa", "mmlu", "piqa", "mathinstruct", "squad_v2"):
        assert get_plugin(name).takes_seed


def test_hub_files():
    assert get_plugin("emobank").data_files.endswith(
        "JULIELab/EmoBank/raw/master/corpus/emobank.csv"
    )
    assert get_plugin("cinematika").data_files == [
        "memories.parquet",
        "director.parquet",
        "actions.parquet",
    ]
    files = get_plugin("airoboros_summarization").data_files
    assert len(files) == 5 and all(f.startswith("expert_summarization_4096-") for f in files)
    assert get_plugin("piqa").revision == "refs/convert/parquet"


# ---------------------------------------------------------------- multiple choice


def arc_row(question: str, options: list[str], answer: int) -> dict:
    labels = list(LETTERS[: len(options)])
    return {
        "id": "Mercury_7175875",
        "question": question,
        "choices": {"text": options, "label": labels},
        "answerKey": labels[answer],
    }


def obqa_row(question: str, options: list[str], answer: int) -> dict:
    labels = list(LETTERS[: len(options)])
    return {
        "id": "7-980",
        "question_stem": question,
        "choices": {"text": options, "label": labels},
        "answerKey": labels[answer],
    }


def mmlu_row(question: str, options: list[str], answer: int) -> dict:
    return {"question": question, "subject": "", "choices": options, "answer": answer}


def piqa_row(question: str, options: list[str], answer: int) -> dict:
    return {"goal": question, "sol1": options[0], "sol2": options[1], "label": answer}


# plugin: (row maker, number of options, letter-only instruction, before the question?,
#          between letter and text, default share of letter-only answers)
MC = {
    "ai2_arc": (arc_row, 4, ARC_ONLY, False, " ", 0.5),
    "openbookqa": (obqa_row, 4, ARC_ONLY, False, " ", 0.5),
    "mmlu": (mmlu_row, 4, MMLU_ONLY, True, " ", 0.5),
    "piqa": (piqa_row, 2, ARC_ONLY, False, ". ", 0.25),
}


def mc_questions(n: int, options: int) -> list[tuple[str, list[str], int]]:
    return [
        (
            f"Question {i}: which of these would a student pick first?",
            [f"option {i}-{k}" for k in range(options)],
            (i * 7) % options,
        )
        for i in range(n)
    ]


def letter_only_questions(converted, plugin: str) -> set[str]:
    """The questions (first line of the lettered prompt) answered with a letter alone."""
    instruction, before = MC[plugin][2], MC[plugin][3]
    found = set()
    for (_, human), _ in turns(converted):
        if instruction in human:
            lines = human.split("\n")
            found.add(lines[1] if before else lines[0])
    return found


@pytest.mark.parametrize("plugin", sorted(MC))
def test_multiple_choice_prompt_and_both_answer_forms(tmp_path, plugin):
    make, count, instruction, before, separator, share = MC[plugin]
    questions = mc_questions(200, count)
    out = convert_upstream(
        tmp_path, plugin, [make(*q) for q in questions], suffix=".parquet", seed=7
    )
    assert out.rejections == []
    assert out.records.num_rows == 200
    by_question = {q: (options, answer) for q, options, answer in questions}
    letter_only = 0
    for conv in turns(out):
        assert [role for role, _ in conv] == ["human", "gpt"]
        (_, human), (_, gpt) = conv
        lines = human.split("\n")
        if instruction in lines:
            letter_only += 1
            assert lines[0 if before else -1] == instruction
            lines.remove(instruction)
        question = lines[0]
        options, answer = by_question[question]
        assert lines[1:] == [f"{LETTERS[k]}. {text}" for k, text in enumerate(options)]
        letter = LETTERS[answer]
        if instruction in human:
            assert gpt == letter
        else:
            assert gpt == f"{letter}{separator}{options[answer]}"
    # Both forms occur, about as often as bagel's coin makes them.
    assert 0 < letter_only < 200
    assert abs(letter_only / 200 - share) < 0.12


@pytest.mark.parametrize("plugin", sorted(MC))
def test_multiple_choice_coin_is_seeded_per_question(tmp_path, plugin):
    make, count = MC[plugin][:2]
    rows = [make(*q) for q in mc_questions(80, count)]

    def picks(seed: int, data: list[dict], folder: str) -> set[str]:
        (tmp_path / folder).mkdir()
        return letter_only_questions(
            convert_upstream(tmp_path / folder, plugin, data, seed=seed), plugin
        )

    first = picks(1, rows, "a")
    assert first == picks(1, rows, "b")  # same seed, same choices
    assert first == picks(1, rows[::-1], "c")  # row order does not matter
    assert first != picks(2, rows, "d")  # another seed changes some


@pytest.mark.parametrize("plugin", sorted(MC))
@pytest.mark.parametrize("share", [0, 1])
def test_multiple_choice_letter_only_option(tmp_path, plugin, share):
    make, count = MC[plugin][:2]
    questions = mc_questions(30, count)
    out = convert_upstream(
        tmp_path, plugin, [make(*q) for q in questions], options={"letter_only": share}
    )
    assert len(letter_only_questions(out, plugin)) == 30 * share
    assert get_plugin(plugin).option_problems({"letter_only": 1.5}) == [
        ("letter_only", "expected a share between 0 and 1, got 1.5")
    ]


@pytest.mark.parametrize(
    ("plugin", "row", "detail"),
    [
        ("ai2_arc", {**arc_row("Q?", ["a", "b", "c", "d"], 0), "answerKey": "E"}, "'E'"),
        ("openbookqa", {**obqa_row("Q?", ["a", "b", "c", "d"], 0), "answerKey": None}, "None"),
        ("mmlu", mmlu_row("Q?", ["a", "b", "c", "d"], 4), "4"),
        ("piqa", piqa_row("Q?", ["a", "b"], -1), "-1"),
    ],
)
def test_multiple_choice_answer_that_is_no_option_is_rejected(tmp_path, plugin, row, detail):
    good = MC[plugin][0]("Fine question?", ["x"] * MC[plugin][1], 1)
    out = convert_upstream(tmp_path, plugin, [good, row])
    assert out.records.num_rows == 1
    [rejection] = out.rejections
    assert rejection.reason == "invalid row"
    assert rejection.detail.startswith(f"answer {detail} is none of the options")


def test_arc_numbered_options_are_shown_with_letters(tmp_path):
    row = {
        "id": "NYSEDREGENTS_2015_8_3",
        "question": "Which object is a producer?",
        "choices": {"text": ["hawk", "grass", "rabbit", "mushroom"], "label": ["1", "2", "3", "4"]},
        "answerKey": "2",
    }
    [[(_, human), (_, gpt)]] = turns(
        convert_upstream(tmp_path, "ai2_arc", [row], options={"letter_only": 0})
    )
    assert human == "Which object is a producer?\nA. hawk\nB. grass\nC. rabbit\nD. mushroom"
    assert gpt == "B grass"


def test_arc_three_and_five_options(tmp_path):
    rows = [
        arc_row("Three?", ["a", "b", "c"], 2),
        arc_row("Five?", ["a", "b", "c", "d", "e"], 4),
    ]
    out = convert_upstream(tmp_path, "ai2_arc", rows, options={"letter_only": 1})
    assert [conv[1][1] for conv in turns(out)] == ["C", "E"]
    assert turns(out)[1][0][1].split("\n")[5] == "E. e"


# ---------------------------------------------------------------- boolq, ropes, winogrande


def test_boolq(tmp_path):
    rows = [
        {
            "question": "do iran and afghanistan speak the same language",
            "answer": True,
            "passage": "Persian language -- Persian is a Western Iranian language.",
        },
        {
            "question": "is elder scrolls online the same as skyrim",
            "answer": False,
            "passage": "The Elder Scrolls Online is a massively multiplayer game.",
        },
        {"question": "is this answered", "answer": None, "passage": "No."},
    ]
    out = convert_upstream(tmp_path, "boolq", rows, suffix=".parquet")
    assert turns(out) == [
        [
            (
                "human",
                "Read the passage of text provided below, then answer the question.\n\n"
                "Persian language -- Persian is a Western Iranian language.\n\n"
                "True or false - do iran and afghanistan speak the same language",
            ),
            ("gpt", "true"),
        ],
        [
            (
                "human",
                "Read the passage of text provided below, then answer the question.\n\n"
                "The Elder Scrolls Online is a massively multiplayer game.\n\n"
                "True or false - is elder scrolls online the same as skyrim",
            ),
            ("gpt", "false"),
        ],
    ]
    [rejection] = out.rejections
    assert rejection.detail == "answer None is not true or false"


def test_ropes(tmp_path):
    rows = [
        {
            "id": "2058517998",
            "background": "Cancer is a disease that causes cells to divide out of control.",
            "situation": "Jason is a physician. He had two patients, patient A and patient B.",
            "question": "Which patient had more cells dividing out of control?",
            "answers": {"text": ["patient A", "A"]},
        },
        {
            "id": "1",
            "background": "b",
            "situation": "s",
            "question": "q?",
            "answers": {"text": []},
        },
    ]
    out = convert_upstream(tmp_path, "ropes", rows, suffix=".parquet")
    assert turns(out) == [
        [
            ("system", "You are a helpful assistant that answers questions concisely."),
            (
                "human",
                "Read the following background information, then apply the knowledge to the "
                "question that follows.\n\nBackground:\n"
                "Cancer is a disease that causes cells to divide out of control.\n\nQuestion:\n"
                "Jason is a physician. He had two patients, patient A and patient B.\n"
                "Which patient had more cells dividing out of control?",
            ),
            ("gpt", "patient A"),
        ]
    ]
    assert [r.detail for r in out.rejections] == ["no answer"]


def test_winogrande(tmp_path):
    rows = [
        {
            "sentence": "Sarah was a much better surgeon than Maria so _ always got the "
            "easier cases.",
            "option1": "Sarah",
            "option2": "Maria",
            "answer": "2",
        },
        {
            "sentence": "John moved the couch from the garage to the backyard to create space. "
            "The _ is small.",
            "option1": "garage",
            "option2": "backyard",
            "answer": "1",
        },
        {"sentence": "The _ is unlabelled.", "option1": "a", "option2": "b", "answer": ""},
    ]
    out = convert_upstream(tmp_path, "winogrande", rows, suffix=".parquet")
    assert [(conv[0][1], conv[1][1]) for conv in turns(out)] == [
        (rows[0]["sentence"], "Maria"),
        (rows[1]["sentence"], "garage"),
    ]
    assert [r.detail for r in out.rejections] == ["answer '' is neither 1 nor 2"]


# ---------------------------------------------------------------- squad_v2


DONT_KNOW = {
    "IRRELEVANT",
    "DO NOT KNOW",
    "SKIP",
    "I don't know.",
    "The passage does not appear to provide an answer to the question.",
}


def squad_rows(answerable: int, unanswerable: int) -> list[dict]:
    rows = []
    for i in range(answerable + unanswerable):
        has = i < answerable
        rows.append(
            {
                "id": f"5733be284776f41900661{i:03d}",
                "title": "University_of_Notre_Dame",
                "context": f"Passage {i}: the Grotto is a Marian place of prayer and reflection.",
                "question": f"Question {i}: what is the Grotto?",
                "answers": {
                    "text": [f"a Marian place {i}", "a place"] if has else [],
                    "answer_start": [30, 30] if has else [],
                },
            }
        )
    return rows


def test_squad_v2_prompt_and_answers(tmp_path):
    rows = squad_rows(30, 30)
    out = convert_upstream(tmp_path, "squad_v2", rows, suffix=".parquet")
    assert out.rejections == [] and out.records.num_rows == 60
    by_question = {r["question"]: r for r in rows}
    phrases = Counter()
    for (_, human), (_, gpt) in turns(out):
        instruction, blank, context, blank2, question = human.split("\n")
        assert blank == blank2 == ""
        prefix = (
            "Read the passage of text provided below, then concisely answer the question. "
            "If you don't know, respond with \""
        )
        assert instruction.startswith(prefix) and instruction.endswith('"')
        phrase = instruction[len(prefix) : -1]
        assert phrase in DONT_KNOW
        phrases[phrase] += 1
        row = by_question[question]
        assert context == row["context"]
        assert gpt == (row["answers"]["text"] or [phrase])[0]
    assert len(phrases) >= 4  # the phrase is drawn per question


def test_squad_v2_samples_answered_and_unanswerable(tmp_path):
    rows = squad_rows(40, 20)
    unanswerable = {r["question"] for r in rows if not r["answers"]["text"]}

    def sample(seed: int, folder: str):
        (tmp_path / folder).mkdir()
        out = convert_upstream(
            tmp_path / folder,
            "squad_v2",
            rows,
            seed=seed,
            options={"answered": 10, "unanswerable": 5},
        )
        questions = [conv[0][1].split("\n")[-1] for conv in turns(out)]
        return questions, [conv[0][1] for conv in turns(out)]

    questions, prompts = sample(3, "a")
    counts = Counter(q in unanswerable for q in questions)
    assert counts == {False: 10, True: 5}
    assert len(set(questions)) == 15
    assert sample(3, "b") == (questions, prompts)
    assert set(sample(4, "c")[0]) != set(questions)
    assert get_plugin("squad_v2").option_problems({"answered": -1}) == [
        ("answered", "expected a row count, got -1")
    ]


def test_squad_v2_row_without_a_passage_is_rejected(tmp_path):
    rows = squad_rows(2, 1)
    rows[1]["context"] = None
    out = convert_upstream(tmp_path, "squad_v2", rows, suffix=".parquet")
    assert out.records.num_rows == 2
    [rejection] = out.rejections
    assert (rejection.detail, rejection.row["question"]) == (
        "no passage or no question",
        "Question 1: what is the Grotto?",
    )


def test_squad_v2_phrase_changes_with_the_seed(tmp_path):
    rows = squad_rows(0, 40)
    answers = []
    for seed in (1, 2):
        (tmp_path / str(seed)).mkdir()
        out = convert_upstream(tmp_path / str(seed), "squad_v2", rows, seed=seed)
        answers.append([conv[1][1] for conv in turns(out)])
    assert answers[0] != answers[1]
    assert set(answers[0]) <= DONT_KNOW


# ---------------------------------------------------------------- mathinstruct


def test_mathinstruct_stratified_by_source(tmp_path):
    shares = {
        "data/CoT/MATH_train.json": 60,
        "data/PoT/gsm_gpt4.json": 30,
        "data/CoT/aqua_rat.json": 10,
    }
    rows = [
        {"source": source, "output": f"The answer is {i}.", "instruction": f"{source} problem {i}"}
        for source, n in shares.items()
        for i in range(n)
    ]
    source_of = {r["instruction"]: r["source"] for r in rows}

    def picked(seed: int, folder: str, **options) -> list[str]:
        (tmp_path / folder).mkdir()
        out = convert_upstream(
            tmp_path / folder, "mathinstruct", rows, suffix=".parquet", seed=seed, options=options
        )
        assert [m["source"] for m in metas(out)] == [source_of[c[0][1]] for c in turns(out)]
        return [c[0][1] for c in turns(out)]

    sample = picked(5, "a", size=50)
    counts = Counter(source_of[instruction] for instruction in sample)
    assert counts == {
        "data/CoT/MATH_train.json": 30,
        "data/PoT/gsm_gpt4.json": 15,
        "data/CoT/aqua_rat.json": 5,
    }
    assert sample == picked(5, "b", size=50)
    assert set(sample) != set(picked(6, "c", size=50))
    assert len(picked(5, "d")) == 100  # bagel's 75,000 is more than there is: all rows
    assert get_plugin("mathinstruct").option_problems({"size": -5}) == [
        ("size", "expected a row count, got -5")
    ]


def test_mathinstruct_turns(tmp_path):
    row = {
        "source": "data/CoT/gsm_train.json",
        "output": "2 + 2 = 4",
        "instruction": "What is 2 + 2?",
    }
    out = convert_upstream(tmp_path, "mathinstruct", [row])
    assert turns(out) == [[("human", "What is 2 + 2?"), ("gpt", "2 + 2 = 4")]]


# ---------------------------------------------------------------- emobank


EMOBANK = [
    ["id", "split", "V", "A", "D", "text"],
    [
        "110CYL068_1036_1079",
        "train",
        "3.00",
        "3.00",
        "3.20",
        'Remember what she said in my last letter? "',
    ],
    ["110CYL068_1079_1110", "test", "2.80", "3.10", "2.80", "If I wasn't working here."],
    ["110CYL068_1127_1130", "dev", "3.00", "3.00", "3.00", "..."],
    [
        "110CYL068_1137_1188",
        "train",
        "3.44",
        "3.00",
        "3.22",
        "Goodwill helps people get off of public assistance.",
    ],
    ["110CYL068_18_24", "train", "n/a", "2.62", "3.00", "Dear ,"],
]


def write_emobank(path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f, quoting=csv.QUOTE_NONNUMERIC).writerows(EMOBANK)


def check_emobank(out) -> None:
    prompt = (
        "Please assign a Valence-Arousal-Dominance (VAD) score in JSON format to the "
        "following message:\n"
    )
    assert [(h, json.loads(g)) for (_, h), (_, g) in turns(out)] == [
        (prompt + "Remember what she said in my last letter?", {"V": 3.0, "A": 3.0, "D": 3.2}),
        (
            prompt + "Goodwill helps people get off of public assistance.",
            {"V": 3.44, "A": 3.0, "D": 3.22},
        ),
    ]
    assert turns(out)[0][1][1] == '{\n  "V": 3.0,\n  "A": 3.0,\n  "D": 3.2\n}'
    # Test and dev rows are left out, not rejected; a score that is no number is.
    [rejection] = out.rejections
    assert rejection.detail.startswith("a VAD score is not a number: {'V': ")  # n/a, or NaN
    assert rejection.row["id"] == "110CYL068_18_24"


def test_emobank_from_the_csv_file(tmp_path):
    write_emobank(tmp_path / "emobank.csv")
    check_emobank(convert_entry(tmp_path, {"name": "emobank", "path": "emobank.csv"}))


def test_emobank_through_the_hub_csv_loader(tmp_path):
    """The plugin's default upstream is `datasets`' csv loader, which reads the scores as
    numbers (pyarrow, for a local path, reads text): both give the same records."""
    write_emobank(tmp_path / "emobank.csv")
    entry = {"name": "emobank", "hub": "csv", "data_files": str(tmp_path / "emobank.csv")}
    check_emobank(convert_entry(tmp_path, entry))


# ---------------------------------------------------------------- cinematika


CARD = {
    "movie_id": "tt0111161",
    "title": "The Shawshank Redemption",
    "input": "[scene] Create a character card for Red, a prisoner who can get things.",
    "output": "name: Red\n[scene]  characteristics:\n  Resourceful: knows how to get things.",
}
MEMORY = {
    "id": "b7d2",
    "conversations": [
        {"from": "system", "value": "You are Andy Dufresne."},
        {"from": "human", "value": "Summarize what we talked about."},
        {"from": "gpt", "value": "We talked about the library."},
    ],
    "category": "memories",
}


def test_cinematika_character_cards(tmp_path):
    out = convert_upstream(tmp_path, "cinematika", [CARD], suffix=".parquet")
    assert turns(out) == [
        [
            ("human", "Create a character card for Red, a prisoner who can get things."),
            ("gpt", "name: Red\ncharacteristics:\n  Resourceful: knows how to get things."),
        ]
    ]
    assert metas(out)[0]["part"] == "character_card"


def test_cinematika_chats(tmp_path):
    director = {
        "id": "c9",
        "conversations": [
            {"from": "human", "value": "[scene] Direct the next line."},
            {"from": "gpt", "value": "Red: Hope is a dangerous thing."},
        ],
        "category": "director",
    }
    out = convert_upstream(tmp_path, "cinematika", [MEMORY, director], suffix=".parquet")
    assert turns(out) == [
        [
            ("system", "You are Andy Dufresne."),
            ("human", "Summarize what we talked about."),
            ("gpt", "We talked about the library."),
        ],
        [("human", "[scene] Direct the next line."), ("gpt", "Red: Hope is a dangerous thing.")],
    ]
    assert [m["part"] for m in metas(out)] == ["memories", "director"]


def test_cinematika_both_shapes_in_one_source(tmp_path):
    out = convert_upstream(tmp_path, "cinematika", [CARD, MEMORY, {"title": "no data"}])
    assert [m["part"] for m in metas(out)] == ["character_card", "memories"]
    assert [r.detail for r in out.rejections] == ["neither conversations nor input/output"]


# ---------------------------------------------------------------- airoboros_summarization


def summarization_row(text: str, summary: str = " A short summary.\n") -> dict:
    return {
        "instruction": f"BEGININPUT\nBEGINCONTEXT\n{text}\nENDCONTEXT\nENDINPUT\n"
        "BEGININSTRUCTION\nSummarize the input in around 50 words.\nENDINSTRUCTION",
        "response": summary,
    }


def test_summarization_moves_the_text_out_of_the_context_block(tmp_path):
    rows = [
        summarization_row("Chapter 1. It was a bright cold day in April."),
        {"instruction": "Summarize this: no blocks at all.", "response": "Nothing."},
    ]
    out = convert_upstream(tmp_path, "airoboros_summarization", rows)
    assert turns(out) == [
        [
            (
                "human",
                "BEGININPUT\nChapter 1. It was a bright cold day in April.\nENDINPUT\n"
                "BEGININSTRUCTION\nSummarize the input in around 50 words.\nENDINSTRUCTION",
            ),
            ("gpt", "A short summary."),
        ]
    ]
    assert [r.detail for r in out.rejections] == [
        "no BEGINCONTEXT...ENDCONTEXT block before ENDINPUT"
    ]


def test_summarization_drops_rows_over_the_length_limit(tmp_path):
    rows = [summarization_row("word " * 4000), summarization_row("Short text.")]
    (tmp_path / "a").mkdir()
    out = convert_upstream(tmp_path / "a", "airoboros_summarization", rows)
    assert out.rejections == []  # dropped on purpose, not rejected
    assert [m["row"] for m in metas(out)] == [1]
    assert "Short text." in turns(out)[0][0][1]
    (tmp_path / "b").mkdir()
    unlimited = convert_upstream(
        tmp_path / "b", "airoboros_summarization", rows, options={"max_chars": 0}
    )
    assert unlimited.records.num_rows == 2
