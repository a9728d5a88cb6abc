"""WizardLM evol-instruct 70k: evolved instructions and their answers.

Bagel drops answers that refuse and keeps the rest; so do we (composer.kit.has_refusal).
"""

from composer.kit import has_refusal
from composer.turns import turn

name = "evol_instruct"
kind = "sft"
hub = "WizardLMTeam/WizardLM_evol_instruct_70k"
confidence = 2
license = "mit"
columns = ("instruction", "output")


def convert(batch: dict[str, list]) -> dict[str, list]:
    rows = [i for i, output in enumerate(batch["output"]) if not has_refusal(output)]
    return {
        "conversations": [
            [turn("human", batch["instruction"][i]), turn("gpt", batch["output"][i])] for i in rows
        ],
        "row": rows,
    }
