"""Cinematika instructions: character cards from prompts, and memory, director and action chats.

Bagel (PRIORITY 3) trains on four files of jondurbin/cinematika-v0.1: prompt_to_character_card
(movie_id, title, input, output: a prompt and a YAML character card, "[scene]" markers
removed) and memories, director and actions (id, conversations, category: ShareGPT chats
for long-term memory, NPC-to-NPC direction and inline actions), all kept whole. The scripts
(scene_by_scene, plain text) are the `cinematika_text` plugin's.

The two shapes cannot be loaded as one hub dataset (their columns differ), so this plugin
reads the three chat files by default; add the cards as a second source of this plugin
with `data_files: prompt_to_character_card.parquet`. Each row is converted by its shape.
"""

import re

from composer.turns import turn

name = "cinematika"
kind = "sft"
hub = "jondurbin/cinematika-v0.1"
data_files = ["memories.parquet", "director.parquet", "actions.parquet"]
confidence = 3
license = "cc-by-nc-4.0"
optional_columns = ("input", "output", "conversations", "category")

_SCENE = re.compile(r"\[scene\]\s*")


def _clean(text):
    return _SCENE.sub("", text) if isinstance(text, str) else text


def convert(batch: dict[str, list]) -> dict[str, list]:
    n = len(next(iter(batch.values()), []))
    empty = [None] * n
    inputs, outputs = batch.get("input") or empty, batch.get("output") or empty
    chats, categories = batch.get("conversations") or empty, batch.get("category") or empty
    out: dict[str, list] = {"conversations": [], "meta": [], "error": []}
    for prompt, card, chat, category in zip(inputs, outputs, chats, categories):
        error, turns = None, None
        if chat:
            turns = [turn(t.get("from"), t.get("value")) for t in chat]
            category = category or "chat"
        elif prompt is not None or card is not None:
            turns = [turn("human", _clean(prompt)), turn("gpt", _clean(card))]
            category = "character_card"
        else:
            error = "neither conversations nor input/output"
        out["conversations"].append(turns)
        out["meta"].append({"part": category} if turns else None)
        out["error"].append(error)
    return out
