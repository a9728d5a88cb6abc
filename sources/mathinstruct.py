"""MathInstruct math problems with chain-of-thought or program-of-thought solutions.

Bagel (PRIORITY 3) keeps 75,000 of the train split's rows, stratified by `source` (the
dataset each problem came from), so every source keeps its share. Here `size` is that
sample's row count, seeded by the manifest's seed; the rows are taken as they are: the
instruction, then the output.
"""

from composer.kit import stratified_sample
from composer.turns import turn

name = "mathinstruct"
kind = "sft"
hub = "TIGER-Lab/MathInstruct"
confidence = 3
license = "mit"
columns = ("source", "instruction", "output")
batch_size = None  # the stratified sample needs every row


def check_options(size: int = 75000) -> list[tuple[str, str]]:
    return [] if size >= 0 else [("size", f"expected a row count, got {size}")]


def convert(batch: dict[str, list], size: int = 75000, seed: int = 0) -> dict[str, list]:
    keep = stratified_sample(batch["source"], size, seed, name)
    return {
        "conversations": [
            [turn("human", batch["instruction"][i]), turn("gpt", batch["output"][i])] for i in keep
        ],
        "row": keep,
        "meta": [{"source": batch["source"][i]} for i in keep],
    }
