"""Orca-chat: OpenOrca GPT-4 exchanges grouped into multi-turn chats under one system prompt.

A seed of the airoboros/bagel-era mixtures, not one of bagel's loaders. Each row has a
system prompt (`instruction`) and a list of {input, output} exchanges; reads
orca-chat-gpt4.json (orca-chat-gpt4-8k.json is the same chats packed to 8k tokens).
`system: false` leaves out the system prompt. A row with no exchanges is rejected.
"""

from composer.turns import turn, with_system

name = "orca_chat"
kind = "sft"
hub = "shahules786/orca-chat"
data_files = "orca-chat-gpt4.json"
confidence = 1
license = "apache-2.0"
columns = ("conversation",)
optional_columns = ("instruction",)


def convert(batch: dict[str, list], system: bool = True) -> dict[str, list]:
    n = len(batch["conversation"])
    systems = (batch.get("instruction") if system else None) or [None] * n
    out = []
    for prompt, exchanges in zip(systems, batch["conversation"]):
        turns = []
        for exchange in exchanges or []:
            turns += [turn("human", exchange.get("input")), turn("gpt", exchange.get("output"))]
        out.append(with_system(prompt, turns))
    return {"conversations": out}
