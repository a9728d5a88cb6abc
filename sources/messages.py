"""OpenAI-style chat messages: a list of {role, content} per row (tool calls kept)."""

import json

from composer.records import turn_list_problem
from composer.turns import text_of, turn

name = "messages"
kind = "sft"
columns = ("messages",)


def _turn(message: dict) -> dict:
    content = text_of(message.get("content"))
    if message.get("role") == "assistant" and message.get("tool_calls"):
        calls = message["tool_calls"]
        value = {"content": content, "tool_calls": calls} if content else calls
        return turn("function_call", json.dumps(value, ensure_ascii=False, sort_keys=True))
    return turn(message.get("role"), content)


def _merge_tool_results(turns: list[dict]) -> list[dict]:
    """Parallel tool results (several `tool` messages in a row) become one observation."""
    merged: list[dict] = []
    for t in turns:
        if merged and t["from"] == merged[-1]["from"] == "observation":
            merged[-1] = {**merged[-1], "value": f"{merged[-1]['value']}\n{t['value']}"}
        else:
            merged.append(t)
    return merged


def convert(batch: dict[str, list]) -> dict[str, list]:
    errors = [turn_list_problem(messages) for messages in batch["messages"]]
    return {  # a message that is not an object rejects the row: never a shortened chat
        "conversations": [
            None if error else _merge_tool_results([_turn(m) for m in messages or []])
            for messages, error in zip(batch["messages"], errors)
        ],
        "error": errors,
    }
