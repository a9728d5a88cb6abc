"""LMSYS-Chat-1M: real user chats; the GPT-4 ones without refusals.

Bagel keeps the chats whose `model` is gpt-4 and whose answers do not refuse (it also
pairs single-turn GPT-4 chats with a larger open model's answer to the same prompt for
DPO, and leaves those out of SFT; here every kept chat is SFT). Other models' chats and
refusals are dropped (composer.kit.has_refusal); `model` picks another model.
"""

from composer.kit import has_refusal
from composer.turns import turn

name = "lmsys_chat_1m"
kind = "sft"
hub = "lmsys/lmsys-chat-1m"
confidence = 2
license = "other"
gated = True
columns = ("model", "conversation")
optional_columns = ("conversation_id", "language")


def convert(batch: dict[str, list], model: str = "gpt-4") -> dict[str, list]:
    n = len(batch["model"])
    ids = batch.get("conversation_id") or [None] * n
    languages = batch.get("language") or [None] * n
    out = {"conversations": [], "row": [], "meta": []}
    for i, (chat_model, chat) in enumerate(zip(batch["model"], batch["conversation"])):
        chat = chat or []
        answers = [t.get("content") or "" for t in chat if t.get("role") == "assistant"]
        if chat_model != model or has_refusal("\n".join(answers)):
            continue
        out["conversations"].append([turn(t.get("role"), t.get("content")) for t in chat])
        out["row"].append(i)
        out["meta"].append({"conversation_id": ids[i], "language": languages[i]})
    return out
