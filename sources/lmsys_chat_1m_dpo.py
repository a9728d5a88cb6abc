"""LMSYS-Chat-1M preference pairs: GPT-4's answer over an open model's to the same prompt.

Bagel (`lmsys_chat_1m.py`, priority 2) finds prompts sent to several models: a digest of a
chat's user turns joined by newlines. For each digest it remembers the chat of the
largest open model (the size in "-13b", "-70b" of the model name: two digits, as bagel;
the first seen on a tie). A single-turn GPT-4 chat whose answer is no refusal and whose
prompt such a model also answered, differently, becomes a pair: the GPT-4 answer chosen,
the open model's last answer rejected. Same here, with the whole set as the joined input
`chats` (the same upstream; a local copy may be given as `inputs: {chats: ...}`), and the
refusal check of `composer.kit.has_refusal` (case-insensitive, unlike bagel's). The
GPT-4 chats are also SFT in the lmsys_chat_1m source, where bagel leaves the paired ones
out: exact dedup on the instruction keeps one of the two (the higher confidence).
"""

import re

from composer.kit import has_refusal, per_input
from composer.turns import turn

name = "lmsys_chat_1m_dpo"
kind = "dpo"
hub = "lmsys/lmsys-chat-1m"
confidence = 2
license = "other"
gated = True
columns = ("model", "conversation")
optional_columns = ("conversation_id",)
inputs = {"chats": {"hub": "lmsys/lmsys-chat-1m"}}

SIZE = re.compile(r"-([0-9]{2})b")


def _said(chat, role: str) -> list[str]:
    return [t.get("content") or "" for t in chat or [] if t.get("role") == role]


@per_input
def _largest_open_answers(chats: dict[str, list]) -> dict[str, str]:
    """The prompt digest (user turns, newline-joined) -> the last answer of the largest
    open model that answered it."""
    best: dict[str, tuple[int, str]] = {}
    for model, chat in zip(chats["model"], chats["conversation"]):
        m = SIZE.search(model or "")
        if not m or model == "gpt-4" or not chat:
            continue
        size, prompt = int(m.group(1)), "\n".join(_said(chat, "user"))
        if prompt not in best or size > best[prompt][0]:
            best[prompt] = (size, chat[-1].get("content") or "")
    return {prompt: answer for prompt, (_, answer) in best.items()}


def convert(batch: dict[str, list], chats: dict[str, list]) -> dict[str, list]:
    others = _largest_open_answers(chats)
    ids = batch.get("conversation_id") or [None] * len(batch["model"])
    out = {"conversations": [], "chosen": [], "rejected": [], "row": [], "meta": []}
    for i, (model, chat) in enumerate(zip(batch["model"], batch["conversation"])):
        if model != "gpt-4" or not chat or len(chat) != 2:
            continue
        answer = "\n".join(_said(chat, "assistant"))
        rejected = others.get("\n".join(_said(chat, "user")))
        if rejected is None or rejected == answer or has_refusal(answer):
            continue
        out["conversations"].append([turn(chat[0].get("role"), chat[0].get("content"))])
        out["chosen"].append(chat[-1].get("content"))
        out["rejected"].append(rejected)
        out["row"].append(i)
        out["meta"].append({"conversation_id": ids[i]})
    return out
