"""What identifies a code benchmark item (a HumanEval or MBPP problem) in a training text.

A code item's numbers are constants and test values (0, 1, 2, 10, 100 are in any program),
and ordinary code shares its names and stock phrases ("merge two sorted arrays", `sort_array`,
`is_prime(n)`). What identifies the item is a whole distinctive signature, most of its
docstring's phrases, its test values (the arguments and results of its examples, a
HumanEval `>>> f(...)` or an MBPP `assert f(...) == ...`), or its exact signature with
most of its docstring's rare words; never its function's name alone (the name only finds
candidates). Phrases and values are read with the function names taken out, on both sides:
a renamed function keeps them."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from composer.ngrams import words

# A Python function's signature: its name, parameters and return annotation.
SIGNATURE = re.compile(r"^\s*def\s+(\w+)\s*\((.*?)\)\s*(?:->\s*([^:]+?))?\s*:", re.M | re.S)
# An example or a test: a doctest line, or an assert.
EXAMPLE = re.compile(r"^\s*(?:>>>|assert\b)", re.M)
CALL = re.compile(r"([A-Za-z_][\w.]*)\s*\(")
# What makes a window worth reading as code even when no code item is among its nearest.
LOOKS_LIKE_CODE = re.compile(r"\bdef\s+\w+\s*\(|>>>|^\s*assert\b", re.M)
# Calls that wrap a test's call (`assert set(f(x)) == ...`), not the function tested.
WRAPPERS = frozenset(
    "abs all any assert bool dict float frozenset int isclose len list math math.isclose "
    "max min print repr round set sorted str sum tuple type".split()
)
# Words that say nothing about which test it is: small integers, code constants, booleans.
OUTPUTS = frozenset("true false none".split())  # a test's result, as often reworded as not
CONSTANTS = frozenset([str(n) for n in range(11)] + ["100", "1000", "assert", *OUTPUTS])
# Words of any docstring: never rare, whatever a small benchmark's word counts say.
STOPWORDS = frozenset(
    "a an and are as at be by do does each else for from given if in into is it its no not "
    "of on or return returned returns that the then this to when which with write function "
    "list string number integer value values input output example examples".split()
)
# Python's own words: in every program.
KEYWORDS = frozenset(
    "def import from typing self lambda elif while int str float bool dict tuple set".split()
)
# Words that say nothing about which code item it is.
COMMON = STOPWORDS | CONSTANTS | KEYWORDS

PHRASE = 6  # words in a code item's phrase
PHRASES_FOUND = 8  # phrases of a code item that identify it (or half of them, if fewer)
COPY = 0.8  # share of an item's phrases (8 or more) that makes a copy of it, names aside
SIGNATURE_WORDS = 6  # a signature without the function's name identifies with this many
VALUES_FOUND = 3  # test values of an item that identify it (or all of them, if fewer)
PROSE_SHARE = 0.6  # with the exact signature: this share of the docstring's word weight,
PROSE_WORDS = 3  # and at least the weight of this many words found in no other item


@dataclass(frozen=True)
class CodeWindow:
    """What a code item is looked for in: a window's function names (defined, or called in
    a test or an example), its words (joined as they are, and without those names), and
    the phrases of the words without the names."""

    names: frozenset[str]
    words: frozenset[str]
    joined: str  # " word word ... ": every word
    plain: str  # " word word ... ": the words that are not function names
    phrases: frozenset[str]

    @classmethod
    def of(cls, text: str, text_words: list[str]) -> CodeWindow:
        names = function_names(text) if looks_like_code(text) else frozenset()
        plain = [w for w in text_words if w not in names] if names else text_words
        return cls(
            names,
            frozenset(text_words),
            " " + " ".join(text_words) + " ",
            " " + " ".join(plain) + " ",
            frozenset(phrases(plain)),
        )


@dataclass(frozen=True)
class CodeMarks:
    """What identifies a code item: its functions' names; its signatures as word sequences
    (name, parameters, types, return type), all of them and the distinctive ones; its
    phrases (6-word sequences of everything but the signatures and the names: docstring
    prose and examples); its distinctive test values (each example or test line's words
    without the names: `[5, 3, 5, 2, 3, 3, 9, 0, 123]`, `"hello", "l"`, "heo", never a
    small integer alone); and its prose's words (the docstring without the examples)."""

    names: frozenset[str]
    signatures: tuple[str, ...]  # distinctive: " word word ... " (matched as whole words)
    exact: tuple[str, ...]  # every signature, with its name
    phrases: frozenset[str]
    values: tuple[str, ...]  # " word word ... ", matched in a window's words without names
    prose: frozenset[str]

    def found(self, window: CodeWindow, idf: dict[str, float], unique: float) -> str | None:
        """`copy` when the window holds nearly all the item's phrases (the item, names
        aside); `code` when it holds a distinctive signature, most of the phrases, the
        test values, or an exact signature with most of the docstring's rare words (`idf`:
        a word's weight; `unique`: the weight of a word found in one item only); else
        None. The function's name is not enough: `is_prime`, `remove_vowels` and
        `triangle_area` are in any course."""
        shared = len(self.phrases & window.phrases)
        if shared >= PHRASES_FOUND and shared >= COPY * len(self.phrases):
            return "copy"
        if shared >= min(PHRASES_FOUND, max(2, (len(self.phrases) + 1) // 2)):
            return "code"
        if any(s in window.joined for s in self.signatures):
            return "code"
        if self.values:
            found = sum(v in window.plain for v in self.values)
            if found >= min(VALUES_FOUND, max(2, len(self.values))):
                return "code"
        if any(s in window.joined for s in self.exact):
            weight = sum(idf.get(w, unique) for w in self.prose)
            got = sum(idf.get(w, unique) for w in self.prose & window.words)
            if got >= PROSE_SHARE * weight and got >= PROSE_WORDS * unique:
                return "code"
        return None


def phrases(word_list: list[str]) -> list[str]:
    return [" ".join(word_list[i : i + PHRASE]) for i in range(len(word_list) - PHRASE + 1)]


def function_names(text: str) -> frozenset[str]:
    """The functions a text defines, and those its examples and tests call (lowercase)."""
    names = {n.lower() for n, _, _ in SIGNATURE.findall(text)}
    for line in example_lines(text):
        names.update(c.lower() for c in CALL.findall(line) if c.lower() not in WRAPPERS)
    return frozenset(names)


def looks_like_code(text: str) -> bool:
    if "def" not in text and ">>>" not in text and "assert" not in text:
        return False  # most windows: no regex
    return LOOKS_LIKE_CODE.search(text) is not None


def example_lines(text: str) -> list[str]:
    """A text's doctest lines with the result line after each, and its assert lines."""
    lines = text.splitlines()
    out = []
    for i, line in enumerate(lines):
        if EXAMPLE.match(line):
            out.append(line)
            if line.lstrip().startswith(">>>") and i + 1 < len(lines):
                after = lines[i + 1].strip()
                if after and not after.startswith((">>>", '"""', "'''")):
                    out.append(after)
    return out


def distinctive(value: list[str]) -> bool:
    """A test value that is not in any program: more than a constant or a short word."""
    informative = [w for w in value if w not in CONSTANTS]
    return len(informative) >= 2 or any(len(w) >= 3 for w in informative)


def padded(word_list: list[str]) -> str:
    return " " + " ".join(word_list) + " "


def code_marks(text: str) -> CodeMarks | None:
    """A Python item's marks (None for an item with no function definition and no test).
    A signature is distinctive with a distinctive name (`sort_array`, not `add`) and two
    words or more of parameters (not `is_prime(n)`), or without the name when it is long
    (`numbers: List[float], threshold: float) -> bool`, not `a: int, b: int) -> int`).
    Test values: the lines of the examples (a doctest line and its result, a line that
    calls the item's function with arguments) and of the asserts (an MBPP item's tests)."""
    if "def" not in text and "assert" not in text:
        return None  # most items (prose, math): no signature and no assert, without a regex
    defs = SIGNATURE.findall(text)
    tests = example_lines(text)
    if not defs and not any(line.lstrip().startswith("assert") for line in tests):
        return None
    signatures, exact = [], []
    for name, params, returns in defs:
        rest = words(f"{params} {returns}")
        exact.append(padded([name.lower(), *rest]))
        if len(rest) >= 2 and ("_" in name.strip("_") or len(name) >= 12):
            signatures.append(padded([name.lower(), *rest]))
        if len(rest) >= SIGNATURE_WORDS:
            signatures.append(padded(rest))
    names = function_names(text)
    defined = {n.lower() for n, _, _ in defs}
    called = re.compile(rf"\b(?:{'|'.join(map(re.escape, defined))})\s*\(\s*[^)\s]", re.I)
    calls = [ln for ln in text.splitlines() if defined and called.search(ln)]
    examples = {ln.strip() for ln in [*tests, *calls]}
    values = []
    for line in dict.fromkeys([*tests, *calls]):
        if SIGNATURE.match(line):
            continue
        value = [w for w in words(line) if w not in names and w != "assert" and w not in OUTPUTS]
        if distinctive(value):
            values.append(padded(value))
    unsigned = SIGNATURE.sub(" ", text)
    prose = "\n".join(ln for ln in unsigned.splitlines() if ln.strip() not in examples)
    body = [w for w in words(unsigned) if w not in names]
    return CodeMarks(
        names,
        tuple(dict.fromkeys(signatures)),
        tuple(dict.fromkeys(exact)),
        frozenset(phrases(body)),
        tuple(dict.fromkeys(values)),
        frozenset(words(prose)) - names - COMMON,
    )


class CodeLookup:
    """The code items that share a function name, or two phrases or more, with a window:
    candidates beside the embedding's nearest (a renamed or reworded item is not always
    among them). One shared phrase ("return the sum of the") is in many items."""

    def __init__(self, marks: list[CodeMarks | None]):
        self.by_name: dict[str, list[int]] = {}
        self.by_phrase: dict[str, list[int]] = {}
        for item, m in enumerate(marks):
            if m is not None:
                for name in sorted(m.names):
                    self.by_name.setdefault(name, []).append(item)
                for phrase in sorted(m.phrases):
                    self.by_phrase.setdefault(phrase, []).append(item)

    def __bool__(self) -> bool:
        return bool(self.by_name or self.by_phrase)

    def items(self, window: CodeWindow) -> list[int]:
        found = {i for name in self.by_name.keys() & window.names for i in self.by_name[name]}
        shared = Counter(
            i for phrase in self.by_phrase.keys() & window.phrases for i in self.by_phrase[phrase]
        )
        found.update(i for i, n in shared.items() if n >= 2)
        return sorted(found)
