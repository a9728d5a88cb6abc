"""Spider: a question about a database, answered with the SQL query.

Bagel (PRIORITY 1) reads the train split and asks "Write a SQL query for the following:"
then the question; same here. Spider's rows name their database (`db_id`) but hold no
schema, so bagel's prompt has none. Where the rows carry one (a `schema` column, such as
CREATE TABLE statements joined from Spider's tables.json), it follows the question under
"Schema:", so that the query can be written from the prompt alone; that is where we differ.
"""

from composer.turns import turn

name = "spider"
kind = "sft"
hub = "xlangai/spider"
config = "spider"
confidence = 1
license = "cc-by-sa-4.0"
columns = ("question", "query")
optional_columns = ("db_id", "schema")
PROMPT = "Write a SQL query for the following:"


def convert(batch: dict[str, list]) -> dict[str, list]:
    n = len(batch["question"])
    schemas = batch.get("schema") or [None] * n
    databases = batch.get("db_id") or [None] * n
    out: dict[str, list] = {"conversations": [], "meta": [], "error": []}
    for question, query, schema, db in zip(batch["question"], batch["query"], schemas, databases):
        lines = [PROMPT, question]
        if isinstance(schema, str) and schema.strip():
            lines += ["Schema:", schema.strip()]
        out["conversations"].append([turn("human", "\n".join(map(str, lines))), turn("gpt", query)])
        out["meta"].append({"db_id": db})
        out["error"].append(None if question and query else "no question or no query")
    return out
