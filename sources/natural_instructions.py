"""Natural Instructions (Super-NaturalInstructions, 1,600+ tasks): a task-stratified sample.

Each row is a task definition, an input and its target; the definition and the input make
the instruction. Bagel (PRIORITY 1) keeps 30,000 rows of the train split stratified by
`task_name` (a train_test_split with its own unseeded shuffle). Here: `size` rows (default
30,000), each task getting its share, drawn with the manifest's seed from the `task_name`
column alone (`select`), so the millions of other rows are never converted; the task in meta.
"""

from composer.kit import stratified_sample
from composer.turns import turn

name = "natural_instructions"
kind = "sft"
hub = "Muennighoff/natural-instructions"
confidence = 1
license = "apache-2.0"
columns = ("task_name", "definition", "inputs", "targets")
optional_columns = ("id",)
select_columns = ("task_name",)


def check_options(size: int = 30000) -> list[tuple[str, str]]:
    return [("size", f"expected a positive number of rows, got {size}")] if size < 1 else []


def select(columns: dict[str, list], size: int = 30000, seed: int = 0) -> list[int]:
    return stratified_sample(columns["task_name"], size, seed, name)


def convert(batch: dict[str, list]) -> dict[str, list]:
    ids = batch.get("id") or [None] * len(batch["task_name"])
    conversations = []
    for definition, inputs, target in zip(batch["definition"], batch["inputs"], batch["targets"]):
        parts = (definition, inputs)
        instruction = "\n\n".join(p.strip() for p in parts if isinstance(p, str) and p.strip())
        conversations.append([turn("human", instruction), turn("gpt", target)])
    return {
        "conversations": conversations,
        "meta": [{"task": task, "id": i} for task, i in zip(batch["task_name"], ids)],
    }
