"""PIQA physical commonsense: a goal, solutions A and B; answer: the letter, or "A. solution".

Bagel (PRIORITY 3) reads the train split and, on an unseeded coin with probability 0.25,
asks for "only the letter"; otherwise it answers "A. <solution>". Here the coin is seeded
per question (`letter_only`, 0.25 as bagel). The hub repository's default branch holds a
loading script, which `datasets` no longer runs, so the plugin reads the Hub's parquet
conversion (revision "refs/convert/parquet", a branch, not a pinned commit). Bagel keeps
every question: no manifest `sample:`.
"""

from composer.sources import _choices

name = "piqa"
kind = "sft"
hub = "ybisk/piqa"
revision = "refs/convert/parquet"
confidence = 3
license = "unknown"
columns = ("goal", "sol1", "sol2", "label")


def check_options(letter_only: float = 0.25) -> list[tuple[str, str]]:
    return _choices.check_share(letter_only)


def convert(batch: dict[str, list], letter_only: float = 0.25, seed: int = 0) -> dict[str, list]:
    items = [
        _choices.item(goal, [sol1, sol2], None, label)
        for goal, sol1, sol2, label in zip(
            batch["goal"], batch["sol1"], batch["sol2"], batch["label"]
        )
    ]
    return _choices.conversations(items, seed, name, letter_only, separator=". ")
