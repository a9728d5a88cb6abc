"""WinoGrande fill-in-the-blank sentences ("_"), answered with the option that fills the blank.

Bagel (PRIORITY 3) reads winogrande_xl's train split, shuffles it with seed 42 and keeps
10,000 sentences (use `sample: 10000` in the manifest); the prompt is the sentence alone
and the answer the right option's text. Same here; an answer other than 1 or 2 is rejected.
"""

from composer.turns import turn

name = "winogrande"
kind = "sft"
hub = "allenai/winogrande"
config = "winogrande_xl"
confidence = 3
license = "cc-by"
columns = ("sentence", "option1", "option2", "answer")


def convert(batch: dict[str, list]) -> dict[str, list]:
    out: dict[str, list] = {"conversations": [], "error": []}
    for sentence, option1, option2, answer in zip(
        batch["sentence"], batch["option1"], batch["option2"], batch["answer"]
    ):
        options = {"1": option1, "2": option2}
        if str(answer) not in options:
            out["conversations"].append(None)
            out["error"].append(f"answer {answer!r} is neither 1 nor 2")
            continue
        out["conversations"].append([turn("human", sentence), turn("gpt", options[str(answer)])])
        out["error"].append(None)
    return out
