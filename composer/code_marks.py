"""What identifies a code benchmark item (a HumanEval or MBPP prompt) in a training text.

A code item's numbers are constants and test values (0, 1, 2, 10, 100 are in any program),
and ordinary code shares its names and stock phrases; what is evidence is a whole
distinctive signature, or most of its docstring's phrases."""

from __future__ import annotations

import re
from dataclasses import dataclass

from composer.ngrams import words

# A Python function's signature: its name, parameters and return annotation.
SIGNATURE = re.compile(r"^\s*def\s+(\w+)\s*\((.*?)\)\s*(?:->\s*([^:]+?))?\s*:", re.M | re.S)

PHRASE = 6  # words in a code item's phrase
PHRASES_FOUND = 8  # phrases of a code item that identify it (or half of them, if fewer)
SIGNATURE_WORDS = 6  # a signature without the function's name identifies with this many


@dataclass(frozen=True)
class CodeMarks:
    """What identifies a code item (a HumanEval prompt): its functions' signatures as word
    sequences (name, parameters, types, return type), and its phrases (the docstring's and
    the examples' 6-word sequences without the names: prose and test values). Ordinary code
    shares names (`triangle_area`), parameters (`a, b`) and a few stock phrases with such
    an item, not a whole distinctive signature or most of its docstring."""

    signatures: tuple[str, ...]  # " word word ... " (padded: matched as whole words)
    phrases: frozenset[str]

    def found(self, window_words: list[str], joined_words: str) -> bool:
        """Whether a window (its words, and its words joined by spaces) holds a signature
        or the phrases of the item: a renamed function keeps its docstring (and maybe its
        signature), a reworded docstring its signature."""
        if any(s in joined_words for s in self.signatures):
            return True
        need = min(PHRASES_FOUND, max(2, (len(self.phrases) + 1) // 2))
        return len(self.phrases.intersection(phrases(window_words))) >= need


def phrases(word_list: list[str]) -> list[str]:
    return [" ".join(word_list[i : i + PHRASE]) for i in range(len(word_list) - PHRASE + 1)]


def code_marks(text: str) -> CodeMarks | None:
    """A Python item's marks (None for an item with no function definition). A signature
    is a mark with a distinctive name (`sort_array`, not `add`) and two words or more of
    parameters (not `is_prime(n)`), or without the name when it is long
    (`numbers: List[float], threshold: float) -> bool`, not `a: int, b: int) -> int`)."""
    defs = SIGNATURE.findall(text)
    if not defs:
        return None
    signatures = []
    for name, params, returns in defs:
        rest = words(f"{params} {returns}")
        if len(rest) >= 2 and ("_" in name.strip("_") or len(name) >= 12):
            signatures.append([name.lower(), *rest])
        if len(rest) >= SIGNATURE_WORDS:
            signatures.append(rest)
    names = {n.lower() for n, _, _ in defs}
    body = [w for w in words(SIGNATURE.sub(" ", text)) if w not in names]
    padded = (" " + " ".join(s) + " " for s in signatures)
    return CodeMarks(tuple(dict.fromkeys(padded)), frozenset(phrases(body)))
