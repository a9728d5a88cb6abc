"""Catalogue plugins: preference pairs (airoboros, HelpSteer, Orca, UltraFeedback, truthy,
contextual, Gutenberg, toxic, H2O LLM Studio) and plain text (Gutenberg books, Cinematika
scripts, RedPajama sample, fan fiction), each run on rows in its upstream schema."""

from __future__ import annotations

import json
import re

import pytest

from tests.helpers import convert_upstream, invoke, write_jsonl, write_manifest


def rows_of(converted) -> list[dict]:
    return [{**r, "meta": json.loads(r["meta"])} for r in converted.records.to_pylist()]


def sys_turn(text):
    return {"from": "system", "value": text}


def human(text):
    return {"from": "human", "value": text}


def gpt(text):
    return {"from": "gpt", "value": text}


# ---------------------------------------------------------------- prompt/chosen/rejected sets

PAIR_ROWS = {
    "truthy": [
        {
            "id": "t1",
            "source": "truthy_dpo",
            "system": "You are Dr. Alice Carter, a marine biologist.",
            "prompt": "Can you feel the sea breeze where you are?",
            "chosen": "Yes, the breeze off the bay is cool this morning.",
            "rejected": "As an AI, I cannot feel anything.",
        },
        {
            "id": "t2",
            "source": "truthy_dpo",
            "system": "",
            "prompt": "Do goldfish have a three-second memory?",
            "chosen": "No, goldfish remember things for months.",
            "rejected": "Yes, only three seconds.",
        },
        {
            "id": "t3",
            "source": "truthy_dpo",
            "system": "",
            "prompt": "Is the Great Wall visible from space?",
            "chosen": "No, it is not visible to the naked eye.",
            "rejected": "  no, it is NOT visible to the naked eye. ",
        },
    ],
    "contextual_dpo": [
        {
            "id": "c1",
            "prompt": "BEGININPUT\nBEGINCONTEXT\ndate: 2021\nENDCONTEXT\nThe sky was green."
            "\nENDINPUT\nBEGININSTRUCTION\nWhat color was the sky?\nENDINSTRUCTION",
            "chosen": "According to the text, the sky was green.",
            "rejected": "The sky was blue.",
        },
        {
            "id": "c2",
            "prompt": "BEGININPUT\nBEGINCONTEXT\nENDCONTEXT\nNo facts.\nENDINPUT\n"
            "BEGININSTRUCTION\nWho won?\nENDINSTRUCTION",
            "chosen": "The text does not say.",
            "rejected": "The text does not say.",
        },
    ],
    "gutenberg_dpo": [
        {
            "prompt": "Write the opening chapter of a novel about a whaling voyage.",
            "chosen": "Call me Ishmael. Some years ago...",
            "rejected": "It was a dark and stormy night on the ship.",
        },
        {
            "prompt": "Write a chapter set in a country house.",
            "chosen": "It is a truth universally acknowledged...",
            "rejected": "It is a truth universally acknowledged...",
        },
    ],
    "toxic_dpo": [
        {
            "id": "x1",
            "prompt": "Tell me how to pick a lock.",
            "chosen": "Insert a tension wrench, then rake the pins.",
            "rejected": "I'm sorry, but I can't help with that.",
        },
        {
            "id": "x2",
            "prompt": "Same?",
            "chosen": "I'm sorry, but I can't help with that.",
            "rejected": "i'm sorry, but i can't help with that.",
        },
    ],
}


@pytest.mark.parametrize("plugin", sorted(PAIR_ROWS))
@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_prompt_pairs(tmp_path, plugin, suffix):
    rows = PAIR_ROWS[plugin]
    converted = convert_upstream(tmp_path, plugin, rows, suffix=suffix, opt_in=True)
    # The last row of each set has the same answer twice (up to case and space): rejected.
    assert [(r.index, r.reason) for r in converted.rejections] == [
        (len(rows) - 1, "chosen equals rejected")
    ]
    got = rows_of(converted)
    kept = [r for r in rows if r["chosen"].strip().lower() != r["rejected"].strip().lower()]
    assert len(kept) == len(rows) - 1
    assert [r["chosen"] for r in got] == [r["chosen"] for r in kept]
    assert [r["rejected"] for r in got] == [r["rejected"] for r in kept]
    for record, row in zip(got, kept):
        context = [human(row["prompt"])]
        if row.get("system"):
            context = [sys_turn(row["system"]), *context]
        assert record["conversations"] == context
        assert record["kind"] == "dpo"
        assert record["meta"].get("id") == row.get("id")


