"""Airoboros 3.2's rewritten creative answers (chosen) against airoboros 2.0's originals.

For airoboros 3.x the roleplay and writing tasks of the 2.0 set were regenerated to be
longer and less cliché. Bagel (`airoboros.py`, priority 1) joins the two on the
instruction (lowercased, stripped; here also with runs of whitespace made one space) and
makes a pair only when the new answer is longer; the old set is the joined input `old`
(its `instructions.jsonl`: instruction/response/category). The context is the 3.2
conversation up to its first human turn (its system prompt included); the chosen answer is
the gpt turn after it. Bagel takes every pair: no `sample:`. (Bagel also trains SFT on the
3.2 conversations: that is the airoboros SFT source's job.)
"""

from composer.kit import per_input
from composer.turns import turn

name = "airoboros_dpo"
kind = "dpo"
hub = "jondurbin/airoboros-3.2"
confidence = 1
license = "unknown"
columns = ("category", "conversations")
optional_columns = ("id",)
inputs = {"old": {"hub": "jondurbin/airoboros-gpt4-m2.0", "data_files": "instructions.jsonl"}}
CREATIVE = ("roleplay", "writing")


def _key(instruction) -> str | None:
    return " ".join(instruction.casefold().split()) if isinstance(instruction, str) else None


@per_input
def _originals(old: dict[str, list]) -> dict[str, str]:
    """The old airoboros answer to each creative instruction."""
    originals: dict[str, str] = {}
    categories = old.get("category") or [None] * len(old["instruction"])
    for instruction, response, category in zip(old["instruction"], old["response"], categories):
        if category in CREATIVE and isinstance(response, str):
            originals.setdefault(_key(instruction), response)
    return originals


def convert(batch: dict[str, list], old: dict[str, list]) -> dict[str, list]:
    originals = _originals(old)
    ids = batch.get("id") or [None] * len(batch["category"])
    out = {"conversations": [], "chosen": [], "rejected": [], "row": [], "meta": []}
    for i, (category, turns) in enumerate(zip(batch["category"], batch["conversations"])):
        if category not in CREATIVE or not turns:
            continue
        q = next((k for k, t in enumerate(turns) if t["from"] == "human"), len(turns))
        if q + 1 >= len(turns) or turns[q + 1]["from"] != "gpt":
            continue
        answer, original = turns[q + 1]["value"], originals.get(_key(turns[q]["value"]))
        if original is None or not isinstance(answer, str) or len(answer) <= len(original):
            continue
        out["conversations"].append([turn(t["from"], t["value"]) for t in turns[: q + 1]])
        out["chosen"].append(answer)
        out["rejected"].append(original)
        out["row"].append(i)
        out["meta"].append({"id": ids[i], "category": category})
    return out
