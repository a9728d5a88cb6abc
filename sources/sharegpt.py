"""ShareGPT conversations: a list of {from, value} turns per row."""

from composer.turns import first_set, turn, with_system

name = "sharegpt"
kind = "sft"
columns = ("conversations",)


def convert(batch: dict[str, list], system_column: str | None = None) -> dict[str, list]:
    systems = batch[system_column] if system_column else [None] * len(batch["conversations"])
    out, errors = [], []
    for turns, system in zip(batch["conversations"], systems):
        problem = _shape_problem(turns)
        errors.append(problem)
        if problem:  # rejected whole: never a conversation silently shortened
            out.append(None)
            continue
        turns = [
            turn(first_set(t, "from", "role"), first_set(t, "value", "content"))
            for t in turns or []
        ]
        out.append(with_system(system, turns))
    return {"conversations": out, "error": errors}


def _shape_problem(turns: object) -> tuple[str, str] | None:
    if turns is None:
        return None  # no conversation: record validation says so
    if not isinstance(turns, list):
        return "malformed turn", f"the conversation is {type(turns).__name__}, not a list of turns"
    for i, t in enumerate(turns):
        if not isinstance(t, dict):
            return "malformed turn", f"turn {i} is {type(t).__name__}, not an object"
    return None
