"""ShareGPT conversations: a list of {from, value} turns per row."""

from composer.turns import first_set, turn, with_system

name = "sharegpt"
kind = "sft"
columns = ("conversations",)


def convert(batch: dict[str, list], system_column: str | None = None) -> dict[str, list]:
    systems = batch[system_column] if system_column else [None] * len(batch["conversations"])
    out = []
    for turns, system in zip(batch["conversations"], systems):
        turns = [
            turn(first_set(t, "from", "role"), first_set(t, "value", "content"))
            for t in turns or []
            if isinstance(t, dict)
        ]
        out.append(with_system(system, turns))
    return {"conversations": out}
