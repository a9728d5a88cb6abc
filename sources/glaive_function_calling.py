"""Glaive function calling v2: chats with function calls, function results and answers.

Bagel splits the chat at `USER:`, `ASSISTANT:` and `FUNCTION RESPONSE:`, wraps a call in
`<|begin_func|> ... <|end_func|>` and a result in `<|begin_func_response|>...
<|end_func_response|>`, drops `<|endoftext|>`, and keeps a random 10,000 (use
`sample: 10000` in the manifest). We do the same, with calls as `function_call` turns and
results as `observation` turns (rendered as assistant and user, as in bagel), and split
only at markers that start a line (bagel also splits inside a message).
"""

import re

from composer.turns import turn, with_system

name = "glaive_function_calling"
kind = "sft"
hub = "glaiveai/glaive-function-calling-v2"
confidence = 2
license = "apache-2.0"
columns = ("chat",)
optional_columns = ("system",)
_MARKER = re.compile(r"^(USER|ASSISTANT|FUNCTION RESPONSE):[ \t]*", re.MULTILINE)


def _turn(role: str, text: str) -> dict:
    text = text.replace("<|endoftext|>", "").strip()
    if role == "USER":
        return turn("human", text)
    if role == "FUNCTION RESPONSE":
        return turn("observation", f"<|begin_func_response|>{text}<|end_func_response|>")
    if "<functioncall>" in text:
        before, _, call = text.partition("<functioncall>")
        return turn("function_call", f"{before}<|begin_func|> {call.strip()} <|end_func|>")
    return turn("gpt", text)


def convert(batch: dict[str, list]) -> dict[str, list]:
    systems = batch.get("system") or [None] * len(batch["chat"])
    out = {"conversations": [], "error": []}
    for chat, system in zip(batch["chat"], systems):
        parts = _MARKER.split(chat or "")
        turns = [_turn(role, text) for role, text in zip(parts[1::2], parts[2::2])]
        if isinstance(system, str):
            system = system.removeprefix("SYSTEM:").strip()
        out["conversations"].append(with_system(system, turns))
        out["error"].append("text before the first USER: turn" if parts[0].strip() else None)
    return out
