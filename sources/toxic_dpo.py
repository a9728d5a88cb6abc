"""Toxic DPO (opt-in): compliant answers to harmful requests preferred over refusals.

Highly toxic, possibly illegal content, for de-censoring research: a manifest must say
`opt_in: true` to use it. Bagel (`toxic.py`, priority 2) reads `toxic-dpo.parquet` and
keeps the pairs whose answers differ (no refusal filter: the rejected answers are the
refusals); it also trains SFT on prompt -> chosen (add the hub with `plugin: alpaca` for
that). No `sample:` in bagel.
"""

from composer.sources._dpo_pairs import pairs

name = "toxic_dpo"
kind = "dpo"
hub = "unalignment/toxic-dpo-v0.2"
data_files = "toxic-dpo.parquet"
confidence = 2
license = "cc-by-4.0"
opt_in = True
columns = ("prompt", "chosen", "rejected")
optional_columns = ("system", "id")


def convert(batch: dict[str, list]) -> dict[str, list]:
    return pairs(batch)
