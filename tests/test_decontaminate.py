"""Decontamination with the real detectors: 13-gram overlap, and the packaged MiniLM with its
distilled static model and faiss. Small fixtures: a few benchmark items, a few conversations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import composer
from composer.benchmarks import Benchmark, BenchmarkItems, resolve
from composer.decontaminate import Detector, Settings, checked_texts
from composer.embeddings import EmbeddingCache, TransformerEmbedder, text_keys
from composer.errors import ManifestError, UserError
from tests.helpers import invoke, read_rendered, write_jsonl, write_manifest

ITEMS = [
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips "
    "in May. How many clips did Natalia sell altogether in April and May?",
    "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of "
    "babysitting. How much did she earn?",
    "Which of the following best describes the primary function of mitochondria in "
    "eukaryotic cells: protein synthesis, energy production, lipid storage, or cell division?",
]
REWORDED = (  # ITEMS[1] with synonyms and another name: the same numbers
    "Priya makes $12 per hour for childminding. Yesterday, she only did 50 minutes of "
    "childminding. How much money did she make?"
)
SAME_STYLE = (  # the same style as ITEMS[1], another problem
    "Tom earns $15 an hour for mowing lawns. Yesterday, he mowed for 40 minutes. "
    "How much did he earn?"
)
CLEAN = "Can you recommend a good recipe for banana bread with walnuts?"


def conv(*turns: str) -> list[dict]:
    return [{"from": "human" if i % 2 == 0 else "gpt", "value": t} for i, t in enumerate(turns)]


def records_table(records: list[dict]):
    import pyarrow as pa

    from composer.records import SCHEMA

    n = len(records)
    return pa.Table.from_pydict(
        {
            "id": [str(i) for i in range(n)],
            "source": ["s"] * n,
            "kind": ["dpo" if "chosen" in r else "sft" for r in records],
            "conversations": [r.get("conversations") for r in records],
            "chosen": [r.get("chosen") for r in records],
            "rejected": [r.get("rejected") for r in records],
            "text": [r.get("text") for r in records],
            "meta": ["{}"] * n,
        },
        schema=SCHEMA,
    )


@pytest.fixture(scope="module")
def detector():
    items = BenchmarkItems(Benchmark("bench", ("q",)), [f"b/{i}" for i in range(3)], ITEMS)
    return Detector([items], Settings())


def found(detector, records, kind="sft", **settings):
    detector.settings = Settings(**settings) if settings else Settings()
    checked = checked_texts(records_table(records), kind, detector.settings)
    return {
        (checked.record[m.text], checked.part[m.text], m.detector) for m in detector.scan(checked)
    }


def test_verbatim_case_spacing_and_wrapping_are_ngram_matches(detector):
    shouted = "  ".join(ITEMS[0].upper().split())
    records = [
        {"conversations": conv(ITEMS[0], "72")},
        {"conversations": conv(shouted, "72")},
        {"conversations": conv(f"Solve this step by step: {ITEMS[1]} Thanks!", "$10")},
        {"conversations": conv(CLEAN, "Sure.")},
    ]
    hits = found(detector, records)
    assert {(r, d) for r, _, d in hits} >= {(0, "ngram"), (1, "ngram"), (2, "ngram")}
    assert not any(r == 3 for r, _, _ in hits)


def test_a_reworded_item_is_an_embedding_match_and_a_same_style_item_is_not(detector):
    hits = found(
        detector,
        [{"conversations": conv(REWORDED, "72")}, {"conversations": conv(SAME_STYLE, "105")}],
        ngram=0,
    )
    assert {(r, d) for r, _, d in hits} == {(0, "embedding")}


def test_a_pair_without_evidence_goes_on_only_with_words_in_common(detector):
    """static_close lowered: these pairs have no evidence, and their first pass is close."""
    far = "What do mitochondria mainly do inside cells?"  # few of the item's words
    near = (
        "Which of the following best describes the primary role of mitochondria in "
        "eukaryotic cells: making proteins, producing energy, storing lipids, or dividing?"
    )

    def rescored(text: str, **settings) -> tuple[list[str], set]:
        before = len(detector.scores)
        matches = found(detector, [{"conversations": conv(text)}], static_close=0.5, **settings)
        return [evidence for evidence, _ in detector.scores[before:]], matches

    assert rescored(far, close_words=0.0) == (["none"], set())
    assert rescored(far) == ([], set())  # a Jaccard below close_words: not re-scored
    assert rescored(near) == (["none"], {(0, "turn 0 (human)", "embedding")})


def test_every_turn_is_checked_and_the_system_turn_only_if_asked(detector):
    later = {"conversations": conv(CLEAN, "Sure.", ITEMS[0], "72")}
    answer = {
        "conversations": conv(
            "Give me a practice problem.",
            "Here is one from a worksheet. " * 30 + ITEMS[1] + " Good luck!",
        )
    }
    system = {"conversations": [{"from": "system", "value": ITEMS[2]}, *conv(CLEAN, "Sure.")]}
    hits = found(detector, [later, answer, system])
    assert (0, "turn 2 (human)", "ngram") in hits
    assert (1, "turn 1 (gpt)", "ngram") in hits
    assert not any(r == 2 for r, _, _ in hits)
    assert (2, "turn 0 (system)", "ngram") in found(detector, [later, answer, system], system=True)


def test_a_long_answer_is_checked_in_windows(detector):
    """An item inside a long answer: only a window around it is close enough to the item."""
    filler = "This paragraph is about gardening and the care of tomato plants in summer. " * 6
    record = {"conversations": conv("Write something.", filler + ITEMS[1] + " " + filler)}
    assert len(record["conversations"][1]["value"].split()) > Settings().window  # windowed
    assert (0, "turn 1 (gpt)", "embedding") in found(detector, [record], ngram=0)
    assert (
        found(detector, [{"conversations": conv("Write something.", filler * 2)}], ngram=0) == set()
    )


def test_a_windows_words_are_the_words_read_from_it():
    """Windowed.of slices an ASCII text's words for its windows (no regex again): the same
    words as reading each window, in any script; a short text is its own window."""
    from composer.decontaminate import Windowed, windows
    from composer.ngrams import words

    settings = Settings(window=8, stride=4)
    texts = [
        "The quick brown fox, jumps over 12,500 lazy dogs; and_then it rests. " * 3,
        "İstanbul'da ÇOK güzel bir GÜN; İİ straße ǅemal Ⅻ déjà-vu naïve café. " * 3,
        "short text",
    ]
    out = Windowed.of(texts, settings)
    assert out.windows == [w for t in texts for w in windows(t, 8, 4)]
    assert len(out.windows) > 6 and out.windows[-1] == "short text"
    assert out.window_words == [words(w) for w in out.windows]


def test_dpo_context_chosen_and_rejected_and_text_chunks_are_checked(detector):
    pairs = [
        {"conversations": conv(ITEMS[0]), "chosen": "72", "rejected": "70"},
        {"conversations": conv(CLEAN), "chosen": ITEMS[1], "rejected": "no"},
        {"conversations": conv(CLEAN), "chosen": "yes", "rejected": ITEMS[2]},
    ]
    parts = {(r, p) for r, p, _ in found(detector, pairs, "dpo")}
    assert parts == {(0, "turn 0 (human)"), (1, "chosen"), (2, "rejected")}
    text = found(detector, [{"text": "Notes. " + ITEMS[2]}, {"text": CLEAN}], "text")
    assert {(r, p) for r, p, _ in text} == {(0, "text")}


def test_the_static_embedder_gives_model2vecs_vectors_by_way_of_words(composer_cache):
    """Words are embedded once and summed; the result must equal model2vec's token mean,
    across batch boundaries, with accents, CJK, emoji, control characters and empty texts."""
    import numpy as np
    from model2vec import StaticModel

    from composer.embeddings import DEFAULT_MODEL, StaticEmbedder, cache_dir, model_id

    texts = [
        "Natalia sold clips to 48 of her friends in April.",
        "naïve CAFÉ résumé, déjà-vu!!",
        "東京タワーは高い。 Ein Straßenbahn fährt.",
        "tabs\tand\nnew lines  and x\x00y control characters",
        "emoji 🦄 and ☃ are unknown tokens",
        "",
        "   ",
        "word " * 300,
    ] * 3
    static = StaticEmbedder()
    static.batch_size = 5  # several batches, each with its own word table
    ours = static.encode(texts)
    reference = StaticModel.from_pretrained(str(cache_dir() / "static" / model_id(DEFAULT_MODEL)))
    theirs = reference.encode(texts, max_length=None, use_multiprocessing=False)
    norms = np.linalg.norm(theirs, axis=1, keepdims=True)
    theirs = theirs / np.maximum(norms, 1e-12)
    assert np.allclose(ours, theirs, atol=1e-5)
    assert not ours[5].any() and not ours[6].any()  # no words: a zero vector, not NaN


def test_the_ngram_prefilter_never_drops_a_match():
    """The bucket flags reject n-grams that no item has; a brute-force count must agree."""
    import random

    from composer.ngrams import NgramIndex, words

    rng = random.Random(3)
    vocab = [f"w{i}" for i in range(60)]  # a small vocabulary: many shared 13-grams
    items = [" ".join(rng.choice(vocab) for _ in range(rng.randint(8, 40))) for _ in range(30)]
    texts = [" ".join(rng.choice(vocab) for _ in range(50)) for _ in range(40)]
    texts += [f"intro {items[i]} outro" for i in range(0, 30, 3)]
    index = NgramIndex.build(items)
    found = {(t, i) for t, i, _ in index.match([words(t) for t in texts], min_overlap=1.0)}

    def grams(ws, n):
        return {tuple(ws[k : k + n]) for k in range(len(ws) - n + 1)}

    expected = set()
    for i, item in enumerate(items):
        n = min(len(words(item)), 13)
        need = grams(words(item), n)
        for t, text in enumerate(texts):
            if need <= grams(words(text), n):
                expected.add((t, i))
    assert found == expected
    assert {(40 + k, 3 * k) for k in range(10)} <= found


def test_the_embedding_cache_is_keyed_by_text_and_survives_a_corrupt_shard(tmp_path):
    cache = EmbeddingCache(tmp_path)
    key = int(text_keys(["hello"])[0])
    cache.put(key, [1.0, 2.0])
    cache.save()
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    again = EmbeddingCache(tmp_path)
    assert list(again.get(key)) == [1.0, 2.0]


def test_the_transformer_embeds_a_text_once(composer_cache):
    embedder = TransformerEmbedder()
    embedder.encode(["a sentence about cats", "a sentence about dogs"])
    first = embedder.computed
    again = TransformerEmbedder()  # a new build: reads the cache from disk
    vectors = again.encode(["a sentence about dogs", "a sentence about cats"])
    assert first == 2 and again.computed == 0
    assert vectors.shape == (2, 384)


def manifest_with(tmp_path: Path, **decontaminate) -> Path:
    write_jsonl(tmp_path / "bench.jsonl", [{"question": q, "answer": "x"} for q in ITEMS])
    write_jsonl(
        tmp_path / "chat.jsonl",
        [
            {"conversations": conv(ITEMS[0], "72")},
            {"conversations": conv(REWORDED, "72")},
            {"conversations": conv(SAME_STYLE, "105")},
            {"conversations": conv(CLEAN, "Sure, here is one.")},
        ],
    )
    config = {
        "benchmarks": [{"name": "gsm8k", "path": "bench.jsonl", "split": "test"}],
        **decontaminate,
    }
    return write_manifest(
        tmp_path,
        [{"name": "chat", "plugin": "sharegpt", "path": "chat.jsonl"}],
        output={"dir": "out"},
        decontaminate=config,
    )


def test_a_build_removes_contaminated_rows_and_audits_each(tmp_path):
    result = composer.build(manifest_with(tmp_path))
    [source] = result.report["sources"]
    assert (source["after_dedup"], source["contaminated"], source["sampled"]) == (4, 2, 2)
    assert source["contaminated_by"] == {"gsm8k": 2}
    kept = {r["prompt"] for r in read_rendered(tmp_path / "out", "sft")}
    assert any(SAME_STYLE in k for k in kept) and any(CLEAN in k for k in kept)
    assert not any(ITEMS[0] in k or REWORDED in k for k in kept)
    audit = [json.loads(line) for line in (tmp_path / "out" / "contamination.jsonl").open()]
    assert {(a["detector"], a["part"], a["item"]) for a in audit} >= {
        ("ngram", "turn 0 (human)", ITEMS[0]),
        ("embedding", "turn 0 (human)", ITEMS[1]),
    }
    assert all(a["source"] == "chat" and a["benchmark"] == "gsm8k" and a["removed"] for a in audit)
    assert {a["upstream"]["row"] for a in audit} == {0, 1}  # the rows' 0-based indexes
    assert "## Contamination" in (tmp_path / "out" / "report.md").read_text()


def test_a_rebuild_reuses_the_cached_embeddings(tmp_path, composer_cache_env):
    from composer.cache import StageCache

    cache = StageCache(composer_cache_env)
    (composer_cache_env / "embeddings").unlink()  # embeddings of this test's own
    path = manifest_with(tmp_path)
    first = composer.build(path)
    embedded = [e["count"] for e in cache.events() if e["event"] == "embedded"]
    assert embedded and embedded[-1] > 0
    cache.clear(["output", "decontaminate", "benchmarks"])  # only the embeddings are left
    again = composer.build(path)
    assert [e["count"] for e in cache.events() if e["event"] == "embedded"][-1] == 0
    assert again.report == first.report


def test_report_only_keeps_every_row_and_the_command_shows_scores(tmp_path, composer_cache_env):
    path = manifest_with(tmp_path, report_only=True)
    uncached = invoke("decontaminate", str(path), "--no-cache")
    assert uncached.exit_code == 0, uncached.output
    assert not (composer_cache_env / "stages").exists()  # --no-cache: nothing stored
    [source] = composer.build(path).report["sources"]
    assert (source["contaminated"], source["sampled"]) == (0, 4)
    result = invoke("decontaminate", str(path), "-o", str(tmp_path / "m.jsonl"))
    assert result.exit_code == 0, result.output
    assert "chat" in result.stdout and "Transformer cosine" in result.stdout
    assert result.stdout.startswith(uncached.stdout)  # the same, then "Wrote 2 matches"
    assert len((tmp_path / "m.jsonl").read_text().splitlines()) >= 2


def test_unknown_benchmark_names_and_missing_files_are_manifest_errors(tmp_path):
    write_jsonl(tmp_path / "chat.jsonl", [{"conversations": conv(CLEAN, "ok")}])
    path = write_manifest(
        tmp_path,
        [{"name": "chat", "plugin": "sharegpt", "path": "chat.jsonl"}],
        decontaminate={
            "benchmarks": ["gsm8", {"name": "mine", "path": "no.jsonl", "fields": ["q"]}]
        },
    )
    with pytest.raises(ManifestError) as error:
        composer.load_manifest(path)
    text = str(error.value)
    assert (
        "decontaminate.benchmarks[0].name: unknown benchmark 'gsm8' (did you mean 'gsm8k'?)" in text
    )
    assert "decontaminate.benchmarks[1].path: no such file: no.jsonl" in text


def test_a_builtin_benchmark_can_be_pointed_at_a_local_file():
    spec = resolve({"name": "gsm8k", "path": "x.jsonl", "fields": ["question", "answer"]})
    assert (spec.path, spec.hub, spec.fields, spec.split) == (
        "x.jsonl",
        None,
        ("question", "answer"),
        "test",
    )
    with pytest.raises(UserError, match="did you mean 'mmlu'"):
        resolve("mmla")


def test_benchmarks_command_lists_the_registry():
    result = invoke("benchmarks")
    for name in (
        "mmlu",
        "gsm8k",
        "arc_challenge",
        "arc_easy",
        "hellaswag",
        "truthfulqa",
        "humaneval",
        "mbpp",
        "winogrande",
        "drop",
        "math",
        "ifeval",
        "mt_bench",
        "alpaca_eval",
    ):
        assert name in result.stdout


CODE_ITEMS = [
    "from typing import List\n\n\ndef count_close_pairs(values: List[float], gap: float) -> int:\n"
    '    """ Count the pairs of values in the list that are closer to each other than the\n'
    '    given gap.\n    >>> count_close_pairs([1.0, 2.8, 3.0, 4.0], 0.3)\n    1\n    """\n',
    'def sort_array(array):\n    """\n    Given an array of non-negative integers, return a copy\n'
    "    sorted in ascending order when the sum of the first and last values is odd, and in\n"
    "    descending order when it is even.\n    >>> sort_array([2, 4, 3, 0, 1, 5])\n"
    '    [0, 1, 2, 3, 4, 5]\n    """\n',
]
RENAMED = (  # CODE_ITEMS[0]: another function name, the docstring in other words
    "Finish this function.\n\nfrom typing import List\n\n\n"
    "def close_ones(values: List[float], gap: float) -> int:\n"
    '    """ Return how many pairs of values in the list lie nearer to one another than gap. """\n'
)
JAVA_MERGE = (
    "Write a Java method that merges two sorted arrays into one sorted array.",
    "public static int[] merge(int[] a, int[] b) {\n    int[] out = new int[a.length + b.length];\n"
    "    int i = 0, j = 0, k = 0;\n    while (i < a.length && j < b.length) {\n"
    "        out[k++] = a[i] <= b[j] ? a[i++] : b[j++];\n    }\n"
    "    while (i < a.length) out[k++] = a[i++];\n    while (j < b.length) out[k++] = b[j++];\n"
    "    return out;\n}",
)


