"""The plugin kit: pieces that catalogue plugins share, done once and tested once.

Bagel repeats these in every loader (and its refusal check passes `re.I` as a start
position, so it is case-sensitive and skips the first two characters). Here:

- `has_refusal` / `as_an_ai`: case-insensitive phrase checks for refusals and
  "as an AI language model" boilerplate;
- `draws` / `coin`: seeded random choices keyed by a row's text, so a choice does not
  depend on batch boundaries or row order, and the manifest's seed changes all of them;
- `stratified_sample`: a seeded sample that keeps each stratum's share (a task, a source);
- `lettered`: a multiple-choice question with lettered options;
- `per_input`: what a plugin derives from a joined input, made once per build.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from composer.draws import generator, uniforms
from composer.records import make_id

T = TypeVar("T")

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# Phrases of a model declining or lecturing instead of answering.
REFUSAL = re.compile(
    "|".join(
        [
            r"\bi(?:'m| am) (?:sorry|afraid),? but\b",
            r"\bi (?:can(?:'t|not| not)|won't|will not|am (?:not |un)able to)"
            r" (?:help|assist|provide|comply|fulfil+|create|generate|write|do that|engage)",
            r"\b(?:against|violates?) (?:my|the) (?:programming|guidelines|policy|policies)",
            r"\bmy (?:programming|guidelines) (?:does|do) not\b",
            r"\bit(?:'s| is) not (?:appropriate|ethical) (?:for me )?to\b",
            r"\b(?:unethical|illegal|harmful) (?:and|or) (?:unethical|illegal|harmful)\b",
            r"\bas an? (?:ai|artificial intelligence|language model|assistant)\b",
            r"\bi (?:do not|don't) have (?:personal )?(?:opinions|feelings|emotions|beliefs)\b",
            r"\bplease consult (?:a|an) (?:professional|expert)\b",
            r"\badhere to (?:safety|ethical) guidelines\b",
        ]
    ),
    re.IGNORECASE,
)

# Boilerplate that marks a model talking about itself.
AS_AN_AI = re.compile(
    r"\b(?:as an? (?:ai|artificial intelligence|large language model|language model|"
    r"ai language model|ai assistant|chatbot)|i am an? (?:ai|language model)|"
    r"openai|large language model)\b",
    re.IGNORECASE,
)


def has_refusal(text: str | None) -> bool:
    """Whether `text` declines, moralises or talks about being an AI."""
    return bool(text) and REFUSAL.search(text) is not None


def as_an_ai(text: str | None) -> bool:
    """Whether `text` has "as an AI language model"-style boilerplate."""
    return bool(text) and AS_AN_AI.search(text) is not None


def draws(seed: int, keys: Sequence[str], *purpose: object) -> np.ndarray:
    """One number in [0, 1) per key (a row's instruction, say), fixed by seed and purpose."""
    return uniforms(seed, [make_id(k) for k in keys], *purpose)


def coin(seed: int, keys: Sequence[str], *purpose: object, p: float = 0.5) -> list[bool]:
    """A seeded coin per key: True with probability `p`."""
    return (draws(seed, keys, *purpose) < p).tolist()


def stratified_sample(
    strata: Sequence, size: int | float, seed: int, *purpose: object
) -> list[int]:
    """Indices (in row order) of a seeded sample of `size` rows (a count, or a fraction
    of all rows) that gives each stratum its share; rounding leftovers go to the strata
    with the largest remainders, ties to the first seen."""
    n = len(strata)
    total = min(n, round(size * n) if isinstance(size, float) else size)
    if total >= n:
        return list(range(n))
    labels, first, codes = np.unique(
        np.asarray([str(s) for s in strata]), return_index=True, return_inverse=True
    )
    counts = np.bincount(codes, minlength=len(labels)).astype(np.int64)
    quota = counts * total // n  # integer arithmetic: equal remainders are equal
    order = np.lexsort((first, -(counts * total % n)))
    quota[order[: total - quota.sum()]] += 1
    rng = generator(seed, "stratified", *purpose)
    chosen = []
    for label in range(len(labels)):
        rows = np.flatnonzero(codes == label)
        chosen.append(rng.choice(rows, size=quota[label], replace=False))
    return sorted(np.concatenate(chosen).tolist())


def lettered(question: str, options: Sequence[str], labels: Sequence[str] | None = None) -> str:
    """The question, then one option a line: "A. first", "B. second", ..."""
    labels = labels or LETTERS[: len(options)]
    return "\n".join([question, *(f"{label}. {text}" for label, text in zip(labels, options))])


def per_input(derive: Callable[[Any], T]) -> Callable[[Any], T]:
    """`derive(input)` made once for each joined input, not once per batch.

    A plugin's `convert` is handed the same input object with every batch of a build; a set
    or an index it builds from that input (slimorca's skip set, HumanEval's solutions) is
    kept until a different input comes (the next build)."""
    last: list = []  # [(the input, what was derived from it)]

    @functools.wraps(derive)
    def derived(value: Any) -> T:
        if not last or last[0][0] is not value:
            last[:] = [(value, derive(value))]
        return last[0][1]

    return derived
