"""Belebele reading comprehension: a FLORES passage and a question, answered with the right option.

Bagel reads all 122 language variants (900 questions each), keeps 300 of each (shuffled
with seed 42), and asks the passage then the question, answering with the text of
`mc_answer{correct_answer_num}` (the options are not shown). We keep `per_language`
questions of each `dialect`, a sample seeded by the manifest's seed. Belebele has no train
split upstream: its per-language files are read together, as one split.
"""

from collections import defaultdict

from composer.kit import stratified_sample
from composer.turns import turn

name = "belebele"
kind = "sft"
hub = "facebook/belebele"
data_files = "data/*.jsonl"
confidence = 2
license = "cc-by-sa-4.0"
OPTIONS = ("mc_answer1", "mc_answer2", "mc_answer3", "mc_answer4")
columns = ("flores_passage", "question", *OPTIONS, "correct_answer_num", "dialect")
batch_size = None


def check_options(per_language: int = 300) -> list[tuple[str, str]]:
    if per_language < 1:
        return [("per_language", f"expected a positive number of questions, got {per_language}")]
    return []


def convert(batch: dict[str, list], per_language: int = 300, seed: int = 0) -> dict[str, list]:
    by_language = defaultdict(list)
    for i, dialect in enumerate(batch["dialect"]):
        by_language[dialect].append(i)
    keep = sorted(
        rows[j]
        for dialect, rows in by_language.items()
        for j in stratified_sample([dialect] * len(rows), per_language, seed, name, dialect)
    )
    out = {"conversations": [], "row": [], "error": [], "meta": []}
    for i in keep:
        number = str(batch["correct_answer_num"][i]).strip()
        known = f"mc_answer{number}" in OPTIONS
        answer = batch[f"mc_answer{number}"][i] if known else None
        prompt = f"{batch['flores_passage'][i]}\n{batch['question'][i]}"
        out["conversations"].append([turn("human", prompt), turn("gpt", answer)])
        out["row"].append(i)
        out["error"].append(None if known else f"correct_answer_num {number!r} is not 1-4")
        out["meta"].append({"language": batch["dialect"][i]})
    return out
