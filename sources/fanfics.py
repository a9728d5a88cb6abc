"""Fan fiction from ficbook.net (IlyaGusev/ficbook, mostly Russian), chunked chapter by chapter.

Not in bagel. Ficbook is a large public fan-fiction set with a documented schema: a story
per row with its chapters in `parts` (cleaned `clean_text`, else `text`), title, rating
and tags. English alternatives were passed over: the AO3 dump (nyuuzyou/archiveofourown)
was taken down after a DMCA notice, and others are metadata only. Each chapter is chunked
on paragraph boundaries (`max_chunk_size`, the `text` plugin's chunker). Many stories are
adult (ratings R, NC-17, NC-21) and the set is 1.4M stories (68 GB): use `sample:`.
"""

from composer.sources import text as plain

name = "fanfics"
kind = "text"
hub = "IlyaGusev/ficbook"
confidence = 1
license = "unknown"
columns = ("parts",)
optional_columns = ("url", "title", "rating")
check_options = plain.check_options


def convert(batch: dict[str, list], max_chunk_size: int = 8000) -> dict[str, list]:
    n = len(batch["parts"])
    story = {k: batch.get(k) or [None] * n for k in optional_columns}
    out = {"text": [], "row": [], "meta": []}
    for i, parts in enumerate(batch["parts"]):
        before = len(out["text"])
        for p, part in enumerate(parts or []):
            chapter = part.get("clean_text") or part.get("text") or ""
            pieces = plain.chunk(chapter, max_chunk_size)
            for c, piece in enumerate(pieces):
                out["text"].append(piece)
                out["row"].append(i)
                meta = {k: story[k][i] for k in optional_columns if story[k][i] is not None}
                out["meta"].append({**meta, "part": p, "chunk": c, "chunks": len(pieces)})
        if len(out["text"]) == before:  # no chapter text: rejected as empty text
            out["text"].append(None)
            out["row"].append(i)
            out["meta"].append({})
    return out
