"""Bluemoon fandom 1-on-1 roleplay (cleaned, pruned): forum roleplay threads as ShareGPT chats.

Bagel (PRIORITY 1) reads data/pruned/bluemoon.train.json as it is, with no filter; so
does this plugin. The thread id goes into meta.
"""

from composer.sources._roleplay import sharegpt_turns

name = "bluemoon"
kind = "sft"
hub = "Squish42/bluemoon-fandom-1-1-rp-cleaned"
data_files = "data/pruned/bluemoon.train.json"
confidence = 1
license = "wtfpl"
columns = ("conversations",)
optional_columns = ("id",)


def convert(batch: dict[str, list]) -> dict[str, list]:
    ids = batch.get("id") or [None] * len(batch["conversations"])
    return {
        "conversations": [sharegpt_turns(c) for c in batch["conversations"]],
        "meta": [{"id": i} if i is not None else None for i in ids],
    }