@pytest.fixture(scope="module")
def code_detector():
    items = BenchmarkItems(Benchmark("humaneval", ("prompt",)), ["h/0", "h/1"], CODE_ITEMS)
    return Detector([items], Settings())


def test_a_code_items_marks_are_its_names_and_signatures_not_its_numbers(code_detector):
    from composer.code_marks import code_marks

    marks = code_marks(CODE_ITEMS[0])
    assert marks.signatures == (
        " count_close_pairs values list float gap float int ",
        " values list float gap float int ",
    )
    assert "1 0 2 8 3 0" in marks.phrases  # a test value; the name is in no phrase
    assert not any("count_close_pairs" in p for p in marks.phrases)
    assert code_marks(ITEMS[0]) is None  # not code: its numbers are its evidence
    assert code_detector.evidence.numbers == [frozenset(), frozenset()]


def test_a_renamed_function_is_caught_and_an_ordinary_code_task_is_not(code_detector):
    before = len(code_detector.scores)
    hits = found(
        code_detector,
        [
            {"conversations": conv(RENAMED, "Here it is.")},
            {"conversations": conv(*JAVA_MERGE)},
            {"conversations": conv("Sort an array of integers in Python.", "sorted([3, 1, 2])")},
        ],
        ngram=0,
    )
    assert {(r, d) for r, _, d in hits} == {(0, "embedding")}
    assert ("code", pytest.approx(1, abs=0.4)) in code_detector.scores[before:]


