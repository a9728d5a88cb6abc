"""Alpaca rows: instruction, optional input, output (and optional system prompt)."""

from composer.turns import turn, with_system

name = "alpaca"
kind = "sft"
columns = ("instruction", "output")
optional_columns = ("input", "system")


def convert(batch: dict[str, list], input_separator: str = "\n\n") -> dict[str, list]:
    n = len(batch["instruction"])
    inputs = batch.get("input") or [None] * n
    systems = batch.get("system") or [None] * n
    out = []
    for instruction, extra, output, system in zip(
        batch["instruction"], inputs, batch["output"], systems
    ):
        if isinstance(instruction, str) and isinstance(extra, str) and extra.strip():
            instruction = f"{instruction}{input_separator}{extra}"
        out.append(with_system(system, [turn("human", instruction), turn("gpt", output)]))
    return {"conversations": out}
