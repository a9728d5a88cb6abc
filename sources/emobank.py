"""EmoBank sentences scored for valence, arousal and dominance (VAD), answered as JSON.

Bagel (PRIORITY 3) downloads corpus/emobank.csv from the JULIELab/EmoBank GitHub repository,
keeps the rows whose `split` is "train", strips a stray trailing quote from the text and
asks for a VAD score in JSON format; the answer is {"V": ..., "A": ..., "D": ...} indented
by 2. Here the same file is read through `datasets`' csv loader; the scores are written as
numbers (bagel wrote the CSV's strings). Bagel keeps every train row: no manifest `sample:`.
"""

import json
import math

from composer.turns import turn

name = "emobank"
kind = "sft"
hub = "csv"
data_files = "https://github.com/JULIELab/EmoBank/raw/master/corpus/emobank.csv"
confidence = 3
license = "cc-by-4.0"
columns = ("split", "V", "A", "D", "text")

PROMPT = (
    "Please assign a Valence-Arousal-Dominance (VAD) score in JSON format to the following message:"
)


def _score(value) -> float | None:
    try:
        score = float(value)
    except (TypeError, ValueError):
        return None
    return round(score, 2) if math.isfinite(score) else None


def convert(batch: dict[str, list]) -> dict[str, list]:
    out: dict[str, list] = {"conversations": [], "row": [], "error": []}
    for i, split in enumerate(batch["split"]):
        if split != "train":  # the corpus's dev and test rows are held out
            continue
        raw = {k: batch[k][i] for k in ("V", "A", "D")}
        scores = {k: _score(v) for k, v in raw.items()}
        text = batch["text"][i]
        text = text.strip().rstrip('"').rstrip() if isinstance(text, str) else None
        error = "no text" if not text else None
        if None in scores.values():
            error = f"a VAD score is not a number: {raw}"
        out["row"].append(i)
        if error:
            out["conversations"].append(None)
            out["error"].append(error)
            continue
        out["conversations"].append(
            [turn("human", f"{PROMPT}\n{text}"), turn("gpt", json.dumps(scores, indent=2))]
        )
        out["error"].append(None)
    return out
