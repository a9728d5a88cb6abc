"""Preference pairs: prompt/chosen/rejected, system/question/chosen/rejected, or HH transcripts.

The shape is found from the columns: `prompt` (TRL, UltraFeedback-style; chosen/rejected as
strings or as message lists), `question` (H2O LLM Studio, orca_dpo_pairs), or only
`chosen`/`rejected` holding Anthropic HH full transcripts ("\\n\\nHuman: ...\\n\\nAssistant:
..."), which are split into the shared multi-turn context and the two final answers.
"""

import re

from composer.turns import text_of, turn, with_system

name = "dpo"
kind = "dpo"
columns = ("chosen", "rejected")
optional_columns = ("prompt", "question", "system")
SHAPES = ("auto", "prompt", "question", "hh")


def check_options(shape: str = "auto") -> list[tuple[str, str]]:
    return [] if shape in SHAPES else [("shape", f"expected one of {', '.join(SHAPES)}")]


_HH_TURN = re.compile(r"\n\n(Human|Assistant): ?")


def hh_turns(transcript: str) -> list[dict] | None:
    """Split an HH transcript into ShareGPT turns; None if it is not one."""
    parts = _HH_TURN.split("\n\n" + transcript.lstrip("\n") if transcript else "")
    if len(parts) < 3 or parts[0].strip():
        return None
    return [
        turn("human" if role == "Human" else "gpt", text.strip())
        for role, text in zip(parts[1::2], parts[2::2])
    ]


def _answer(value):
    """A chosen/rejected value: a string, or a message list whose last message is the answer."""
    if isinstance(value, list) and value and isinstance(value[-1], dict):
        return text_of(value[-1].get("content"))
    return value


def _prompt_turns(prompt) -> list[dict]:
    if isinstance(prompt, list):
        return [  # a message that is not an object stays: validation rejects the pair
            turn(m.get("role"), text_of(m.get("content"))) if isinstance(m, dict) else m
            for m in prompt
        ]
    return [turn("human", prompt)]


def _from_transcripts(chosen, rejected):
    """Context and answers from two whole conversations: HH strings or message lists (TRL)."""
    if isinstance(chosen, list) and isinstance(rejected, list):
        c, r = _prompt_turns(chosen), _prompt_turns(rejected)
    elif isinstance(chosen, str) and isinstance(rejected, str):
        c, r = hh_turns(chosen), hh_turns(rejected)
    else:
        c = r = None
    if not c or not r:
        return [], None, None, "not an HH transcript ('\\n\\nHuman: ... \\n\\nAssistant: ...')"
    if c[-1]["from"] != "gpt" or r[-1]["from"] != "gpt":
        return [], None, None, "a transcript does not end with an assistant answer"
    if c[:-1] != r[:-1]:
        return [], None, None, "chosen and rejected transcripts do not share one context"
    return c[:-1], c[-1]["value"], r[-1]["value"], None


def convert(batch: dict[str, list], shape: str = "auto") -> dict[str, list]:
    n = len(batch["chosen"])
    if shape == "auto":
        shape = "prompt" if "prompt" in batch else "question" if "question" in batch else "hh"
    systems = batch.get("system") or [None] * n
    out = {"conversations": [], "chosen": [], "rejected": [], "error": []}
    for i in range(n):
        error = None
        if shape == "hh":
            context, chosen, rejected, error = _from_transcripts(
                batch["chosen"][i], batch["rejected"][i]
            )
        else:
            context = _prompt_turns(batch[shape][i])
            chosen, rejected = _answer(batch["chosen"][i]), _answer(batch["rejected"][i])
        out["conversations"].append(with_system(systems[i], context))
        out["chosen"].append(chosen)
        out["rejected"].append(rejected)
        out["error"].append(error)
    return out
