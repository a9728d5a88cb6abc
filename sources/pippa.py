"""PIPPA (ShareGPT, deduped and trimmed): character.ai roleplay chats, persona as system turn.

Bagel (PRIORITY 1) reads pippa_sharegpt_trimmed.jsonl, keeps chats of 3 turns or more with
no refusal, puts the character's opening message into the system prompt ("First message:
...") and drops a chat that opens with the character and no system turn; then it keeps an
unseeded 25% of the chats. Here: the same clean-up, with the opening added beside the
persona (bagel wrote it over the persona) and refusals looked for in the character's
turns only (bagel also matched the user's). The 25% is the manifest's `sample: 0.25`.
"""

from composer.sources._roleplay import roleplay

name = "pippa"
kind = "sft"
hub = "kingbri/PIPPA-shareGPT"
data_files = "pippa_sharegpt_trimmed.jsonl"
confidence = 1
license = "agpl-3.0"
columns = ("conversations",)
optional_columns = ("id",)


def convert(batch: dict[str, list]) -> dict[str, list]:
    ids = batch.get("id") or [None] * len(batch["conversations"])
    out = {"conversations": [], "row": [], "meta": []}
    for i, conversation in enumerate(batch["conversations"]):
        turns = roleplay(conversation)
        if turns is not None:
            out["conversations"].append(turns)
            out["row"].append(i)
            out["meta"].append({"id": ids[i]} if ids[i] is not None else None)
    return out
