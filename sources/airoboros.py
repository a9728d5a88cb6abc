"""Airoboros 3.2: GPT-4 synthetic instructions in many categories, the category kept in meta.

Bagel (PRIORITY 1) takes the ShareGPT conversations of every category but `summarization`
(the airoboros-summarization source covers it). Here: the same by default;
`skip_summarization: false` keeps it, and `categories` keeps only the categories listed.
Bagel also pairs rewritten writing/roleplay answers with their airoboros 2.x originals as
DPO pairs; that is a preference source of its own, not part of this one.
"""

from composer.sources._roleplay import sharegpt_turns

name = "airoboros"
kind = "sft"
hub = "jondurbin/airoboros-3.2"
confidence = 1
license = "cc-by-4.0"
columns = ("conversations", "category")
optional_columns = ("id",)


def check_options(
    categories: list[str] | None = None, skip_summarization: bool = True
) -> list[tuple[str, str]]:
    if categories is None:
        return []
    if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
        return [("categories", f"expected a list of category names, got {categories!r}")]
    if skip_summarization and "summarization" in categories:
        return [("categories", "lists summarization; set skip_summarization: false to keep it")]
    return []


def convert(
    batch: dict[str, list], categories: list[str] | None = None, skip_summarization: bool = True
) -> dict[str, list]:
    ids = batch.get("id") or [None] * len(batch["category"])
    out = {"conversations": [], "row": [], "meta": []}
    for i, (conversation, category) in enumerate(zip(batch["conversations"], batch["category"])):
        if (categories is not None and category not in categories) or (
            skip_summarization and category == "summarization"
        ):
            continue
        out["conversations"].append(sharegpt_turns(conversation))
        out["row"].append(i)
        out["meta"].append({"category": category, "id": ids[i]})
    return out