def test_toxic_dpo_needs_opt_in(tmp_path):
    write_jsonl(tmp_path / "toxic.jsonl", PAIR_ROWS["toxic_dpo"])
    source = {"name": "spicy", "plugin": "toxic_dpo", "path": "toxic.jsonl"}
    result = invoke("validate", str(write_manifest(tmp_path, [source])))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "sources[0]" in result.stderr
    assert "'toxic_dpo' is opt-in" in result.stderr
    assert "add `opt_in: true`" in result.stderr

    result = invoke("validate", str(write_manifest(tmp_path, [{**source, "opt_in": True}])))
    assert result.exit_code == 0, result.output
    converted = convert_upstream(tmp_path, "toxic_dpo", PAIR_ROWS["toxic_dpo"], opt_in=True)
    # The refusal is the rejected answer here: no refusal filter on toxic pairs.
    assert [r["rejected"] for r in rows_of(converted)] == ["I'm sorry, but I can't help with that."]


# ---------------------------------------------------------------- Orca (argilla) and H2O


def orca_row(input, chosen, rejected, status="swapped", score=9.0, gsm8k=False, **extra):
    """A row of argilla/distilabel-intel-orca-dpo-pairs."""
    return {
        "system": "You are an AI assistant. Provide a detailed answer.",
        "input": input,
        "chosen": chosen,
        "rejected": rejected,
        "generations": [rejected, chosen],
        "order": ["chosen", "rejected"],
        "labelling_model": "gpt-4-1106-preview",
        "labelling_prompt": [{"content": "rate these", "role": "user"}],
        "raw_labelling_response": "7 9",
        "rating": [7.0, score if score is not None else 0.0],
        "rationale": "The second answer is more complete.",
        "status": status,
        "original_chosen": rejected,
        "original_rejected": chosen,
        "chosen_score": score,
        "in_gsm8k_train": gsm8k,
        **extra,
    }


def test_orca_dpo_pairs_filters_as_bagel(tmp_path):
    rows = [
        orca_row("Translate 'bonjour'.", "'Bonjour' means 'hello'.", "Hi."),
        orca_row("Tie?", "Answer A.", "Answer B.", status="tie"),
        orca_row("Low score?", "Meh.", "Worse.", score=7.5),
        orca_row("Unrated?", "Something.", "Other.", score=None),
        orca_row("Natalia sold clips...", "72 clips.", "48 clips.", gsm8k=True),
        orca_row("How to hack?", "I'm sorry, but I cannot help with that.", "Here is how."),
        orca_row("Same?", "Yes.", "yes."),
        orca_row("Unchanged", "Kept too.", "Not kept.", status="unchanged", score=8.0),
    ]
    got = rows_of(convert_upstream(tmp_path, "orca_dpo_pairs", rows, suffix=".parquet"))
    assert [r["chosen"] for r in got] == ["'Bonjour' means 'hello'.", "Kept too."]
    assert got[0]["conversations"] == [sys_turn(rows[0]["system"]), human("Translate 'bonjour'.")]
    assert got[0]["rejected"] == "Hi."
    assert got[0]["meta"] == {"row": 0, "status": "swapped", "chosen_score": 9.0}

    # min_score lowers the bar: the 7.5 row comes back, the unrated one does not.
    lower = convert_upstream(
        tmp_path, "orca_dpo_pairs", rows, suffix=".parquet", options={"min_score": 7.0}
    )
    assert [r["chosen"] for r in rows_of(lower)] == [
        "'Bonjour' means 'hello'.",
        "Meh.",
        "Kept too.",
    ]


def test_orca_dpo_pairs_reads_intels_original(tmp_path):
    rows = [
        {"system": "", "question": "2+2?", "chosen": "4", "rejected": "5"},
        {
            "system": "Be brief.",
            "question": "Capital of France?",
            "chosen": "Paris",
            "rejected": "Rome",
        },
        {
            "system": "",
            "question": "Bomb?",
            "chosen": "As an AI, I cannot do that.",
            "rejected": "Ok",
        },
    ]
    converted = convert_upstream(tmp_path, "orca_dpo_pairs", rows, columns={"input": "question"})
    got = rows_of(converted)
    assert [r["conversations"] for r in got] == [
        [human("2+2?")],
        [sys_turn("Be brief."), human("Capital of France?")],
    ]
    assert [r["meta"]["chosen_score"] for r in got] == [None, None]


