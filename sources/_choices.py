"""Multiple-choice questions for the catalogue plugins (ai2_arc, openbookqa, piqa, mmlu).

Not a plugin (the leading underscore keeps it out of the registry). A question is shown
with lettered options; a seeded coin per question (keyed by its text, so batches and row
order do not matter) decides whether the answer is the letter alone, with an instruction
asking for only the letter, or the letter and the option's text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from composer.kit import LETTERS, coin, lettered
from composer.turns import turn

LETTER_ONLY = "Only output the letter of the correct answer."

Item = tuple[str, str, Any]  # (lettered question, right letter, right option's text)


def check_share(letter_only: float) -> list[tuple[str, str]]:
    if not 0 <= letter_only <= 1:
        return [("letter_only", f"expected a share between 0 and 1, got {letter_only}")]
    return []


def item(
    question: Any, options: Sequence | None, labels: Sequence | None, answer: Any
) -> Item | str:
    """One question as (prompt, letter, text), or why it cannot be asked.

    `answer` is a label ("B") or an option index (1). Labels default to A, B, C...; labels
    that are all digits (a few ARC questions use 1-4) become letters, so that "the
    letter" always is one.
    """
    if not isinstance(question, str) or not question.strip():
        return "no question"
    if not options or len(options) > len(LETTERS):
        return f"expected 1 to {len(LETTERS)} options, got {len(options or [])}"
    given = [str(label) for label in labels] if labels else list(LETTERS[: len(options)])
    if len(given) != len(options):
        return f"{len(options)} options but {len(given)} labels"
    if isinstance(answer, int) and not isinstance(answer, bool):
        index = answer if 0 <= answer < len(options) else None
    else:
        index = given.index(str(answer)) if str(answer) in given else None
    if index is None:
        return f"answer {answer!r} is none of the options ({', '.join(given)})"
    letters = list(LETTERS[: len(options)]) if all(g.isdigit() for g in given) else given
    return lettered(question, options, letters), letters[index], options[index]


def conversations(
    items: list[Item | str],
    seed: int,
    purpose: str,
    letter_only: float,
    *,
    instruction: str = LETTER_ONLY,
    before: bool = False,
    separator: str = " ",
) -> dict[str, list]:
    """Two-turn conversations; with probability `letter_only` the instruction goes after
    (or `before`) the question and the answer is the letter, else "letter<separator>text"."""
    keys = [it[0] if isinstance(it, tuple) else "" for it in items]
    flips = coin(seed, keys, purpose, "letter only", p=letter_only)
    out: dict[str, list] = {"conversations": [], "error": []}
    for it, flip in zip(items, flips):
        if isinstance(it, str):
            out["conversations"].append(None)
            out["error"].append(it)
            continue
        prompt, letter, text = it
        if flip:
            human = f"{instruction}\n{prompt}" if before else f"{prompt}\n{instruction}"
            answer = letter
        else:
            human, answer = prompt, f"{letter}{separator}{text}"
        out["conversations"].append([turn("human", human), turn("gpt", answer)])
        out["error"].append(None)
    return out
