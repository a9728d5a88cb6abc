"""Cinematika movie scripts rewritten scene by scene, as plain text, chunked.

Bagel (`cinematika.py`, priority 3) reads `scene_by_scene.parquet` from
jondurbin/cinematika-v0.1 and uses each script, `[scene]` markers removed, as one
plain-text item (its other cinematika files are instruction data). Here the same, chunked
on paragraph boundaries (`max_chunk_size`, the `text` plugin's chunker). Bagel takes every
script: no `sample:`.
"""

import re

from composer.sources import text as plain

name = "cinematika_text"
kind = "text"
hub = "jondurbin/cinematika-v0.1"
data_files = "scene_by_scene.parquet"
confidence = 3
license = "cc-by-nc-4.0"
columns = ("scene_by_scene",)
check_options = plain.check_options

_SCENE = re.compile(r"\[scene\]\s*")


def convert(batch: dict[str, list], max_chunk_size: int = 8000) -> dict[str, list]:
    out = {"text": [], "row": [], "meta": []}
    for i, script in enumerate(batch["scene_by_scene"]):
        pieces = plain.chunk(_SCENE.sub("", script), max_chunk_size) if script else []
        for c, piece in enumerate(pieces or [None]):  # None: rejected as empty text
            out["text"].append(piece)
            out["row"].append(i)
            out["meta"].append({"chunk": c, "chunks": len(pieces)})
    return out
