"""Contextual DPO: answers that stay within a given context (airoboros' closed-context format).

Bagel (`contextual_dpo.py`, priority 2) keeps every pair whose answers differ; so do we,
with the row's system prompt when it has one. Bagel takes the whole set: no `sample:`.
"""

from composer.sources._dpo_pairs import pairs

name = "contextual_dpo"
kind = "dpo"
hub = "jondurbin/contextual-dpo-v0.1"
confidence = 2
license = "cc-by-4.0"
columns = ("prompt", "chosen", "rejected")
optional_columns = ("system", "id")


def convert(batch: dict[str, list]) -> dict[str, list]:
    return pairs(batch)
