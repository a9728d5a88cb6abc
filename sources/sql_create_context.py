"""sql-create-context: a question and CREATE TABLE statements, answered with a SQL query.

Bagel asks for a query with a fixed instruction, the context and the question, and keeps a
random 10,000 (use `sample: 10000` in the manifest for the same).
"""

from composer.turns import turn

name = "sql_create_context"
kind = "sft"
hub = "b-mc2/sql-create-context"
confidence = 2
license = "cc-by-4.0"
columns = ("question", "context", "answer")
PROMPT = "Using the context provided, please generate a SQL query to answer the question."


def convert(batch: dict[str, list]) -> dict[str, list]:
    out = {"conversations": [], "error": []}
    for question, context, sql in zip(batch["question"], batch["context"], batch["answer"]):
        prompt = f"{PROMPT}\nContext: {context}\nQuestion: {question}"
        out["conversations"].append([turn("human", prompt), turn("gpt", sql)])
        missing = [k for k, v in (("question", question), ("context", context)) if not v]
        out["error"].append(f"no {' or '.join(missing)}" if missing else None)
    return out
