"""WhiteRabbitNeo WRN chapters: offensive and defensive cybersecurity instructions and answers.

Bagel (PRIORITY 1) joins WRN-Chapter-1 and WRN-Chapter-2 and drops answers that refuse;
so does this plugin, one chapter a source: chapter 1 by default, chapter 2 as a second
manifest entry (`plugin: whiterabbitneo`, `hub: WhiteRabbitNeo/WRN-Chapter-2`). The hub
asks users to accept the WhiteRabbitNeo terms (Apache-2.0 plus usage restrictions).
"""

from composer.kit import has_refusal
from composer.turns import turn

name = "whiterabbitneo"
kind = "sft"
hub = "WhiteRabbitNeo/WRN-Chapter-1"
confidence = 1
license = "other"
gated = True
columns = ("instruction", "response")


def convert(batch: dict[str, list]) -> dict[str, list]:
    out = {"conversations": [], "row": []}
    for i, (instruction, response) in enumerate(zip(batch["instruction"], batch["response"])):
        if not has_refusal(response if isinstance(response, str) else None):
            out["conversations"].append([turn("human", instruction), turn("gpt", response)])
            out["row"].append(i)
    return out