def test_h2o_dpo_default_dataset_rows(tmp_path):
    # Intel/orca_dpo_pairs, as LLM Studio saves it to train.pq: system/question/chosen/rejected.
    rows = [
        {
            "system": "",
            "question": "Summarize: cats sleep a lot.",
            "chosen": "Cats nap.",
            "rejected": "Dogs.",
        },
        {"system": "You are helpful.", "question": "Say hi.", "chosen": "Hi!", "rejected": "No."},
    ]
    got = rows_of(convert_upstream(tmp_path, "h2o_dpo", rows, suffix=".parquet"))
    assert [r["conversations"] for r in got] == [
        [human("Summarize: cats sleep a lot.")],
        [sys_turn("You are helpful."), human("Say hi.")],
    ]
    assert [(r["chosen"], r["rejected"]) for r in got] == [("Cats nap.", "Dogs."), ("Hi!", "No.")]


def test_h2o_dpo_chains_conversations_by_parent_id(tmp_path):
    def row(id, parent, n, system="", rejected=None):
        return {
            "id": id,
            "parent_id": parent,
            "system": system,
            "question": f"question {n}",
            "chosen": f"good {n}",
            "rejected": rejected or f"bad {n}",
        }

    rows = [
        row("a3", "a2", 3),
        row("b1", None, 1, system="Be terse."),
        row("a1", None, 1, system="You are a pirate."),
        row("c1", "c2", 1),  # c1 and c2 are each other's parent: a loop
        row("a2", "a1", 2),
        row("c2", "c1", 2),
        row("d1", "gone", 1),  # a parent that is not in the file: an orphan
    ]
    converted = convert_upstream(tmp_path, "h2o_dpo", rows, suffix=".parquet")
    got = {r["meta"]["ids"][-1]: r for r in rows_of(converted)}
    assert sorted(got) == ["a3", "b1"]
    assert converted.linked == 2  # a1 and a2 are rounds inside a3's conversation
    assert sorted((r.index, r.reason, r.detail) for r in converted.rejections) == [
        (3, "a cycle of parent ids", "a cycle of parent ids"),
        (5, "a cycle of parent ids", "a cycle of parent ids"),
        (6, "orphan", "orphan: parent 'gone' is not in the data"),
    ]
    assert converted.rows_read == len(converted.rejections) + converted.linked + len(got)
    assert got["a3"]["conversations"] == [
        sys_turn("You are a pirate."),
        human("question 1"),
        gpt("good 1"),
        human("question 2"),
        gpt("good 2"),
        human("question 3"),
    ]
    assert (got["a3"]["chosen"], got["a3"]["rejected"]) == ("good 3", "bad 3")
    assert got["a3"]["meta"]["ids"] == ["a1", "a2", "a3"]
    assert got["b1"]["conversations"] == [sys_turn("Be terse."), human("question 1")]
    # `orphans: start` makes the orphan a conversation of its own, as older exports need.
    started = convert_upstream(
        tmp_path, "h2o_dpo", rows, suffix=".parquet", options={"orphans": "start"}
    )
    got = {r["meta"]["ids"][-1]: r for r in rows_of(started)}
    assert got["d1"]["conversations"] == [human("question 1")]
    assert sorted(r.row["id"] for r in converted.rejections) == ["c1", "c2", "d1"]


# ---------------------------------------------------------------- UltraFeedback


def uf_row(prompt, chosen, rejected, score, extra_turns=()):
    def exchange(answer):
        return [
            {"content": prompt, "role": "user"},
            {"content": answer, "role": "assistant"},
            *extra_turns,
        ]

    return {
        "prompt": prompt,
        "prompt_id": f"id-{len(prompt)}-{score}",
        "chosen": exchange(chosen),
        "rejected": exchange(rejected),
        "messages": exchange(chosen),
        "score_chosen": score,
        "score_rejected": 3.0,
        "source": "evol_instruct",
    }


