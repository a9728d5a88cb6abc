"""Capybara: multi-turn conversations, each exchange an input and an output.

Bagel keeps every conversation, each exchange as a human turn and a gpt turn; so do we.
"""

from composer.turns import turn

name = "capybara"
kind = "sft"
hub = "LDJnr/Capybara"
confidence = 2
license = "apache-2.0"
columns = ("conversation",)
optional_columns = ("source",)


def convert(batch: dict[str, list]) -> dict[str, list]:
    n = len(batch["conversation"])
    sources = batch.get("source") or [None] * n
    out = {"conversations": [], "meta": []}
    for exchanges, source in zip(batch["conversation"], sources):
        turns = []
        for exchange in exchanges or []:
            turns += [turn("human", exchange.get("input")), turn("gpt", exchange.get("output"))]
        out["conversations"].append(turns)
        out["meta"].append({"source": source} if source else {})
    return out
