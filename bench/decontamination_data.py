"""Contaminated and clean conversations for the decontamination benchmark, from real data.

GSM8K test questions are injected into clean conversations in eight ways (verbatim, changed
case and spacing, wrapped in an instruction, reworded with synonyms and renamed people,
sentences reordered, in the second user turn, inside an answer, as a DPO prompt). GSM8K
train is the same-style clean data (a good detector keeps it), HH-RLHF dialogues the
unrelated clean data. All choices are seeded.
"""

from __future__ import annotations

import gzip
import json
import random
import re
from pathlib import Path

SYNONYMS = {
    "bought": "purchased",
    "buys": "purchases",
    "buy": "purchase",
    "sold": "traded away",
    "sells": "trades away",
    "friends": "pals",
    "friend": "pal",
    "total": "overall",
    "altogether": "in all",
    "each": "every",
    "many": "much",
    "cost": "price",
    "costs": "is priced at",
    "earns": "makes",
    "earned": "made",
    "spent": "paid out",
    "spends": "pays out",
    "store": "shop",
    "car": "vehicle",
    "house": "home",
    "money": "cash",
    "children": "kids",
    "students": "pupils",
    "teacher": "instructor",
    "week": "seven-day period",
    "day": "24-hour period",
    "half": "one half",
    "twice": "two times",
    "book": "novel",
    "books": "novels",
    "walks": "strolls",
    "runs": "jogs",
    "makes": "produces",
    "made": "produced",
    "gets": "receives",
    "got": "received",
    "gave": "handed",
    "gives": "hands",
    "needs": "requires",
    "wants": "wishes",
    "left": "remaining",
    "has": "owns",
    "had": "owned",
    "how": "in what way",
    "much": "a lot",
    "find": "work out",
    "number": "count",
}
NAMES = (
    "Aiko Bram Chidi Dagny Emeka Farah Goran Hana Idris Jurgen Kalani Lior Maren Nkechi "
    "Oskar Priya Quentin Rosalind Soren Tamsin Ulrich Vesna Wendell Ximena Yusuf Zofia"
).split()


def reword(text: str, rng: random.Random) -> str:
    """Synonyms for common words, and every capitalised name swapped for another."""
    names: dict[str, str] = {}

    def swap(match: re.Match) -> str:
        word = match.group(0)
        lower = word.lower()
        if lower in SYNONYMS and rng.random() < 0.8:
            out = SYNONYMS[lower]
            return out.capitalize() if word[0].isupper() else out
        start = match.start()
        sentence_start = start == 0 or text[:start].rstrip().endswith((".", "?", "!"))
        if word[0].isupper() and not sentence_start and len(word) > 2 and word not in ("I",):
            names.setdefault(word, rng.choice(NAMES))
            return names[word]
        return word

    out = re.sub(r"[A-Za-z]+", swap, text)
    first = re.match(r"[A-Z][a-z]+", out)  # the sentence-initial name, if the same one recurs
    if first and first.group(0) in names:
        out = names[first.group(0)] + out[first.end() :]
    return out


def reorder(text: str, rng: random.Random) -> str:
    sentences = re.split(r"(?<=[.!?])\s+", text.strip())
    if len(sentences) < 3:
        return " ".join(reversed(sentences))
    body, question = sentences[:-1], sentences[-1]
    rng.shuffle(body)
    return " ".join([question, *body]) if rng.random() < 0.5 else " ".join([*body, question])


def case_spacing(text: str, rng: random.Random) -> str:
    text = text.upper() if rng.random() < 0.5 else text.lower()
    return re.sub(r" ", lambda _: rng.choice(["  ", " ", "\n", " \t "]), text)


def conv(*turns: str) -> list[dict]:
    return [{"from": "human" if i % 2 == 0 else "gpt", "value": t} for i, t in enumerate(turns)]


def load_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def hh_turns(transcript: str) -> list[str]:
    parts = re.split(r"\n\n(?:Human|Assistant): ?", "\n\n" + transcript.strip())
    return [p.strip() for p in parts[1:] if p.strip()]


KINDS = (
    "verbatim",
    "case_spacing",
    "wrapped",
    "reworded",
    "reordered",
    "later_turn",
    "in_answer",
    "dpo_prompt",
)


def make(data: Path, per_kind: int = 150, seed: int = 0) -> dict:
    """{'benchmark': [...test items], 'contaminated': {kind: [records]}, 'same_style': [...],
    'unrelated': [...]}; a record is {'conversations', and 'chosen'/'rejected' for DPO}."""
    rng = random.Random(seed)
    test = load_jsonl(data / "gsm8k_test.jsonl")
    train = load_jsonl(data / "gsm8k_train.jsonl")
    hh = load_jsonl(data / "hh_harmless_test.jsonl.gz")
    filler = [r["answer"] for r in train]
    contaminated: dict[str, list[dict]] = {}
    for kind in KINDS:
        rows = []
        for item in rng.sample(test, per_kind):
            # Only verbatim copies keep the test answer: elsewhere the answer must not help.
            q = item["question"]
            a = item["answer"] if kind == "verbatim" else "Let me work through it step by step."
            other = rng.choice(train)
            if kind == "verbatim":
                rows.append({"conversations": conv(q, a)})
            elif kind == "case_spacing":
                rows.append({"conversations": conv(case_spacing(q, rng), a)})
            elif kind == "wrapped":
                rows.append(
                    {
                        "conversations": conv(
                            f"Solve this step by step: {q}\nShow your reasoning, then the answer.",
                            a,
                        )
                    }
                )
            elif kind == "reworded":
                rows.append({"conversations": conv(reword(q, rng), a)})
            elif kind == "reordered":
                rows.append({"conversations": conv(reorder(q, rng), a)})
            elif kind == "later_turn":
                rows.append({"conversations": conv(other["question"], other["answer"], q, a)})
            elif kind == "in_answer":
                intro = rng.choice(filler)
                rows.append(
                    {
                        "conversations": conv(
                            "Write me a practice word problem, with a worked example first.",
                            f"Here is a worked example:\n{intro}\n\nNow try this one: {q}",
                        )
                    }
                )
            else:
                rows.append({"conversations": conv(q), "chosen": a, "rejected": "I don't know."})
        contaminated[kind] = rows
    same_style = [{"conversations": conv(r["question"], r["answer"])} for r in train]
    unrelated = []
    for r in hh:
        turns = hh_turns(r["chosen"])
        if len(turns) >= 2:
            unrelated.append({"conversations": conv(*turns[: len(turns) // 2 * 2])})
    return {
        "benchmark": [r["question"] for r in test],
        "contaminated": contaminated,
        "same_style": same_style,
        "unrelated": unrelated,
    }
