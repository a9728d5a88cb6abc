"""Spider: a question about a database, answered with the SQL query.

Bagel (`spider.py`, priority 1) reads the train split and asks "Write a SQL query for the
following:" and the question, answered with the gold query. Same here. The Hub rows name
the database (`db_id`, kept in meta) but carry no schema, and bagel sends none: the model
learns table names from the question alone. A `schema` option is not offered for that
reason (sql_create_context is the source with CREATE TABLE context). Bagel keeps every
question: no `sample:`.
"""

from composer.turns import turn

name = "spider"
kind = "sft"
hub = "xlangai/spider"
confidence = 1
license = "cc-by-sa-4.0"
columns = ("question", "query")
optional_columns = ("db_id",)

PROMPT = "Write a SQL query for the following:"


def convert(batch: dict[str, list]) -> dict[str, list]:
    n = len(batch["question"])
    dbs = batch.get("db_id") or [None] * n
    out: dict[str, list] = {"conversations": [], "error": [], "meta": []}
    for question, query, db in zip(batch["question"], batch["query"], dbs):
        out["meta"].append({"db_id": db})
        if not question or not query:
            out["conversations"].append(None)
            out["error"].append("no question" if not question else "no query")
            continue
        out["conversations"].append([turn("human", f"{PROMPT}\n{question}"), turn("gpt", query)])
        out["error"].append(None)
    return out
