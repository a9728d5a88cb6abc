"""Shared by the ShareGPT-shaped plugins: turn lists, and bagel's clean-up of roleplay chats."""

from __future__ import annotations

from typing import Any

from composer.kit import has_refusal
from composer.turns import first_set, turn


def sharegpt_turns(conversation: Any) -> list[dict]:
    """A ShareGPT list of {from, value} turns, with the roles named as ours."""
    return [  # a turn that is not an object stays, for validation to reject the whole chat
        turn(first_set(t, "from", "role"), first_set(t, "value", "content"))
        if isinstance(t, dict)
        else t
        for t in conversation or []
    ]


def roleplay(conversation: Any, max_chars: int = 0) -> list[dict] | None:
    """The chat as turns, or None where bagel drops it.

    Dropped: fewer than 3 turns, a character's turn that refuses or moralises, an opening
    by the character with no system turn to hold it, no answer after a user turn. An
    opening by the character after the system turn becomes part of the system prompt
    ("First message: ..."), as bagel does, but beside the persona instead of over it. A
    trailing user turn is cut. With `max_chars`, the chat is cut after the last character
    turn that keeps it within that many characters (bagel meant to fit 4k tokens).
    """
    turns = sharegpt_turns(conversation)
    if len(turns) < 3 or turns[0]["from"] == "gpt":
        return None
    if any(has_refusal(t["value"]) for t in turns if t["from"] == "gpt"):
        return None
    opening = turns[1]["value"]
    if turns[0]["from"] == "system" and turns[1]["from"] == "gpt" and isinstance(opening, str):
        parts = [turns[0]["value"], f"First message: {opening}"]
        system = "\n\n".join(p.strip() for p in parts if isinstance(p, str) and p.strip())
        turns = [turn("system", system), *turns[2:]]
    total, end = 0, 0
    for i, t in enumerate(turns):
        total += len(t["value"]) if isinstance(t["value"], str) else 0
        if max_chars and total > max_chars:
            break
        if t["from"] == "gpt":
            end = i + 1
    return turns[:end] if any(t["from"] == "human" for t in turns[:end]) else None