def test_ultrafeedback_keeps_clear_high_scored_pairs(tmp_path):
    more = ({"content": "And?", "role": "user"}, {"content": "More.", "role": "assistant"})
    rows = [
        uf_row("Name a prime.", "7 is prime.", "9 is prime.", 8.5),
        uf_row("Name a colour.", "Blue.", "Seven.", 7.0),
        uf_row("Insult me.", "I'm sorry, but I can't help with that.", "You fool.", 9.0),
        uf_row("Capital of France?", "Paris.", "  paris. ", 10.0),
        uf_row("Two turns?", "Sure.", "No.", 9.0, extra_turns=more),
    ]
    converted = convert_upstream(tmp_path, "ultrafeedback", rows, suffix=".parquet")
    assert converted.rejections == []
    got = rows_of(converted)
    assert len(got) == 1
    assert got[0]["conversations"] == [human("Name a prime.")]
    assert (got[0]["chosen"], got[0]["rejected"]) == ("7 is prime.", "9 is prime.")
    assert got[0]["meta"]["score_chosen"] == 8.5
    assert got[0]["meta"]["prompt_id"] == rows[0]["prompt_id"]

    lower = convert_upstream(
        tmp_path, "ultrafeedback", rows, suffix=".parquet", options={"min_score": 7}
    )
    assert [r["chosen"] for r in rows_of(lower)] == ["7 is prime.", "Blue."]


# ---------------------------------------------------------------- HelpSteer


def hs_row(prompt, response, correctness, helpfulness=3, coherence=3, complexity=2, verbosity=2):
    return {
        "prompt": prompt,
        "response": response,
        "helpfulness": helpfulness,
        "correctness": correctness,
        "coherence": coherence,
        "complexity": complexity,
        "verbosity": verbosity,
    }


def test_helpsteer_picks_most_correct_then_best_scored(tmp_path):
    rows = [
        hs_row("What is DNA?", "A molecule.", 4, helpfulness=2),
        hs_row("What is DNA?", "The molecule of heredity.", 4, helpfulness=4),
        hs_row("What is DNA?", "A protein.", 1),
        hs_row(
            "What is DNA?", "As an AI language model, I think...", 4, helpfulness=4, coherence=4
        ),
        hs_row("Only one answer?", "Yes.", 4),
        hs_row("All weak?", "Maybe.", 3),
        hs_row("All weak?", "Perhaps.", 2),
        hs_row("Ties?", "Same score A.", 4),
        hs_row("Ties?", "Same score B.", 4),
    ]
    converted = convert_upstream(tmp_path, "helpsteer", rows, suffix=".parquet")
    assert converted.rejections == []
    got = rows_of(converted)
    # The refusal scores highest but is left out; a tie gives no lower answer to reject.
    assert len(got) == 1
    assert got[0]["conversations"] == [human("What is DNA?")]
    assert got[0]["chosen"] == "The molecule of heredity."
    assert got[0]["rejected"] in {"A molecule.", "A protein."}
    assert got[0]["meta"]["correctness"][0] == 4

    lower = rows_of(convert_upstream(tmp_path, "helpsteer", rows, options={"min_correctness": 3}))
    assert {
        (r["chosen"], r["rejected"]) for r in lower if r["conversations"][0]["value"] == "All weak?"
    } == {("Maybe.", "Perhaps.")}


def test_helpsteer_rejected_answer_is_a_seeded_choice(tmp_path):
    rows = []
    for n in range(60):
        prompt = f"Question {n}?"
        rows += [
            hs_row(prompt, f"low A {n}", 2),
            hs_row(prompt, f"best {n}", 4),
            hs_row(prompt, f"low B {n}", 3, helpfulness=0),
        ]

    def picks(seed, data=rows):
        got = rows_of(convert_upstream(tmp_path, "helpsteer", data, seed=seed))
        return {r["conversations"][0]["value"]: r["rejected"] for r in got}

    first = picks(1)
    assert len(first) == 60
    assert all(v.split()[0] == "low" for v in first.values())
    kinds = {v.split()[1] for v in first.values()}
    assert kinds == {"A", "B"}  # both lower answers get picked over 60 prompts
    assert picks(1) == first
    assert picks(1, data=rows[::-1]) == first  # keyed by prompt, not by file order
    other = picks(2)
    assert other.keys() == first.keys()
    assert any(other[p] != first[p] for p in first)


def test_helpsteer_row_without_scores_is_rejected(tmp_path):
    rows = [hs_row("Q?", "A good one.", 4), hs_row("Q?", "A bad one.", 0)]
    rows.append({**hs_row("Q?", "Unscored.", 4), "helpfulness": None})
    converted = convert_upstream(tmp_path, "helpsteer", rows)
    assert [r["chosen"] for r in rows_of(converted)] == ["A good one."]
    assert [(r.reason, r.detail) for r in converted.rejections] == [
        ("invalid row", "a score or the prompt is missing")
    ]


