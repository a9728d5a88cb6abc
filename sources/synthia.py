"""Synthia v1.3: GPT-4 answers to instructions with Tree-of-Thought style system prompts.

Bagel (PRIORITY 1) skips rows whose system prompt says USER or whose instruction quotes a
"USER:"/"ASSISTANT:" marker (text about the Vicuna format), splits an instruction holding
earlier USER:/ASSISTANT: turns into a multi-turn chat, drops chats with a refusal and keeps
25,000 of the rest (shuffled with seed 42). Here: the same skips and split; refusals are
looked for in the assistant's turns only (bagel also matched the user's and the system's);
the 25,000 is the manifest's `sample: 25000`.
"""

import re

from composer.kit import has_refusal
from composer.turns import turn, with_system

name = "synthia"
kind = "sft"
hub = "migtissera/Synthia-v1.3"
confidence = 1
license = "apache-2.0"
columns = ("instruction", "response")
optional_columns = ("system",)

_MARKER = re.compile(r"\b(USER|ASSISTANT):")
_QUOTED_MARKER = re.compile(r"[\"'](?:USER|ASSISTANT):?[\"']")


def _turns(instruction: str) -> list[dict]:
    """The user's turns, and the assistant's earlier ones, from USER:/ASSISTANT: markers."""
    parts = _MARKER.split(instruction)
    if len(parts) == 1:
        return [turn("human", instruction)]
    turns = [turn("human", parts[0].strip())] if parts[0].strip() else []
    for role, text in zip(parts[1::2], parts[2::2]):
        if text.strip():
            turns.append(turn("human" if role == "USER" else "gpt", text.strip()))
    return turns


def convert(batch: dict[str, list]) -> dict[str, list]:
    systems = batch.get("system") or [None] * len(batch["instruction"])
    out = {"conversations": [], "row": []}
    for i, (system, instruction, response) in enumerate(
        zip(systems, batch["instruction"], batch["response"])
    ):
        if not isinstance(instruction, str):
            turns = [turn("human", instruction), turn("gpt", response)]
        elif "USER" in (system or "") or _QUOTED_MARKER.search(instruction):
            continue
        else:
            turns = [*_turns(instruction), turn("gpt", response)]
        if any(has_refusal(t["value"]) for t in turns if t["from"] == "gpt"):
            continue
        out["conversations"].append(with_system(system, turns))
        out["row"].append(i)
    return out
