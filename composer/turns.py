"""Small helpers the generic plugins share: role names and turn lists."""

from __future__ import annotations

from typing import Any

# Upstream role names -> ShareGPT roles. Unknown roles pass through and are rejected
# by record validation with a clear reason, never guessed.
ROLE_NAMES = {
    "system": "system",
    "developer": "system",
    "human": "human",
    "user": "human",
    "prompter": "human",
    "gpt": "gpt",
    "assistant": "gpt",
    "model": "gpt",
    "bot": "gpt",
    "chatgpt": "gpt",
    "bing": "gpt",
    "bard": "gpt",
    "function_call": "function_call",
    "observation": "observation",
    "tool": "observation",
    "function": "observation",
}


def turn(role: str, value: Any) -> dict[str, Any]:
    """A ShareGPT turn. A number (an answer "4" read from a numeric column) becomes text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    return {"from": ROLE_NAMES.get(role, role), "value": value}


def with_system(system: Any, turns: list[dict]) -> list[dict]:
    """Prepend a system turn when the row has a non-empty system prompt and no system turn."""
    if isinstance(system, str) and system.strip() and not (turns and turns[0]["from"] == "system"):
        return [turn("system", system), *turns]
    return turns


def text_of(content: Any) -> Any:
    """OpenAI content may be a string or a list of parts; keep the text parts."""
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict)]
        return "".join(p for p in parts if isinstance(p, str))
    return content


def first_set(mapping: dict, *keys: str) -> Any:
    """The first of `keys` whose value is not None (Arrow gives absent struct fields as None)."""
    return next((mapping[k] for k in keys if mapping.get(k) is not None), None)
