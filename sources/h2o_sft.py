"""H2O LLM Studio SFT data: instruction/output rows, chained by id/parent_id.

LLM Studio's causal-LM datasets have prompt_column "instruction", answer_column "output",
an optional system_column "system", and `parent_id_column` to join a row to the rounds
before it (its default data, OpenAssistant, is stored that way as `train_full.pq`). Each
chain from a root row becomes one multi-turn conversation; the first round's system prompt
is the conversation's. By default a conversation ends at a row no one continues, so each
round is trained on once; `every_row: true` makes every row a conversation with its
history, as LLM Studio samples them. `orphans: start` starts a conversation at a row whose
parent is missing (rejected by default); `max_depth` bounds a chain (256 rounds).
"""

from composer.turns import turn, with_system
from sources._h2o import chains, rejected_rows

name = "h2o_sft"
kind = "sft"
confidence = 2
license = "check the data's own"
columns = ("instruction", "output")
optional_columns = ("system", "id", "parent_id")
batch_size = None  # a conversation's rows may be anywhere in the file


def convert(
    batch: dict[str, list], every_row: bool = False, orphans: str = "reject", max_depth: int = 256
) -> dict[str, list]:
    n = len(batch["instruction"])
    systems = batch.get("system") or [None] * n
    out = {"conversations": [], "row": [], "meta": [], "error": []}
    conversations, out["linked"], rejected = chains(batch, n, every_row, orphans, max_depth)
    for end, chain in conversations:
        turns = []
        for i in chain:
            turns += [turn("human", batch["instruction"][i]), turn("gpt", batch["output"][i])]
        out["conversations"].append(with_system(systems[chain[0]], turns))
        out["row"].append(end)
        out["meta"].append({"ids": [batch["id"][i] for i in chain]} if "id" in batch else {})
        out["error"].append(None)
    rejected_rows(out, rejected, ())
    return out
