"""Airoboros-style summarization (booksum, cnndm, mediasum, samsum, xsum) with BEGININPUT blocks.

Bagel (PRIORITY 3, module summarization.py) reads five files of
mattpscott/airoboros-summarization, keeps 2,000 rows of each (shuffled with seed 42), moves
the text out of the BEGINCONTEXT/ENDCONTEXT block that closes each input (airoboros puts
metadata there, not the text), skips rows without that block and drops a row whose prompt
and response pass 4,000 Mistral tokens. Here a row without the block is rejected, and
`max_chars` (16,000 characters, about 4,000 tokens; 0 for no limit) stands in for the
token count, so that no tokenizer is needed. The 2,000 per file are the manifest's: one
source per file, with `data_files: <file>` and `sample: 2000`.
"""

import re

from composer.turns import turn

name = "airoboros_summarization"
kind = "sft"
hub = "mattpscott/airoboros-summarization"
data_files = [
    f"expert_summarization_4096-{part}.jsonl"
    for part in (
        "booksum-train",
        "cnndm-summaries",
        "mediasum-summaries",
        "samsum-summaries",
        "xsum-summaries",
    )
]
confidence = 3
license = "bsd-3-clause"
columns = ("instruction", "response")

_CONTEXT = re.compile(r"BEGINCONTEXT\n*(.*)ENDCONTEXT\n*(?=ENDINPUT)", re.DOTALL)


def check_options(max_chars: int = 16000) -> list[tuple[str, str]]:
    return [] if max_chars >= 0 else [("max_chars", f"expected 0 or more, got {max_chars}")]


def convert(batch: dict[str, list], max_chars: int = 16000) -> dict[str, list]:
    out: dict[str, list] = {"conversations": [], "row": [], "error": []}
    for i, (instruction, response) in enumerate(zip(batch["instruction"], batch["response"])):
        found = _CONTEXT.search(instruction) if isinstance(instruction, str) else None
        response = response.strip() if isinstance(response, str) else response
        if found:
            instruction = instruction[: found.start()] + found.group(1) + instruction[found.end() :]
            if max_chars and len(instruction) + len(response or "") > max_chars:
                continue  # too long to train on, as bagel's token limit
        out["row"].append(i)
        out["conversations"].append(
            [turn("human", instruction), turn("gpt", response)] if found else None
        )
        out["error"].append(None if found else "no BEGINCONTEXT...ENDCONTEXT block before ENDINPUT")
    return out
