"""H2O LLM Studio DPO data: system/question/chosen/rejected rows, chained by id/parent_id.

LLM Studio's default DPO dataset is Intel/orca_dpo_pairs, saved as `train.pq` with
system_column "system", prompt_column "question", answer_column "chosen" and
rejected_answer_column "rejected"; that is the default upstream here. With `id` and
`parent_id` columns, rows chain into conversations as LLM Studio's DPO does (only whole
conversations, ending at a row that is no one's parent): earlier rounds are question and
chosen answer, the first round's system prompt is the conversation's, and the last row's
answers are the pair. Options as h2o_sft (`every_row`, `orphans`, `max_depth`). Not in
bagel (it reads this data through `orca_dpo_pairs`).
"""

from composer.turns import turn, with_system
from sources._h2o import chains, rejected_rows

name = "h2o_dpo"
kind = "dpo"
hub = "Intel/orca_dpo_pairs"
confidence = 2
license = "apache-2.0"
columns = ("question", "chosen", "rejected")
optional_columns = ("system", "id", "parent_id")
batch_size = None  # a conversation's rows may be anywhere in the file


def convert(
    batch: dict[str, list], every_row: bool = False, orphans: str = "reject", max_depth: int = 256
) -> dict[str, list]:
    n = len(batch["question"])
    systems = batch.get("system") or [None] * n
    out = {"conversations": [], "chosen": [], "rejected": [], "row": [], "meta": [], "error": []}
    conversations, out["linked"], rejected = chains(batch, n, every_row, orphans, max_depth)
    for end, chain in conversations:
        turns = []
        for i in chain:
            turns += [turn("human", batch["question"][i]), turn("gpt", batch["chosen"][i])]
        out["conversations"].append(with_system(systems[chain[0]], turns[:-1]))
        out["chosen"].append(batch["chosen"][end])
        out["rejected"].append(batch["rejected"][end])
        out["row"].append(end)
        out["meta"].append({"ids": [batch["id"][i] for i in chain]} if "id" in batch else {})
        out["error"].append(None)
    rejected_rows(out, rejected, ("chosen", "rejected"))
    return out
