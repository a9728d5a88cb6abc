"""Shared by the CAMEL-AI science plugins (camel_ai_biology, _chemistry, _math, _physics).

Each dataset is GPT-4 problem/solution pairs (`message_1`, `message_2`) over topics and
subtopics. Bagel drops refusing solutions, then keeps 5,000 pairs per dataset stratified
by topic (the upstream column is named `topic;`). We do the same: composer.kit.has_refusal,
then a stratified sample of `size` pairs seeded by the manifest's seed.
"""

from composer.kit import has_refusal, stratified_sample
from composer.turns import turn

COLUMNS = ("message_1", "message_2", "topic;")
OPTIONAL = ("sub_topic",)


def check_options(size: int = 5000) -> list[tuple[str, str]]:
    return [] if size >= 1 else [("size", f"expected a positive number of pairs, got {size}")]


def convert(batch: dict[str, list], size: int = 5000, seed: int = 0) -> dict[str, list]:
    kept = [i for i, answer in enumerate(batch["message_2"]) if not has_refusal(answer)]
    topics = batch["topic;"]
    rows = [kept[j] for j in stratified_sample([topics[i] for i in kept], size, seed, "camel")]
    subtopics = batch.get("sub_topic") or [None] * len(topics)
    return {
        "conversations": [
            [turn("human", batch["message_1"][i]), turn("gpt", batch["message_2"][i])] for i in rows
        ],
        "row": rows,
        "meta": [{"topic": topics[i], "sub_topic": subtopics[i]} for i in rows],
    }
