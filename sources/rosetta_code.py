"""Rosetta Code: a programming task and one language's solution to it.

Bagel asks "Create a solution in <language> to the following:" and the task description,
answers with the code, keeps a random 75,000 (use `sample: 75000` in the manifest) and
drops code that overlaps a HumanEval canonical solution. We do the same, with HumanEval
joined as the `humaneval` input.
"""

from composer.sources._humaneval import HUMANEVAL, canonical_solutions, contaminated
from composer.turns import turn

name = "rosetta_code"
kind = "sft"
hub = "cakiki/rosetta-code"
confidence = 2
license = "gfdl"
columns = ("task_description", "language_name", "code")
optional_columns = ("task_name",)
inputs = HUMANEVAL


def convert(batch: dict[str, list], humaneval: dict[str, list]) -> dict[str, list]:
    known = canonical_solutions(humaneval)
    names = batch.get("task_name") or [None] * len(batch["code"])
    out = {"conversations": [], "row": [], "meta": []}
    for i, code in enumerate(batch["code"]):
        if isinstance(code, str) and contaminated(code, known):
            continue
        language = batch["language_name"][i]
        prompt = f"Create a solution in {language} to the following:\n"
        prompt += str(batch["task_description"][i])
        out["conversations"].append([turn("human", prompt), turn("gpt", code)])
        out["row"].append(i)
        out["meta"].append({"task": names[i], "language": language})
    return out