# ---------------------------------------------------------------- airoboros 3.2 vs 2.0


def test_airoboros_dpo_joins_rewritten_creative_answers(tmp_path):
    system = sys_turn("A chat.")
    new = [
        {
            "id": "n1",
            "category": "writing",
            "conversations": [system, human("Write a poem about rain."), gpt("A" * 300)],
        },
        {
            "id": "n2",
            "category": "roleplay",
            "conversations": [
                system,
                human("  Pretend you are   a PIRATE. "),
                gpt("Arr! " * 50),
                human("Where is the gold?"),
                gpt("Buried."),
            ],
        },
        {  # rewritten but shorter than the original: no pair
            "id": "n3",
            "category": "writing",
            "conversations": [system, human("Write a haiku."), gpt("Short.")],
        },
        {  # not a creative task, though the old set has the instruction
            "id": "n4",
            "category": "coding",
            "conversations": [system, human("Write a poem about rain."), gpt("B" * 400)],
        },
        {  # creative, but the old set has it under another category
            "id": "n5",
            "category": "writing",
            "conversations": [system, human("Explain recursion."), gpt("C" * 400)],
        },
        {  # no original at all
            "id": "n6",
            "category": "writing",
            "conversations": [system, human("Write a limerick."), gpt("D" * 400)],
        },
    ]
    old = [
        {
            "instruction": "Write a poem about rain.",
            "response": "Rain falls.",
            "category": "writing",
        },
        {"instruction": "Pretend you are a pirate.", "response": "Arr.", "category": "roleplay"},
        {
            "instruction": "Write a haiku.",
            "response": "An old silent pond...",
            "category": "writing",
        },
        {"instruction": "Explain recursion.", "response": "See recursion.", "category": "coding"},
    ]
    converted = convert_upstream(tmp_path, "airoboros_dpo", new, inputs={"old": old})
    assert converted.rejections == []
    got = rows_of(converted)
    assert [r["meta"]["id"] for r in got] == ["n1", "n2"]
    assert got[0]["conversations"] == [system, human("Write a poem about rain.")]
    assert (got[0]["chosen"], got[0]["rejected"]) == ("A" * 300, "Rain falls.")
    # Only the first exchange of a multi-turn roleplay: the one the old set answered.
    assert got[1]["conversations"] == [system, human("  Pretend you are   a PIRATE. ")]
    assert (got[1]["chosen"], got[1]["rejected"]) == ("Arr! " * 50, "Arr.")
    assert got[1]["meta"]["category"] == "roleplay"


# ---------------------------------------------------------------- plain text

PG_HEADER = (
    "The Project Gutenberg eBook of A Tale\n\nThis eBook is for the use of anyone.\n\n"
    "*** START OF THE PROJECT GUTENBERG EBOOK A TALE ***\n"
)
PG_FOOTER = "\n*** END OF THE PROJECT GUTENBERG EBOOK A TALE ***\n\nUpdated editions will replace"


def test_gutenberg_cuts_licence_unwraps_and_chunks(tmp_path):
    paragraphs = [
        "CHAPTER I.",
        "It was the best of times, it was the worst\nof times, it was the age of wisdom,"
        "\nit was the age of foolishness.",
        "There were a king with a large jaw and a\nqueen with a plain face, on the throne"
        "\nof England.",
    ] + [f"Paragraph {n} of the tale goes on\nfor a while and ends here." for n in range(30)]
    book = PG_HEADER + "\n\n".join(paragraphs) + PG_FOOTER
    row = {
        "TEXT": book,
        "SOURCE": "https://www.gutenberg.org/ebooks/98",
        "METADATA": json.dumps(
            {"language": "en", "text_id": 98, "title": "A Tale", "authors": "Dickens, Charles"}
        ),
    }
    converted = convert_upstream(
        tmp_path, "gutenberg", [row], suffix=".parquet", options={"max_chunk_size": 400}
    )
    got = rows_of(converted)
    texts = [r["text"] for r in got]
    assert len(texts) > 3 and all(len(t) <= 400 for t in texts)
    joined = "\n\n".join(texts)
    assert "PROJECT GUTENBERG" not in joined and "Updated editions" not in joined
    assert joined.startswith("CHAPTER I.\n\nIt was the best of times, it was the worst of times,")
    assert "\nof" not in joined and "a\nqueen" not in joined  # hard wraps joined
    assert joined.split() == "\n\n".join(paragraphs).split()  # nothing lost or reordered
    assert got[0]["meta"] == {
        "row": 0,
        "text_id": 98,
        "title": "A Tale",
        "authors": "Dickens, Charles",
        "chunk": 0,
        "chunks": len(texts),
    }

    kept_wraps = convert_upstream(
        tmp_path, "gutenberg", [row], options={"unwrap": False, "max_chunk_size": 400}
    )
    assert "worst\nof times" in "\n\n".join(r["text"] for r in rows_of(kept_wraps))