def test_the_same_build_with_one_and_with_two_workers(tmp_path, monkeypatch):
    import composer.decontaminate as decontaminate
    from composer.engines.pool import PoolEngine

    monkeypatch.setattr(decontaminate, "SCAN_CHUNK", 1)  # four chunks: the workers share them
    monkeypatch.setattr(decontaminate, "SCAN_TEXTS", 1)  # tasks of one distinct text
    monkeypatch.setattr(decontaminate, "SCAN_POOL_TASKS", 2)
    path = manifest_with(tmp_path)
    one = composer.build(path, tmp_path / "one", cache=False, workers=1)
    with PoolEngine(2) as engine:
        composer.build(path, tmp_path / "two", cache=False, engine=engine)
        # One source of four records: loading and rendering stay here, the scan does not.
        assert engine._executor is not None
    assert one.report["sources"][0]["contaminated"] == 2
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*"))
    assert files == sorted(p.relative_to(tmp_path / "two") for p in (tmp_path / "two").rglob("*"))
    for name in files:
        if (tmp_path / "one" / name).is_file():
            assert (tmp_path / "one" / name).read_bytes() == (
                tmp_path / "two" / name
            ).read_bytes(), name


def test_the_scan_starts_no_workers_for_a_few_tasks(monkeypatch):
    """Below SCAN_POOL_TASKS tasks the scan stays in the driver: starting workers, each
    loading the index and the models, would cost more than it saves (above it, the pool
    scans: test_the_same_build_with_one_and_with_two_workers). The items' evidence is made
    where the scan runs, on first use: a driver whose workers scan never makes it."""
    import composer.decontaminate as decontaminate
    from composer.engines.pool import PoolEngine

    items = BenchmarkItems(Benchmark("bench", ("q",)), [f"b/{i}" for i in range(3)], ITEMS)
    table = records_table(
        [{"conversations": conv(REWORDED, "72")}, {"conversations": conv(CLEAN, "Sure.")}]
    )
    monkeypatch.setattr(decontaminate, "SCAN_TEXTS", 1)  # four distinct texts: four tasks
    monkeypatch.setattr(decontaminate, "SCAN_POOL_TASKS", 5)  # one more than the tasks
    detector = Detector([items], Settings())
    assert "evidence" not in vars(detector)
    with PoolEngine(2) as engine:
        scan = decontaminate.scan_all(detector, {"s": table}, {"s": "sft"}, True, engine)
        assert engine._executor is None
    assert "evidence" in vars(detector)
    assert scan["s"].removed.tolist() == [True, False]


