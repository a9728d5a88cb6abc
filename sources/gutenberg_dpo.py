"""Gutenberg DPO: a public-domain book's chapter (chosen) against an LLM's attempt (rejected).

Bagel (`gutenberg_dpo.py`, priority 2) keeps every pair, and also trains SFT on prompt ->
chosen; for that, add the same hub with `plugin: alpaca` and `columns: {instruction:
prompt, output: chosen}`. Pairs with identical answers are left out. No `sample:` in bagel.
"""

from composer.sources._dpo_pairs import pairs

name = "gutenberg_dpo"
kind = "dpo"
hub = "jondurbin/gutenberg-dpo-v0.1"
confidence = 2
license = "cc-by-4.0"
columns = ("prompt", "chosen", "rejected")
optional_columns = ("system", "id")


def convert(batch: dict[str, list]) -> dict[str, list]:
    return pairs(batch)
