"""Project Gutenberg books in English (sedthh/gutenberg_english), unwrapped and chunked.

Bagel (`gutenberg.py`, priority 3, later dropped) downloaded 16 hand-picked novels from
gutenberg.org, split them into chapters, cut the licence after "*** END OF THE PROJECT
GUTENBERG" and joined hard-wrapped lines. Here the books come from sedthh/gutenberg_english
(48,284 English books with their catalogue record, collected for OpenAssistant in 2023):
any START/END licence boilerplate is cut, lines are unwrapped as bagel does (`unwrap`), and
each book is chunked on paragraph boundaries (`max_chunk_size`, the `text` plugin's
chunker). The set is 18 GB: read a shard (`data_files: data/train-00000-of-00037-*.parquet`)
and/or use `sample:`; bagel's 16 books gave a few hundred chapters.
"""

import json
import re

from composer.sources import text as plain

name = "gutenberg"
kind = "text"
hub = "sedthh/gutenberg_english"
confidence = 3
license = "mit"
columns = ("TEXT",)
optional_columns = ("METADATA",)

_START = re.compile(r"\*\*\* ?START OF (?:THE|THIS) PROJECT GUTENBERG[^\n]*\n", re.IGNORECASE)
_END = re.compile(r"\*\*\* ?END OF (?:THE|THIS) PROJECT GUTENBERG", re.IGNORECASE)
# A line break inside a paragraph: before a lowercase word, or after a line that does not
# end a sentence (so short lines of verse or dialogue ending in punctuation stay).
_WRAP = re.compile(r"(?<=\S)[ \t]*\n[ \t]*(?=[a-z])|(?<=[^\s.!?:;\"'”’])[ \t]*\n[ \t]*(?=[A-Za-z])")


def check_options(max_chunk_size: int = 8000, unwrap: bool = True) -> list[tuple[str, str]]:
    return plain.check_options(max_chunk_size)


def body(book: str, unwrap: bool = True) -> str:
    """The book without Project Gutenberg's licence header and footer, unwrapped."""
    start = _START.search(book)
    book = book[start.end() :] if start else book
    end = _END.search(book)
    book = book[: end.start()] if end else book
    return _WRAP.sub(" ", book) if unwrap else book


def convert(
    batch: dict[str, list], max_chunk_size: int = 8000, unwrap: bool = True
) -> dict[str, list]:
    n = len(batch["TEXT"])
    records = batch.get("METADATA") or [None] * n
    out = {"text": [], "row": [], "meta": []}
    for i, (book, record) in enumerate(zip(batch["TEXT"], records)):
        info = json.loads(record) if isinstance(record, str) and record.startswith("{") else {}
        book_meta = {k: info[k] for k in ("text_id", "title", "authors") if k in info}
        pieces = plain.chunk(body(book, unwrap), max_chunk_size) if isinstance(book, str) else []
        for c, piece in enumerate(pieces or [None]):  # None: rejected as empty text
            out["text"].append(piece)
            out["row"].append(i)
            out["meta"].append({**book_meta, "chunk": c, "chunks": len(pieces)})
    return out