def test_the_scan_takes_the_same_texts_from_arrow_as_checked_texts():
    """scan_all reads a source's texts with Arrow (source_texts): the same texts, records and
    parts, in the same order, as checked_texts, on a slice, with empty and system turns."""
    from composer.decontaminate import source_texts

    records = [
        {"conversations": [{"from": "system", "value": "Be brief."}, *conv("Hi", "")]},
        {"conversations": conv(CLEAN, "Sure.", ITEMS[0]), "chosen": "72", "rejected": ""},
        {"conversations": [], "chosen": "yes", "rejected": "no"},
        {"conversations": conv("", "Hi"), "chosen": None, "rejected": "Sure."},
    ]
    for kind in ("sft", "dpo"):
        for system in (False, True):
            settings = Settings(system=system)
            table = records_table([records[0], *records]).slice(1)
            checked = checked_texts(table, kind, settings)
            arrow = source_texts(table, kind, settings)
            assert arrow.values.to_pylist() == checked.texts
            assert arrow.record.tolist() == checked.record
            assert [arrow.part(i) for i in range(len(arrow.record))] == checked.part
    table = records_table([{"text": "One."}, {"text": ""}, {"text": None}, {"text": "One."}])
    checked, arrow = (
        checked_texts(table, "text", Settings()),
        source_texts(table, "text", Settings()),
    )
    assert (arrow.values.to_pylist(), arrow.record.tolist()) == (checked.texts, checked.record)


