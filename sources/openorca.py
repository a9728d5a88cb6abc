"""OpenOrca (GPT-4 part): FLAN questions answered by GPT-4 under Orca-style system prompts.

A seed of the airoboros/bagel-era mixtures, not one of bagel's loaders. Reads the ~1M
GPT-4 completions (1M-GPT4-Augmented.parquet); the ~3.2M GPT-3.5 ones are another
`data_files`. `system: false` leaves out the system prompt. The FLAN submix of the id
(niv, t0, cot, flan) goes into meta.
"""

from composer.turns import turn, with_system

name = "openorca"
kind = "sft"
hub = "Open-Orca/OpenOrca"
data_files = "1M-GPT4-Augmented.parquet"
confidence = 1
license = "mit"
columns = ("question", "response")
optional_columns = ("system_prompt", "id")


def convert(batch: dict[str, list], system: bool = True) -> dict[str, list]:
    n = len(batch["question"])
    systems = (batch.get("system_prompt") if system else None) or [None] * n
    ids = batch.get("id") or [None] * n
    return {
        "conversations": [
            with_system(s, [turn("human", q), turn("gpt", r)])
            for s, q, r in zip(systems, batch["question"], batch["response"])
        ],
        "meta": [{"id": i, "submix": i.split(".")[0]} if isinstance(i, str) else None for i in ids],
    }
