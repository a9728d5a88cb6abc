"""Dolphin: FLANv2 questions with uncensored GPT-4 answers under Orca-style system prompts.

A seed of the airoboros/bagel-era mixtures, not one of bagel's loaders. Rows are alpaca
shaped, but `instruction` holds the system prompt and `input` the question. Reads the ~1M
GPT-4 completions (flan1m-alpaca-uncensored.jsonl); flan5m-alpaca-uncensored.jsonl (GPT-3.5)
and the -deduped files are other `data_files`. `system: false` leaves out the system
prompt; a row with no `input` has its `instruction` as the question.
"""

from composer.turns import turn, with_system

name = "dolphin"
kind = "sft"
hub = "cognitivecomputations/dolphin"
data_files = "flan1m-alpaca-uncensored.jsonl"
confidence = 1
license = "apache-2.0"
columns = ("instruction", "input", "output")


def convert(batch: dict[str, list], system: bool = True) -> dict[str, list]:
    out = []
    for prompt, question, answer in zip(batch["instruction"], batch["input"], batch["output"]):
        if isinstance(question, str) and question.strip():
            out.append(with_system(prompt if system else None, [turn("human", question)]))
        else:
            out.append([turn("human", prompt)])
        out[-1].append(turn("gpt", answer))
    return {"conversations": out}
