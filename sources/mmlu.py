"""MMLU auxiliary training questions (ARC, MCTest, OBQA, RACE...) with lettered options.

Bagel (PRIORITY 3) reads cais/mmlu "all", split auxiliary_train (the benchmark's test,
validation and dev splits are never read), shuffles it with seed 42 and keeps 50,000
questions: use `sample: 50000` in the manifest. On an unseeded coin it puts "Answer with
only the letter of the answer." before the question and answers with the letter, else
answers "B text". Here the coin is seeded per question (`letter_only`, 0.5 as bagel).
"""

from composer.sources import _choices

name = "mmlu"
kind = "sft"
hub = "cais/mmlu"
config = "all"
split = "auxiliary_train"
confidence = 3
license = "mit"
columns = ("question", "choices", "answer")

INSTRUCTION = "Answer with only the letter of the answer."


def check_options(letter_only: float = 0.5) -> list[tuple[str, str]]:
    return _choices.check_share(letter_only)


def convert(batch: dict[str, list], letter_only: float = 0.5, seed: int = 0) -> dict[str, list]:
    items = [
        _choices.item(question, choices, None, answer)
        for question, choices, answer in zip(batch["question"], batch["choices"], batch["answer"])
    ]
    return _choices.conversations(
        items, seed, name, letter_only, instruction=INSTRUCTION, before=True
    )