def test_a_source_scan_finds_what_the_detector_finds_text_by_text(detector):
    """The build's scan (distinct texts of every source at once, then each record told its
    texts' matches) and the detector's scan of checked texts agree, repeats included."""
    from composer.decontaminate import scan_records

    records = [
        {"conversations": conv(ITEMS[0], "72")},
        {"conversations": conv(CLEAN, REWORDED)},
        {"conversations": conv(SAME_STYLE, "Sure.")},
        {"conversations": conv(ITEMS[0], "Sure.", ITEMS[2])},
    ]
    detector.settings = Settings()
    scan = scan_records(detector, records_table(records), "sft")
    audited = [(a["id"], a["part"], a["detector"], a["item_id"]) for a in scan.audit]
    checked = checked_texts(records_table(records), "sft", detector.settings)
    direct = [
        (str(checked.record[m.text]), checked.part[m.text], m.detector, detector.item_ids[m.item])
        for m in detector.scan(checked)
    ]
    assert audited == direct
    assert scan.removed.tolist() == [True, True, False, True]


def test_the_static_embedder_keeps_word_vectors_for_later_batches(composer_cache):
    """Words seen in an earlier batch are not tokenized again, and give the same vectors."""
    import numpy as np

    import composer.embeddings as embeddings

    texts = [ITEMS[0], ITEMS[1], ITEMS[0].upper(), REWORDED, CLEAN, "", SAME_STYLE]
    static = embeddings.StaticEmbedder()
    static.batch_size = 2
    kept = static.encode(texts)
    assert static.word_rows and set(ITEMS[0].split()) <= set(static.word_rows)
    fresh = embeddings.StaticEmbedder()
    fresh.batch_size = len(texts)
    assert np.array_equal(kept, fresh.encode(texts))
    assert np.array_equal(kept, static.encode(texts))  # every word known now


