"""ShareGPT conversations: a list of {from, value} turns per row."""

from composer.records import turn_list_problem
from composer.turns import first_set, turn, with_system

name = "sharegpt"
kind = "sft"
columns = ("conversations",)


def convert(batch: dict[str, list], system_column: str | None = None) -> dict[str, list]:
    systems = batch[system_column] if system_column else [None] * len(batch["conversations"])
    out, errors = [], []
    for turns, system in zip(batch["conversations"], systems):
        problem = turn_list_problem(turns)
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
