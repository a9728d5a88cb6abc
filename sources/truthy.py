"""Truthy DPO: truthful answers (chosen) against common misconceptions and AI boilerplate.

Bagel (`truthy.py`, priority 2) keeps every pair whose answers differ and uses only the
prompt; here the row's system prompt is kept too (many rows set up a persona whose answer
only makes sense with it). Bagel takes the whole set: no `sample:` needed.
"""

from composer.sources._dpo_pairs import pairs

name = "truthy"
kind = "dpo"
hub = "jondurbin/truthy-dpo-v0.1"
confidence = 2
license = "cc-by-4.0"
columns = ("prompt", "chosen", "rejected")
optional_columns = ("system", "id")


def convert(batch: dict[str, list]) -> dict[str, list]:
    return pairs(batch)
