"""RedPajama 1T sample (about 1B tokens of web, books, arXiv, code, Q&A, Wikipedia), chunked.

Not in bagel. The hub repo's loading script is no longer run by `datasets`, so its JSON
lines files are read directly; their `meta` (a JSON or Python-literal string, or an object)
is kept in each record's meta as `upstream`. Each document is chunked on paragraph
boundaries (`max_chunk_size`, the `text` plugin's chunker). One subset reads with
`data_files: arxiv_sample.jsonl` (book_, c4_, cc_2023-06_, github_, stackexchange_,
wikipedia_...); 930k documents in all, so a mixture wants `sample:`.
"""

import ast
import json

from composer.sources import text as plain

name = "redpajama_sample"
kind = "text"
hub = "togethercomputer/RedPajama-Data-1T-Sample"
data_files = "*_sample.jsonl"
confidence = 1
license = "other"  # per subset: see the dataset card (Common Crawl terms, C4 ODC-BY, ...)
columns = ("text",)
optional_columns = ("meta",)
check_options = plain.check_options


def _meta(value):
    if not isinstance(value, str):
        return value
    for parse in (json.loads, ast.literal_eval):
        try:
            return parse(value)
        except (ValueError, SyntaxError):
            pass
    return value


def convert(batch: dict[str, list], max_chunk_size: int = 2000) -> dict[str, list]:
    metas = batch.get("meta") or [None] * len(batch["text"])
    out = {"text": [], "row": [], "meta": []}
    for i, (document, meta) in enumerate(zip(batch["text"], metas)):
        pieces = plain.chunk(document, max_chunk_size) if isinstance(document, str) else []
        upstream = {"upstream": _meta(meta)} if meta is not None else {}
        for c, piece in enumerate(pieces or [None]):  # None: rejected as empty text
            out["text"].append(piece)
            out["row"].append(i)
            out["meta"].append({**upstream, "chunk": c, "chunks": len(pieces)})
    return out
