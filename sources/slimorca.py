"""SlimOrca: GPT-4 answers to FLAN tasks with Orca system prompts, answers graded correct.

Bagel drops conversations with a refusal anywhere, and those whose first human turn
airoboros-3.2 extends to several turns (its `slimorca_multiturn` category), then keeps a
random 200,000 (use `sample: 200000` in the manifest). We do the same, with airoboros-3.2
joined as the `airoboros` input, checking only the gpt turns for refusals (a question
about something illegal is not a refusal); empty system prompts are left out.
"""

from composer.kit import has_refusal, per_input
from composer.turns import turn

name = "slimorca"
kind = "sft"
hub = "Open-Orca/SlimOrca"
confidence = 2
license = "mit"
columns = ("conversations",)
inputs = {"airoboros": {"hub": "jondurbin/airoboros-3.2"}}


def _first_human(turns: list[dict] | None) -> str | None:
    values = (t.get("value") for t in turns or [] if t.get("from") in ("human", "user"))
    return next((v.strip() for v in values if isinstance(v, str)), None)


@per_input
def _extended(airoboros: dict[str, list]) -> set[str]:
    """First human turns that airoboros-3.2 extends to several turns."""
    return {
        _first_human(turns)
        for turns, category in zip(airoboros["conversations"], airoboros["category"])
        if category == "slimorca_multiturn"
    } - {None}


def convert(batch: dict[str, list], airoboros: dict[str, list]) -> dict[str, list]:
    extended = _extended(airoboros)
    out = {"conversations": [], "row": []}
    for i, turns in enumerate(batch["conversations"]):
        turns = [turn(t.get("from"), t.get("value")) for t in turns or []]
        if turns and turns[0]["from"] == "system" and not (turns[0]["value"] or "").strip():
            turns = turns[1:]
        answers = "\n".join(t["value"] or "" for t in turns if t["from"] == "gpt")
        if has_refusal(answers) or _first_human(turns) in extended:
            continue
        out["conversations"].append(turns)
        out["row"].append(i)
    return out
