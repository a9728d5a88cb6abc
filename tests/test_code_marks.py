"""What identifies a code benchmark item, checked through the real detector (13-grams, the
packaged MiniLM, its static model, faiss): a HumanEval-style item renamed, reworded or
wrapped in an instruction is caught; ordinary code that shares its name or stock phrases
is not; an MBPP-style item (prose and asserts) is caught by its test values, not by its
topic. Small benchmark items written here, in the style of the real ones."""

from __future__ import annotations

import pytest

from composer.benchmarks import BUILTIN, Benchmark, BenchmarkItems
from composer.code_marks import code_marks
from composer.decontaminate import Detector, Settings, checked_texts
from tests.test_decontaminate import ITEMS, conv, records_table

CLOSE_PAIRS = (
    "from typing import List\n\n\n"
    "def count_close_pairs(values: List[float], gap: float) -> int:\n"
    '    """ Count the pairs of values in the list that are closer to each other than the\n'
    "    given gap, each pair once, whatever the order of the list.\n"
    "    >>> count_close_pairs([1.0, 2.8, 3.0, 4.0], 0.3)\n    1\n"
    "    >>> count_close_pairs([0.5, 0.75, 12.5, 12.25], 0.3)\n    2\n"
    '    """\n'
)
VOWEL_RUNS = (
    "\n\ndef longest_vowel_run(word):\n"
    '    """longest_vowel_run takes a word and returns the length of the longest stretch of\n'
    "    consecutive vowels inside it, ignoring uppercase and lowercase differences.\n"
    "    >>> longest_vowel_run('queueing')\n    5\n"
    "    >>> longest_vowel_run('Hawaiian')\n    3\n"
    "    >>> longest_vowel_run('rhythm')\n    0\n"
    '    """\n'
)
IS_PRIME = (
    "\n\ndef is_prime(n):\n"
    '    """Return true if a given number is prime, and false otherwise.\n'
    "    >>> is_prime(6)\n    False\n    >>> is_prime(13441)\n    True\n"
    '    """\n'
)
SORT_ARRAY = (
    "\ndef sort_array(array):\n"
    '    """\n    Given an array of non-negative integers, return a copy of the given array\n'
    "    sorted in ascending order if the sum of the first and last values is odd, and in\n"
    "    descending order if that sum is even. Do not change the given array.\n"
    "    >>> sort_array([2, 4, 3, 0, 1, 5])\n    [0, 1, 2, 3, 4, 5]\n"
    "    >>> sort_array([2, 4, 3, 0, 1, 5, 6])\n    [6, 5, 4, 3, 2, 1, 0]\n"
    '    """\n'
)
MBPP = (  # an MBPP item's text: its prose, then its tests (fields text and test_list)
    "Write a function to count the words of a sentence that begin with a vowel.\n"
    'assert vowel_start_count("apple tree orange ink") == 3\n'
    'assert vowel_start_count("every umbrella stays under awnings") == 4\n'
    'assert vowel_start_count("rhythm and blues") == 1'
)
CODE = [CLOSE_PAIRS, VOWEL_RUNS, IS_PRIME, SORT_ARRAY]


@pytest.fixture(scope="module")
def detector():
    code = BenchmarkItems(
        Benchmark("humaneval", ("prompt",)), [f"h/{i}" for i in range(len(CODE))], CODE
    )
    mbpp = BenchmarkItems(Benchmark("mbpp", ("text", "test_list")), ["m/0"], [MBPP])
    math = BenchmarkItems(Benchmark("bench", ("q",)), ["b/0", "b/1"], ITEMS[:2])
    return Detector([code, mbpp, math], Settings())


def caught(detector, texts: list[str], **settings) -> dict[int, set[str]]:
    """Each text (a human turn, answered) that is caught, with the items it matches."""
    detector.settings = Settings(**settings)
    records = [{"conversations": conv(t, "Here is the code.")} for t in texts]
    checked = checked_texts(records_table(records), "sft", detector.settings)
    out: dict[int, set[str]] = {}
    for m in detector.scan(checked):
        out.setdefault(checked.record[m.text], set()).add(detector.item_ids[m.item])
    return out


def renamed(text: str, old: str, new: str) -> str:
    return text.replace(old, new)


def test_a_code_items_marks_are_its_signature_phrases_and_test_values_never_small_ints():
    marks = code_marks(CLOSE_PAIRS)
    assert marks.names == {"count_close_pairs"}
    assert " count_close_pairs values list float gap float int " in marks.signatures
    assert " 0 5 0 75 12 5 12 25 0 3 " in marks.values  # a test's arguments, as words
    assert " 2 " not in marks.values and " 1 " not in marks.values  # small results: none
    assert not any("count_close_pairs" in p for p in marks.phrases)
    # is_prime(n): a short signature is no mark alone; 13441 is a value, 6 is not.
    prime = code_marks(IS_PRIME)
    assert prime.signatures == () and prime.exact == (" is_prime n ",)
    assert prime.values == (" 13441 ",)
    assert prime.prose == {"prime", "otherwise"}  # no stock words, no constants


