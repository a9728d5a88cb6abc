"""ARC-Challenge science questions, lettered options; answer: the letter, or letter and text.

Bagel (PRIORITY 3) reads the ARC-Challenge train split and, on an unseeded coin, either
asks for "only the letter" (its instruction repeats "the the") or answers "B text". Here
the coin is seeded per question (`letter_only`: the share of letter-only answers, 0.5 as
bagel), and the few questions labelled 1-4 are shown with letters A-D. Bagel keeps every
question: no manifest `sample:`.
"""

from composer.sources import _choices

name = "ai2_arc"
kind = "sft"
hub = "allenai/ai2_arc"
config = "ARC-Challenge"
confidence = 3
license = "cc-by-sa-4.0"
columns = ("question", "choices", "answerKey")


def check_options(letter_only: float = 0.5) -> list[tuple[str, str]]:
    return _choices.check_share(letter_only)


def convert(batch: dict[str, list], letter_only: float = 0.5, seed: int = 0) -> dict[str, list]:
    items = [
        _choices.item(question, (c or {}).get("text"), (c or {}).get("label"), key)
        for question, c, key in zip(batch["question"], batch["choices"], batch["answerKey"])
    ]
    return _choices.conversations(items, seed, name, letter_only)
