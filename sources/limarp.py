"""LimaRP-augmented: curated human roleplay chats, persona and scenario in the system turn.

Bagel (PRIORITY 1) keeps chats of 3 turns or more with no refusal, puts a character's
opening message into the system prompt ("First message: ...") and drops a chat that opens
with the character and no system turn. Here: the same, with the opening added beside the
persona (bagel wrote it over the persona) and refusals looked for in the character's turns
only (bagel also matched the user's). Bagel meant to cut chats to fit 4,096 Mistral tokens,
but its check never measured the turns, so every chat was kept whole; `max_chars` cuts a
chat after the last character turn within that many characters (0: keep it whole).
"""

from composer.sources._roleplay import roleplay

name = "limarp"
kind = "sft"
hub = "grimulkan/LimaRP-augmented"
confidence = 1
license = "unknown"
columns = ("conversations",)
optional_columns = ("id",)


def check_options(max_chars: int = 0) -> list[tuple[str, str]]:
    return [("max_chars", "expected 0 or more characters")] if max_chars < 0 else []


def convert(batch: dict[str, list], max_chars: int = 0) -> dict[str, list]:
    ids = batch.get("id") or [None] * len(batch["conversations"])
    out = {"conversations": [], "row": [], "meta": []}
    for i, conversation in enumerate(batch["conversations"]):
        turns = roleplay(conversation, max_chars)
        if turns is not None:
            out["conversations"].append(turns)
            out["row"].append(i)
            out["meta"].append({"id": ids[i]} if ids[i] is not None else None)
    return out