def test_an_mbpp_item_is_its_prose_and_asserts_identified_by_its_test_values():
    assert BUILTIN["mbpp"].fields == ("text", "test_list")
    marks = code_marks(MBPP)
    assert marks.names == {"vowel_start_count"}
    assert marks.values == (
        " apple tree orange ink 3 ",
        " every umbrella stays under awnings 4 ",
        " rhythm and blues 1 ",
    )
    assert code_marks(ITEMS[0]) is None  # not code: its numbers are its evidence


def test_a_humaneval_item_renamed_reworded_or_in_an_instruction_is_caught(detector):
    variants = {
        "verbatim": CLOSE_PAIRS,
        "instruction": "Complete the following Python function so that the tests pass.\n\n"
        + VOWEL_RUNS,
        "renamed": renamed(VOWEL_RUNS, "longest_vowel_run", "solve_abcd"),
        "renamed, typed": renamed(CLOSE_PAIRS, "count_close_pairs", "fn_q"),
        "docstring reworded": (
            "\ndef sort_array(array):\n"
            '    """\n    For an array of non-negative whole numbers, give back a copy of the\n'
            "    provided array, ordered ascending when the first and last values sum to an\n"
            "    odd number, descending when that sum is even. Leave the provided array as\n"
            '    it is.\n    """\n'
        ),
    }
    for ngram in (13, 0):  # the whole detector, and the embedding detector alone
        hits = caught(detector, list(variants.values()), ngram=ngram)
        expected = {0: "h/0", 1: "h/1", 2: "h/1", 3: "h/0", 4: "h/3"}
        missed = [k for i, k in enumerate(variants) if expected[i] not in hits.get(i, set())]
        assert missed == [], f"ngram={ngram}"
    evidence = {e for e, _ in detector.scores}
    assert {"code", "copy"} <= evidence  # the lexical evidence, not a close embedding


def test_ordinary_code_that_shares_a_name_or_stock_phrases_stays_in(detector):
    ordinary = [
        "Write a Java method that merges two sorted arrays into one sorted array.\n"
        "public static int[] merge(int[] a, int[] b) {\n"
        "    int[] out = new int[a.length + b.length];\n    int i = 0, j = 0, k = 0;\n"
        "    while (i < a.length && j < b.length) out[k++] = a[i] <= b[j] ? a[i++] : b[j++];\n"
        "    return out;\n}",
        "Reverse a list in Python.\n\ndef reverse_list(items):\n    return items[::-1]\n\n"
        "print(reverse_list([1, 2, 3, 4, 5]))",
        "Write a Python function that checks whether a number is prime.\n\n"
        "def is_prime(n):\n    if n <= 1:\n        return False\n"
        "    for i in range(2, int(n ** 0.5) + 1):\n        if n % i == 0:\n"
        "            return False\n    return True\n\nprint(is_prime(7))  # True",
        "Sort an array of integers in ascending order.\n\ndef sort_array(array):\n"
        "    return sorted(array)\n\nprint(sort_array([2, 4, 3, 0, 1, 5]))",
        "Write a function that counts how many pairs of numbers in a list are closer than a "
        "threshold.\n\ndef close_pairs(nums, eps):\n    n = len(nums)\n"
        "    return sum(abs(nums[i] - nums[j]) < eps for i in range(n) for j in range(i + 1, n))",
    ]
    assert caught(detector, ordinary) == {}


def test_an_mbpp_item_is_caught_by_its_test_values_not_by_its_topic(detector):
    with_tests = (  # another name, other prose, the tests in another order: its values
        "Implement count_initial_vowels(s) so that these tests pass:\n"
        'assert count_initial_vowels("rhythm and blues") == 1  # no vowel first\n'
        'assert count_initial_vowels("apple tree orange ink") == 3  # three of four\n'
        'assert count_initial_vowels("every umbrella stays under awnings") == 4  # not stays'
    )
    topic = (
        "Write a Python function that counts the words in a sentence which start with a "
        "vowel.\n\ndef vowel_start_count(sentence):\n"
        "    return sum(w[0].lower() in 'aeiou' for w in sentence.split())\n\n"
        'print(vowel_start_count("an old owl"))'
    )
    before = len(detector.scores)
    assert caught(detector, [with_tests, topic], ngram=0) == {0: {"m/0"}}
    assert "code" in {e for e, _ in detector.scores[before:]}  # its values, not only words


def test_reworded_math_stays_caught_beside_code_items(detector):
    from tests.test_decontaminate import REWORDED, SAME_STYLE

    assert caught(detector, [REWORDED, SAME_STYLE]) == {0: {"b/1"}}
