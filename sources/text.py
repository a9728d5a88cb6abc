"""Plain text (books, scripts, web pages), chunked at `max_chunk_size` characters.

Chunks end on paragraph boundaries; a paragraph longer than the limit is cut at the last
line break, sentence end or space before it, and only as a last resort mid-word.
"""

import re

name = "text"
kind = "text"
columns = ("text",)


def check_options(max_chunk_size: int = 2000) -> list[tuple[str, str]]:
    if max_chunk_size < 1:
        return [
            ("max_chunk_size", f"expected a positive number of characters, got {max_chunk_size}")
        ]
    return []


# Where to cut a long paragraph, best first: a line break, a sentence end, a space.
_BREAKS = ("\n", ". ", "! ", "? ", "。", "！", "？", " ")


def _cut(paragraph: str, size: int) -> int:
    for b in _BREAKS:
        at = paragraph.rfind(b, 0, size - len(b) + 1)
        if at >= 0 and at + len(b) > size // 2:
            return at + len(b)
    return size


def _split_long(paragraph: str, size: int) -> list[str]:
    pieces = []
    while len(paragraph) > size:
        cut = _cut(paragraph, size)
        pieces.append(paragraph[:cut].rstrip())
        paragraph = paragraph[cut:].lstrip()
    return [*pieces, paragraph] if paragraph else pieces


def chunk(text: str, size: int) -> list[str]:
    """Greedy packing of whole paragraphs into chunks of at most `size` characters."""
    chunks, current = [], ""
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        for piece in _split_long(paragraph.strip(), size):
            if current and len(current) + 2 + len(piece) > size:
                chunks.append(current)
                current = ""
            current = f"{current}\n\n{piece}" if current else piece
    return [*chunks, current] if current else chunks


def convert(batch: dict[str, list], max_chunk_size: int = 2000) -> dict[str, list]:
    out = {"text": [], "row": [], "meta": []}
    for i, text in enumerate(batch["text"]):
        pieces = chunk(text, max_chunk_size) if isinstance(text, str) else []
        for n, piece in enumerate(pieces or [text]):
            out["text"].append(piece)
            out["row"].append(i)
            out["meta"].append({"chunk": n, "chunks": len(pieces)})
    return out
