"""Seeded draws and the train/validation split, by dedup id, stratified by source.

Unit tests for `composer.draws.uniforms` and `composer.split.validation_quota`; the rest
build real manifests (files written into tmp_path) and read the output files back to check
that no id is on both sides, in any format file, that each source gives exactly its quota,
and that the split is fixed by the seed (`--seed` included) and nothing else.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import composer
from composer.draws import generator, uniform, uniforms
from composer.split import validation_quota
from tests.helpers import invoke, read_parquet, read_rendered, uuid5, write_jsonl, write_manifest

IDS = [uuid5(f"item {i}") for i in range(20_000)]


# ---------------------------------------------------------------- draws


def test_uniforms_are_in_the_unit_interval_and_deterministic():
    a = uniforms(42, IDS, "split")
    assert a.shape == (len(IDS),) and a.dtype == np.float64
    assert a.min() >= 0.0 and a.max() < 1.0
    assert np.array_equal(a, uniforms(42, IDS, "split"))
    assert uniforms(42, [], "split").shape == (0,)


def test_draws_of_an_arrow_array_are_those_of_its_strings():
    """The split draws a million ids from an Arrow array, read from its bytes: the same
    numbers as from the strings, for a slice (an offset into the buffers) too."""
    import pyarrow as pa

    column = pa.array(IDS)
    assert np.array_equal(uniforms(42, column, "split"), uniforms(42, IDS, "split"))
    part = column.slice(1_234, 500)
    assert np.array_equal(uniforms(7, part, "test"), uniforms(7, IDS[1_234:1_734], "test"))
    assert uniforms(7, column.slice(0, 0), "test").shape == (0,)


def test_a_draw_depends_on_the_id_not_its_position():
    a = uniforms(3, IDS[:500], "split")
    shuffled = list(reversed(IDS[:500]))
    assert np.array_equal(uniforms(3, shuffled, "split")[::-1], a)
    assert np.array_equal(uniforms(3, IDS[100:200], "split"), a[100:200])
    assert uniform(3, IDS[7], "split") == a[7]


def test_uniforms_are_roughly_uniform():
    a = uniforms(42, IDS, "split")
    counts = np.histogram(a, bins=20, range=(0, 1))[0]
    expected = len(IDS) / 20
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 45  # 19 degrees of freedom: p < 1e-3 above ~43.8
    assert abs(a.mean() - 0.5) < 0.01
    assert abs(np.median(a) - 0.5) < 0.02
    # neighbouring ids (uuid5 of similar text) are not correlated
    assert abs(np.corrcoef(a[:-1], a[1:])[0, 1]) < 0.03


@pytest.mark.parametrize(
    "other",
    [(43, ("split",)), (42, ("sample",)), (42, ("split", "x")), (42, ("alpaca", "coverage"))],
)
def test_uniforms_differ_by_seed_and_purpose(other):
    a = uniforms(42, IDS[:5000], "split")
    seed, purpose = other
    b = uniforms(seed, IDS[:5000], *purpose)
    assert not np.any(a == b)
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.05
    # and the order they put ids in is unrelated: few of the lowest 10% stay the lowest
    low_a, low_b = set(np.argsort(a)[:500]), set(np.argsort(b)[:500])
    assert len(low_a & low_b) < 100


def test_generator_is_seeded_by_seed_and_purpose():
    def draw(*key: object) -> list[float]:
        return generator(*key).random(8).tolist()

    assert draw(1, "sample", "a") == draw(1, "sample", "a")
    assert draw(1, "sample", "a") != draw(1, "sample", "b")
    assert draw(1, "sample", "a") != draw(2, "sample", "a")


# ---------------------------------------------------------------- the quota


def test_quota_examples():
    assert validation_quota({"a": 50, "b": 30, "c": 20}, 0.1) == {"a": 5, "b": 3, "c": 2}
    assert validation_quota({"a": 50, "b": 30, "c": 20}, 10) == {"a": 5, "b": 3, "c": 2}
    # largest remainder: 5 * 7/10 = 3.5, 5 * 3/10 = 1.5: one more to the first name on a tie
    assert validation_quota({"b": 7, "a": 3}, 5) == {"b": 3, "a": 2}
    # 2 over three equal sources: two of them give one each
    assert validation_quota({"x": 1, "y": 1, "z": 1}, 2) == {"x": 1, "y": 1, "z": 0}
    # 10 * 0.62 = 6.2 | 10 * 0.25 = 2.5 | 10 * 0.13 = 1.3 -> 6, 2, 1 and the 10th to b
    assert validation_quota({"a": 62, "b": 25, "c": 13}, 10) == {"a": 6, "b": 3, "c": 1}
    assert validation_quota({"a": 4, "b": 6}, 100) == {"a": 4, "b": 6}  # capped at the total
    assert validation_quota({"a": 4, "b": 6}, 0) == {"a": 0, "b": 0}
    assert validation_quota({"a": 4, "b": 6}, 0.0) == {"a": 0, "b": 0}
    assert validation_quota({"a": 0, "b": 0}, 0.5) == {"a": 0, "b": 0}
    assert validation_quota({}, 0.5) == {}


@given(
    st.dictionaries(st.text("abcdefgh", min_size=1, max_size=3), st.integers(0, 500), max_size=8),
    st.one_of(st.floats(0, 0.99), st.integers(0, 3000)),
)
@settings(max_examples=150)
def test_quota_is_an_exact_largest_remainder_share(sizes, validation):
    quota = validation_quota(sizes, validation)
    total = sum(sizes.values())
    assert set(quota) == set(sizes)
    if not total or not validation:
        assert set(quota.values()) <= {0}
        return
    target = round(validation * total) if isinstance(validation, float) else min(validation, total)
    assert sum(quota.values()) == target
    for name, size in sizes.items():
        share = target * size / total
        assert math.floor(share) <= quota[name] <= math.ceil(share)
        assert 0 <= quota[name] <= size
    # the sources rounded up are those with the largest remainders
    up = [n for n in sizes if quota[n] > math.floor(target * sizes[n] / total)]
    down = [n for n in sizes if quota[n] == math.floor(target * sizes[n] / total)]
    rem = {n: target * sizes[n] / total - math.floor(target * sizes[n] / total) for n in sizes}
    if up and down:
        assert min(rem[n] for n in up) >= max(rem[n] for n in down) - 1e-9


# ---------------------------------------------------------------- builds


def split_manifest(folder: Path, sources: list[dict], **manifest) -> Path:
    """Named `split`, holding out 20% for validation, unless `manifest` says otherwise."""
    return write_manifest(
        folder, sources, **{"name": "split", "split": {"validation": 0.2}, **manifest}
    )


def mixture(folder: Path) -> list[dict]:
    """Multi-turn SFT (with repeats of instructions), an upsampled SFT source, DPO, text."""
    chats = []
    for i in range(60):
        turns = [
            {"from": "human", "value": f"chat question {i % 45}"},
            {"from": "gpt", "value": f"answer {i}"},
        ]
        if i % 2:
            turns += [
                {"from": "human", "value": f"follow-up {i}"},
                {"from": "gpt", "value": f"second answer {i}"},
            ]
        chats.append({"conversations": turns})
    alpaca = [{"instruction": f"task {i}", "output": f"done {i}"} for i in range(25)]
    pairs = [
        {"prompt": f"pair {i}", "chosen": f"yes {i}", "rejected": f"no {i}"} for i in range(30)
    ]
    text = [
        {"text": "\n\n".join(f"Story {i}, paragraph {p}. " + "word " * 30 for p in range(4))}
        for i in range(8)
    ]
    return [
        {
            "name": "chat",
            "plugin": "sharegpt",
            "path": write_jsonl(folder / "chat.jsonl", chats),
            "confidence": 2,
        },
        {
            "name": "tasks",
            "plugin": "alpaca",
            "path": write_jsonl(folder / "tasks.jsonl", alpaca),
            "sample": 2.5,
        },
        {"name": "pairs", "plugin": "dpo", "path": write_jsonl(folder / "pairs.jsonl", pairs)},
        {
            "name": "stories",
            "plugin": "text",
            "path": write_jsonl(folder / "text.jsonl", text),
            "options": {"max_chunk_size": 300},
        },
    ]


def kind_of(rel: str) -> str:
    """The record kind of an output file set: `sft/messages`, `formats/chatml/dpo`, `text`."""
    parts = rel.split("/")
    return parts[2] if parts[0] == "formats" else parts[0]


def sides(out: Path) -> dict[str, dict[str, set[str]]]:
    """For each kind, the record ids on each side, read from every output file (every row
    carries its record's id)."""
    found: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for path in sorted(out.rglob("*.parquet")):
        if path.parent == out:
            continue  # records.parquet
        rel = path.parent.relative_to(out).as_posix()
        split = path.stem
        variants = [read_parquet(path)]
        for suffix, load in (
            (".jsonl", lambda p: [json.loads(line) for line in p.read_text("utf-8").splitlines()]),
            (".json", lambda p: json.loads(p.read_text("utf-8"))),
        ):
            if path.with_suffix(suffix).exists():
                variants.append(load(path.with_suffix(suffix)))
        for rows in variants:
            found[kind_of(rel)][split].update(row["id"] for row in rows)
    return found


def test_no_id_on_both_sides_in_any_file(tmp_path):
    path = split_manifest(
        tmp_path,
        mixture(tmp_path),
        formats=["chatml", "alpaca", "llama2"],
        output={"jsonl": True, "json": True},
    )
    out = composer.build(path, output_dir=tmp_path / "out").output_dir
    found = sides(out)
    assert set(found) == {"sft", "dpo", "text"}
    for kind, by_side in found.items():
        assert by_side["train"] and by_side["validation"], kind
        assert not by_side["train"] & by_side["validation"], kind
    # records.parquet: one split per id, and the same split the rendered files show
    split_of: dict[tuple[str, str], set[str]] = defaultdict(set)
    for r in read_parquet(out / "records.parquet"):
        split_of[(r["kind"], r["id"])].add(r["split"])
    assert all(len(s) == 1 for s in split_of.values())
    for kind, by_side in found.items():
        for side in ("train", "validation"):
            assert all(split_of[(kind, i)] == {side} for i in by_side[side])


def test_split_is_by_dedup_id_so_every_turn_and_copy_goes_together(tmp_path):
    path = split_manifest(tmp_path, mixture(tmp_path))
    out = composer.build(path, output_dir=tmp_path / "out").output_dir
    records = read_parquet(out / "records.parquet")
    tasks = [r for r in records if r["source"] == "tasks"]
    copies = Counter(r["id"] for r in tasks)
    assert len(tasks) == 62 and sorted(Counter(copies.values()).items()) == [(2, 13), (3, 12)]
    sides_of = defaultdict(set)
    for r in tasks:
        sides_of[r["id"]].add(r["split"])
    assert all(len(s) == 1 for s in sides_of.values())
    assert {s for v in sides_of.values() for s in v} == {"train", "validation"}
    # every turn row of a multi-turn conversation, and every copy, is on its record's side
    side = {r["id"]: r["split"] for r in records}
    for split in ("train", "validation"):
        for row in read_rendered(out, "sft", split):
            assert side[row["id"]] == split
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    t = next(s for s in report["sources"] if s["name"] == "tasks")
    assert t["validation"] == sum(copies[i] for i, s in sides_of.items() if s == {"validation"})


@pytest.mark.parametrize("validation", [0.2, 0.05, 17, 1])
def test_each_source_gives_exactly_its_quota(tmp_path, validation):
    path = split_manifest(tmp_path, mixture(tmp_path), split={"validation": validation})
    out = composer.build(path, output_dir=tmp_path / "out").output_dir
    records = read_parquet(out / "records.parquet")
    distinct: dict[str, set[str]] = defaultdict(set)
    in_validation: dict[str, set[str]] = defaultdict(set)
    for r in records:
        distinct[r["source"]].add(r["id"])
        if r["split"] == "validation":
            in_validation[r["source"]].add(r["id"])
    sizes = {name: len(ids) for name, ids in distinct.items()}
    total = sum(sizes.values())
    target = round(validation * total) if isinstance(validation, float) else validation
    # the quota, computed here by largest remainder, ties to the first name
    exact = {n: target * s / total for n, s in sizes.items()}
    quota = {n: math.floor(v) for n, v in exact.items()}
    for n in sorted(exact, key=lambda n: (-(exact[n] - quota[n]), n))[
        : target - sum(quota.values())
    ]:
        quota[n] += 1
    assert quota == validation_quota(sizes, validation)
    assert {n: len(in_validation[n]) for n in sizes} == quota
    assert sum(quota.values()) == target


def test_validation_goes_to_the_lowest_draws(tmp_path):
    """Within a source, the quota's ids are those with the lowest seeded draws."""
    path = split_manifest(tmp_path, mixture(tmp_path))
    out = composer.build(path, output_dir=tmp_path / "out").output_dir
    records = read_parquet(out / "records.parquet")
    for source in ("chat", "tasks", "pairs", "stories"):
        ids = list(dict.fromkeys(r["id"] for r in records if r["source"] == source))
        val = {r["id"] for r in records if r["source"] == source and r["split"] == "validation"}
        order = np.argsort(uniforms(42, ids, "split"), kind="stable")
        assert {ids[i] for i in order[: len(val)]} == val


def test_no_validation_means_no_validation_files(tmp_path):
    path = split_manifest(tmp_path, mixture(tmp_path), split={"validation": 0})
    result = composer.build(path, output_dir=tmp_path / "out")
    assert result.totals["validation"] == 0
    assert not list(result.output_dir.rglob("validation.*"))
    assert {r["split"] for r in read_parquet(result.output_dir / "records.parquet")} == {"train"}


# ---------------------------------------------------------------- seeds


def validation_ids(out: Path) -> set[tuple[str, str]]:
    return {
        (r["kind"], r["id"])
        for r in read_parquet(out / "records.parquet")
        if r["split"] == "validation"
    }


def test_split_is_stable_under_a_seed_and_changes_with_another(tmp_path):
    path = split_manifest(tmp_path, mixture(tmp_path))
    a = composer.build(path, output_dir=tmp_path / "a").output_dir
    b = composer.build(path, output_dir=tmp_path / "b").output_dir
    c = composer.build(path, output_dir=tmp_path / "c", seed=7).output_dir
    assert validation_ids(a) == validation_ids(b)
    assert validation_ids(a) != validation_ids(c)
    assert len(validation_ids(a)) == len(validation_ids(c))  # same quotas, other ids
    assert json.loads((c / "report.json").read_text(encoding="utf-8"))["seed"] == 7
    # the seed in the manifest does the same as the override
    path.write_text(
        path.read_text(encoding="utf-8").replace("seed: 42", "seed: 7"), encoding="utf-8"
    )
    d = composer.build(path, output_dir=tmp_path / "d").output_dir
    assert validation_ids(d) == validation_ids(c)


def test_cli_seed_changes_the_split(tmp_path):
    path = split_manifest(tmp_path, mixture(tmp_path))
    for name, extra in (("default", []), ("again", ["--seed", "42"]), ("seven", ["--seed", "7"])):
        result = invoke("build", str(path), "-o", str(tmp_path / name), "-q", *extra)
        assert result.exit_code == 0, result.output
    assert validation_ids(tmp_path / "default") == validation_ids(tmp_path / "again")
    assert validation_ids(tmp_path / "default") != validation_ids(tmp_path / "seven")
    assert json.loads((tmp_path / "seven" / "report.json").read_text("utf-8"))["seed"] == 7


def test_adding_a_source_does_not_move_other_ids_across(tmp_path):
    """Draws are per id: with the same quota, a source's validation ids stay where they were."""
    sources = mixture(tmp_path)
    first = composer.build(
        split_manifest(tmp_path, sources[:1], split={"validation": 12}), output_dir=tmp_path / "one"
    ).output_dir
    second = composer.build(
        split_manifest(tmp_path, [sources[0], sources[2]], split={"validation": 20}),
        output_dir=tmp_path / "two",
    ).output_dir

    def chat(out: Path) -> set[str]:
        rows = read_parquet(out / "records.parquet")
        return {r["id"] for r in rows if r["source"] == "chat" and r["split"] == "validation"}

    assert len(chat(first)) == 12
    assert chat(first) == chat(second)


def test_an_instruction_in_sft_and_dpo_sources_is_on_one_side(tmp_path):
    sft = [{"instruction": f"P{i}", "output": "answer"} for i in range(30)]
    pairs = [{"prompt": f"P{i}", "chosen": "good", "rejected": "bad"} for i in range(10)]
    path = split_manifest(
        tmp_path,
        [
            {"name": "sft", "plugin": "alpaca", "path": write_jsonl(tmp_path / "sft.jsonl", sft)},
            {
                "name": "pairs",
                "plugin": "dpo",
                "path": write_jsonl(tmp_path / "pairs.jsonl", pairs),
            },
        ],
    )
    out = composer.build(path, output_dir=tmp_path / "out").output_dir
    split_of: dict[str, set[str]] = defaultdict(set)
    for r in read_parquet(out / "records.parquet"):
        split_of[r["id"]].add(r["split"])
    assert sum(len(s) > 1 for s in split_of.values()) == 0
