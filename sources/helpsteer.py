"""NVIDIA HelpSteer as pairs: per prompt, the most correct, best-scored response vs a worse one.

Bagel (`helpsteer.py`, priority 2) drops refusals, groups responses by prompt, and pairs a
correctness-4 response with another, in an order-dependent way. Here: among a prompt's
responses without refusals (`composer.kit.has_refusal`), the chosen one has the highest
correctness, then the highest sum of the five scores (the first such in file order); it
must reach `min_correctness` (bagel: 4). The rejected one is a seeded random pick (by the
manifest seed and the prompt) among the responses ranked strictly lower with a different
text, so it depends on neither batch boundaries nor row order. Prompts with one response
give nothing. Bagel takes every pair: no `sample:`.
"""

from collections import defaultdict

from composer.kit import draws, has_refusal
from composer.turns import turn

name = "helpsteer"
kind = "dpo"
hub = "nvidia/HelpSteer"
confidence = 2
license = "cc-by-4.0"
SCORES = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
columns = ("prompt", "response", *SCORES)
batch_size = None  # a prompt's responses may be anywhere in the file


def convert(batch: dict[str, list], min_correctness: int = 4, seed: int = 0) -> dict[str, list]:
    out = {"conversations": [], "chosen": [], "rejected": [], "row": [], "meta": [], "error": []}
    groups, rank = defaultdict(list), {}
    for i, (prompt, response) in enumerate(zip(batch["prompt"], batch["response"])):
        scores = [batch[s][i] for s in SCORES]
        if None in scores or not isinstance(prompt, str):
            for key in ("conversations", "chosen", "rejected", "meta"):
                out[key].append(None)
            out["row"].append(i)
            out["error"].append("a score or the prompt is missing")
        elif not has_refusal(response):
            groups[prompt].append(i)
            rank[i] = (batch["correctness"][i], sum(scores))
    prompts = [p for p, rows in groups.items() if len(rows) > 1]
    for prompt, u in zip(prompts, draws(seed, prompts, "helpsteer rejected")):
        rows = groups[prompt]
        best = max(rows, key=rank.__getitem__)
        worse = sorted(  # in an order that does not depend on the file's
            (i for i in rows if rank[i] < rank[best]),
            key=lambda i: (rank[i], batch["response"][i]),
        )
        worse = [i for i in worse if batch["response"][i] != batch["response"][best]]
        if batch["correctness"][best] < min_correctness or not worse:
            continue
        pick = worse[int(u * len(worse))]
        out["conversations"].append([turn("human", prompt)])
        out["chosen"].append(batch["response"][best])
        out["rejected"].append(batch["response"][pick])
        out["row"].append(best)
        out["meta"].append({s: [batch[s][best], batch[s][pick]] for s in SCORES})
        out["error"].append(None)
    return out
