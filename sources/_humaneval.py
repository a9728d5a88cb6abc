"""HumanEval's canonical solutions, joined into the code plugins (apps, rosetta_code).

Bagel drops a training solution that holds a HumanEval canonical solution, or is held in
one (substring checks both ways). We do the same on stripped text, and blank code matches
nothing (in bagel, an empty solution is "in" every canonical solution).
"""

from composer.kit import per_input

HUMANEVAL = {"humaneval": {"hub": "openai/openai_humaneval", "split": "test"}}


@per_input
def canonical_solutions(humaneval: dict[str, list]) -> list[str]:
    return [s.strip() for s in humaneval["canonical_solution"] if isinstance(s, str) and s.strip()]


def contaminated(code: str, solutions: list[str]) -> bool:
    """Whether `code` holds a canonical solution or is part of one."""
    code = code.strip()
    return bool(code) and any(s in code or code in s for s in solutions)
