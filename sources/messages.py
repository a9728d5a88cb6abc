"""OpenAI-style chat messages: a list of {role, content} per row (tool calls kept)."""

import json

from composer.sources._turns import text_of, turn

name = "messages"
kind = "sft"
columns = ("messages",)


def _turn(message: dict) -> dict:
    if (
        message.get("role") == "assistant"
        and message.get("tool_calls")
        and not message.get("content")
    ):
        calls = json.dumps(message["tool_calls"], ensure_ascii=False, sort_keys=True)
        return turn("function_call", calls)
    return turn(message.get("role"), text_of(message.get("content")))


def convert(batch: dict[str, list]) -> dict[str, list]:
    return {
        "conversations": [
            [_turn(m) for m in messages or [] if isinstance(m, dict)]
            for messages in batch["messages"]
        ]
    }
