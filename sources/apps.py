"""APPS programming problems (train split), each answered with its first Python solution.

Bagel asks "Provide a python solution to the following:" and the question, answers with
the first of the problem's solutions, and drops a problem whose solution overlaps a
HumanEval canonical solution; it keeps all 5,000 train problems. We do the same, with
HumanEval joined as the `humaneval` input. A problem without a solution is rejected.
The hub repo's loading script cannot run on datasets >= 4, so its train.jsonl is read.
"""

import json

from composer.sources._humaneval import HUMANEVAL, canonical_solutions, contaminated
from composer.turns import turn

name = "apps"
kind = "sft"
hub = "json"
data_files = "hf://datasets/codeparrot/apps/train.jsonl"
confidence = 2
license = "mit"
columns = ("question", "solutions")
optional_columns = ("problem_id", "difficulty", "url")
inputs = HUMANEVAL
PROMPT = "Provide a python solution to the following:"


def _first_solution(solutions: str | None) -> str | None:
    try:
        parsed = json.loads(solutions) if solutions else None
    except json.JSONDecodeError:
        return None
    first = parsed[0] if isinstance(parsed, list) and parsed else None
    return first if isinstance(first, str) and first.strip() else None


def convert(batch: dict[str, list], humaneval: dict[str, list]) -> dict[str, list]:
    known = canonical_solutions(humaneval)
    n = len(batch["question"])
    extra = {k: batch.get(k) or [None] * n for k in optional_columns}
    out = {"conversations": [], "row": [], "error": [], "meta": []}
    for i, (question, solutions) in enumerate(zip(batch["question"], batch["solutions"])):
        solution = _first_solution(solutions)
        if solution is not None and contaminated(solution, known):
            continue
        out["conversations"].append([turn("human", f"{PROMPT}\n{question}"), turn("gpt", solution)])
        out["row"].append(i)
        blank = not isinstance(question, str) or not question.strip()
        out["error"].append("no question" if blank else None if solution else "no solution")
        out["meta"].append({k: v[i] for k, v in extra.items() if v[i] is not None})
    return out