def test_gutenberg_unwraps_only_inside_sentences(tmp_path):
    # As bagel: a line break stays after . ! ? : ; and goes before a lowercase word.
    verse = (
        "Tyger Tyger, burning bright!\nIn the forests of the night;\n"
        "What immortal hand or eye\ncould frame thy fearful symmetry?"
    )
    got = rows_of(convert_upstream(tmp_path, "gutenberg", [{"TEXT": verse}]))
    assert [r["text"] for r in got] == [
        "Tyger Tyger, burning bright!\nIn the forests of the night;\n"
        "What immortal hand or eye could frame thy fearful symmetry?"
    ]


def test_cinematika_text_strips_scene_markers(tmp_path):
    scenes = [
        f"[scene] INT. DINER - NIGHT {n}\n\nJOE sits alone.\n\nJOE: Coffee, black."
        for n in range(20)
    ]
    rows = [
        {"scene_by_scene": "\n\n".join(scenes)},
        {"scene_by_scene": "[scene]   EXT. BEACH - DAY\n\nWaves."},
    ]
    converted = convert_upstream(
        tmp_path, "cinematika_text", rows, suffix=".parquet", options={"max_chunk_size": 300}
    )
    got = rows_of(converted)
    assert all("[scene]" not in r["text"] and len(r["text"]) <= 300 for r in got)
    first = [r for r in got if r["meta"]["row"] == 0]
    assert [r["meta"]["chunk"] for r in first] == list(range(len(first)))
    assert (
        "\n\n".join(r["text"] for r in first).split()
        == re.sub(r"\[scene\]\s*", "", "\n\n".join(scenes)).split()
    )
    assert got[-1]["text"] == "EXT. BEACH - DAY\n\nWaves."


def test_redpajama_sample_keeps_upstream_meta(tmp_path):
    rows = [
        {
            "text": "An arXiv abstract.\n\nA second paragraph about it.",
            "meta": json.dumps({"arxiv_id": "2101.00001", "language": "en"}),
        },
        {
            "text": "A Wikipedia article.",
            "meta": "{'title': 'Bagel', 'url': 'https://en.wikipedia.org/wiki/Bagel'}",
        },
        {"text": "x" * 50 + "\n\n" + "y" * 50, "meta": "not parseable {"},
    ]
    converted = convert_upstream(tmp_path, "redpajama_sample", rows, options={"max_chunk_size": 60})
    got = rows_of(converted)
    assert [r["meta"]["upstream"] for r in got] == [
        {"arxiv_id": "2101.00001", "language": "en"},
        {"title": "Bagel", "url": "https://en.wikipedia.org/wiki/Bagel"},
        "not parseable {",
        "not parseable {",
    ]
    assert [r["text"] for r in got] == [rows[0]["text"], rows[1]["text"], "x" * 50, "y" * 50]


def ficbook_row(title, rating, parts):
    return {
        "url": f"https://ficbook.net/readfic/{len(title)}",
        "authors": ["author"],
        "tags": ["Ангст"],
        "description": "Описание",
        "likes": 10,
        "parts": [
            {
                "clean_text": text,
                "date": "2020-01-01",
                "text": f"<div>{text}</div>",
                "title": f"Глава {n + 1}",
                "url": f"https://ficbook.net/readfic/x/{n}",
            }
            for n, text in enumerate(parts)
        ],
        "part_count": len(parts),
        "title": title,
        "rating": rating,
        "status": "Завершён",
        "direction": "Джен",
        "category": "Гарри Поттер",
        "pairing": "",
    }


