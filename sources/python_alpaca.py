"""Tested-22k-Python-Alpaca: Python instructions whose code answers were run and work.

Bagel (PRIORITY 1) drops answers that refuse and answers that hold a HumanEval canonical
solution or sit inside one (test-set leakage), and ignores the `input` column. Here: the
same filters (HumanEval joined as the `humaneval` input), and a non-empty `input` is added
to the instruction after a blank line, as the alpaca plugin does.
"""

from composer.kit import has_refusal
from composer.sources._humaneval import HUMANEVAL, canonical_solutions, contaminated
from composer.turns import turn

name = "python_alpaca"
kind = "sft"
hub = "Vezora/Tested-22k-Python-Alpaca"
confidence = 1
license = "apache-2.0"
columns = ("instruction", "output")
optional_columns = ("input",)
inputs = HUMANEVAL


def convert(batch: dict[str, list], humaneval: dict[str, list]) -> dict[str, list]:
    known = canonical_solutions(humaneval)
    extras = batch.get("input") or [None] * len(batch["instruction"])
    out = {"conversations": [], "row": []}
    for i, (instruction, extra, output) in enumerate(
        zip(batch["instruction"], extras, batch["output"])
    ):
        code = output if isinstance(output, str) else ""
        if has_refusal(code) or contaminated(code, known):
            continue
        if isinstance(instruction, str) and isinstance(extra, str) and extra.strip():
            instruction = f"{instruction}\n\n{extra}"
        out["conversations"].append([turn("human", instruction), turn("gpt", output)])
        out["row"].append(i)
    return out
