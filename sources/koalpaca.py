"""KoAlpaca v1.1a: Korean questions (from Naver KnowledgeiN) with ChatGPT-written answers.

A seed of the airoboros/bagel-era mixtures, not one of bagel's loaders. Rows are an
instruction and an output; the source page (`url`) goes into meta.
"""

from composer.turns import turn

name = "koalpaca"
kind = "sft"
hub = "beomi/KoAlpaca-v1.1a"
confidence = 1
license = "unknown"
columns = ("instruction", "output")
optional_columns = ("url",)


def convert(batch: dict[str, list]) -> dict[str, list]:
    urls = batch.get("url") or [None] * len(batch["instruction"])
    return {
        "conversations": [
            [turn("human", q), turn("gpt", a)]
            for q, a in zip(batch["instruction"], batch["output"])
        ],
        "meta": [{"url": u} if u else None for u in urls],
    }