def test_the_inverted_file_search_in_cell_order_finds_what_faiss_finds():
    """search() reads the queries in the order of the cells they probe: the same neighbours
    and cosines as faiss's own search, query by query."""
    from composer.decontaminate import item_index, search

    rng = np.random.default_rng(0)
    items = rng.standard_normal((20_000, 32)).astype(np.float32)
    items /= np.linalg.norm(items, axis=1, keepdims=True)
    index = item_index(items)
    assert type(index).__name__ == "IndexIVFFlat"
    queries = items[rng.integers(0, len(items), 3000)] + 0.3 * rng.standard_normal(
        (3000, 32)
    ).astype(np.float32)
    expected = index.search(queries, 2)
    got = search(index, queries, 2)
    assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
    flat = item_index(items[:100])  # exact search: faiss's, a query at a time
    alone = [flat.search(q[None], 2) for q in queries[:200]]
    got = search(flat, queries[:200], 2)
    assert np.array_equal(got[0], np.concatenate([d for d, _ in alone]))
    assert np.array_equal(got[1], np.concatenate([i for _, i in alone]))


@pytest.mark.parametrize("items", [1000, 20_000])
def test_a_querys_neighbours_do_not_depend_on_the_queries_searched_with_it(items):
    """faiss scores 20 queries or more against a flat index (or an inverted file's cells)
    with one matrix product, whose last bits depend on the batch and the threads. search()
    gives a query what it gives it alone, in any batch, on any number of threads: a text's
    scan depends on that text alone, whichever texts a worker scans with it."""
    import faiss

    from composer.decontaminate import item_index, search

    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((items, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = item_index(vectors)
    queries = rng.standard_normal((600, 64)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    alone = [search(index, q[None], 2) for q in queries]
    threads = faiss.omp_get_max_threads()
    try:
        for workers in (1, 2):
            faiss.omp_set_num_threads(workers)
            for batch in (7, 20, 64, 600):
                for at in range(0, len(queries), batch):
                    sims, ids = search(index, queries[at : at + batch], 2)
                    assert np.array_equal(sims, np.concatenate([s for s, _ in alone[at:][:batch]]))
                    assert np.array_equal(ids, np.concatenate([i for _, i in alone[at:][:batch]]))
    finally:
        faiss.omp_set_num_threads(threads)


def test_a_texts_scan_is_the_same_alone_and_among_others(detector):
    """The detector's scan of a text (windows, pairs, cosines, matches) is a function of
    the text: what scan_held relies on to scan texts in other batches than scan_all."""
    texts = [ITEMS[0], REWORDED, SAME_STYLE, CLEAN, "Sure.", ITEMS[2] + " " + CLEAN * 20]
    texts += [f"{CLEAN} {i} {SAME_STYLE}" for i in range(40)]
    detector.settings = Settings()
    together = detector._scan_texts(texts)
    assert any(not isinstance(s, int) and s.pairs for s in together)
    assert together == [detector._scan_texts([t])[0] for t in texts]


@pytest.mark.parametrize("parts", [1, 3, 7])
def test_the_held_scans_steps_give_scan_alls_result(detector, monkeypatch, parts):
    """composer.scan_held's steps (texts split by hash, each part's distinct texts, their
    scans, each source told its texts' scans), here in one process: each source's scan is
    scan_all's, whatever the number of parts, with texts that sources share, a contaminated
    one among them, and SFT, DPO and text sources."""
    from dataclasses import asdict

    import composer.decontaminate as decontaminate
    import composer.scan_held
    from composer.engines import engine_for
    from composer.scan_held import scan_held

    monkeypatch.setattr(decontaminate, "SCAN_TEXTS", 2)  # scan_held reads it from there
    for module in (decontaminate, composer.scan_held):
        monkeypatch.setattr(module, "SCAN_CHUNK", 2)
    tables = {
        "chat": records_table(
            [
                {"conversations": conv(ITEMS[0], "72")},
                {"conversations": conv(CLEAN, REWORDED)},
                {"conversations": conv(SAME_STYLE, "Sure.", ITEMS[2], "72")},
                {"conversations": conv("Hi", "Sure.")},
            ]
        ),
        "pairs": records_table(
            [
                {"conversations": conv(CLEAN), "chosen": ITEMS[0], "rejected": "Sure."},
                {"conversations": conv("Hi"), "chosen": "72", "rejected": "70"},
            ]
        ),
        "notes": records_table([{"text": "Notes. " + ITEMS[2]}, {"text": CLEAN}]),
    }
    kinds = {"chat": "sft", "pairs": "dpo", "notes": "text"}
    detector.settings = Settings()
    with engine_for(1) as engine:
        expected = decontaminate.scan_all(detector, tables, kinds, False, engine)
        got = scan_held(detector, tables, kinds, False, engine, parts=parts)
    assert list(got) == list(expected)
    for name, scan in expected.items():
        want, have = asdict(scan), asdict(got[name])
        assert np.array_equal(want.pop("removed"), have.pop("removed"))
        assert have == want
    assert all(expected[name].audit for name in tables)  # a match in every source
