"""OpenBookQA science questions, lettered options; answer: the letter, or letter and text.

Bagel (PRIORITY 3) reads the "main" train split and treats it as ARC: on an unseeded coin
it asks for "only the letter" or answers "B text". Here the coin is seeded per question
(`letter_only`: the share of letter-only answers, 0.5 as bagel). Bagel keeps every
question: no manifest `sample:`.
"""

from composer.sources import _choices

name = "openbookqa"
kind = "sft"
hub = "allenai/openbookqa"
config = "main"
confidence = 3
license = "unknown"
columns = ("question_stem", "choices", "answerKey")


def check_options(letter_only: float = 0.5) -> list[tuple[str, str]]:
    return _choices.check_share(letter_only)


def convert(batch: dict[str, list], letter_only: float = 0.5, seed: int = 0) -> dict[str, list]:
    items = [
        _choices.item(stem, (c or {}).get("text"), (c or {}).get("label"), key)
        for stem, c, key in zip(batch["question_stem"], batch["choices"], batch["answerKey"])
    ]
    return _choices.conversations(items, seed, name, letter_only)