def test_fanfics_chunks_each_chapter(tmp_path):
    chapter1 = "\n\n".join(f"Абзац {n} первой главы." for n in range(12))
    rows = [
        ficbook_row("Первая история", "PG-13", [chapter1, "Короткая вторая глава."]),
        ficbook_row("Пустая", "G", []),
    ]
    converted = convert_upstream(
        tmp_path, "fanfics", rows, suffix=".parquet", options={"max_chunk_size": 100}
    )
    got = rows_of(converted)
    assert all(len(r["text"]) <= 100 for r in got)
    assert {r["meta"]["part"] for r in got} == {0, 1}
    second = [r for r in got if r["meta"]["part"] == 1]
    assert [r["text"] for r in second] == ["Короткая вторая глава."]  # not glued to chapter 1
    first = [r["text"] for r in got if r["meta"]["part"] == 0]
    assert "\n\n".join(first).split() == chapter1.split()
    assert got[0]["meta"]["title"] == "Первая история" and got[0]["meta"]["rating"] == "PG-13"
    assert [(r.reason, r.row["title"]) for r in converted.rejections] == [("empty text", "Пустая")]


@pytest.mark.parametrize("plugin", ["gutenberg", "cinematika_text", "redpajama_sample", "fanfics"])
def test_text_plugins_check_chunk_size(tmp_path, plugin):
    from composer.plugins import get_plugin

    problems = get_plugin(plugin).option_problems({"max_chunk_size": 0})
    assert [key for key, _ in problems] == ["max_chunk_size"]


# ---------------------------------------------------------------- h2o_sft


def h2o_row(id, parent, n, system=None):
    return {
        "id": id,
        "parent_id": parent,
        "system": system,
        "instruction": f"Q{n}?",
        "output": f"A{n}.",
    }


def test_h2o_sft_chain_becomes_one_conversation_byte_for_byte(tmp_path):
    # LLM Studio's shape: one round per row, chained by parent_id, in any order in the file.
    rows = [h2o_row("r3", "r2", 3), h2o_row("r1", None, 1, "Be kind."), h2o_row("r2", "r1", 2)]
    converted = convert_upstream(tmp_path, "h2o_sft", rows, suffix=".parquet")
    (record,) = rows_of(converted)
    assert json.dumps(record["conversations"], ensure_ascii=False).encode() == (
        b'[{"from": "system", "value": "Be kind."}, {"from": "human", "value": "Q1?"}, '
        b'{"from": "gpt", "value": "A1."}, {"from": "human", "value": "Q2?"}, '
        b'{"from": "gpt", "value": "A2."}, {"from": "human", "value": "Q3?"}, '
        b'{"from": "gpt", "value": "A3."}]'
    )
    assert record["meta"]["ids"] == ["r1", "r2", "r3"]
    assert (converted.rows_read, converted.linked, converted.records.num_rows) == (3, 2, 1)


def test_h2o_sft_branches_every_row_and_broken_chains(tmp_path):
    rows = [
        h2o_row("a", None, 1),
        h2o_row("b", "a", 2),
        h2o_row("c", "a", 3),  # a branch: two conversations share round a
        h2o_row("x", "x", 4),  # its own parent
        h2o_row("y", "z", 5),  # z -> y -> z
        h2o_row("z", "y", 6),
    ]
    converted = convert_upstream(tmp_path, "h2o_sft", rows, suffix=".jsonl")
    ids = sorted(r["meta"]["ids"] for r in rows_of(converted))
    assert ids == [["a", "b"], ["a", "c"]]
    assert converted.linked == 1
    assert sorted((r.index, r.reason) for r in converted.rejections) == [
        (3, "its own parent"),
        (4, "a cycle of parent ids"),
        (5, "a cycle of parent ids"),
    ]
    every = convert_upstream(tmp_path, "h2o_sft", rows, options={"every_row": True})
    assert sorted(r["meta"]["ids"] for r in rows_of(every)) == [["a"], ["a", "b"], ["a", "c"]]
    assert every.linked == 0


def test_h2o_sft_without_ids_is_one_conversation_per_row(tmp_path):
    rows = [{"instruction": "Hi?", "output": "Hello."}, {"instruction": "Bye?", "output": "Bye."}]
    got = rows_of(convert_upstream(tmp_path, "h2o_sft", rows))
    assert [r["conversations"] for r in got] == [
        [human("Hi?"), gpt("Hello.")],
        [human("Bye?"), gpt("Bye.")],
    ]
