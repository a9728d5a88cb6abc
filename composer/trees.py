"""Rows chained by id/parent_id (OpenAssistant trees, H2O LLM Studio chains) as a forest.

Upstream trees are made by people and scripts, so every way a tree can be broken is a row
rejected with its reason, never a loop, a crash or a row that silently disappears: a
duplicated id, a row that is its own parent, an orphan (its parent is not in the data), a
cycle of parents, a tree deeper than `max_depth`, and everything under a rejected row.
The walk is iterative, so a deep chain cannot overflow the stack.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

MAX_DEPTH = 256


def is_id(value: Any) -> bool:
    """A usable id: not missing, not NaN, not the string "None" some exports write."""
    return (
        value is not None
        and value != "None"
        and value != ""
        and not (isinstance(value, float) and not math.isfinite(value))
    )


@dataclass
class Forest:
    """Each row's parent row (-1 for a root), depth (roots are 0) and children in row
    order; `problem[i]` is why row i cannot be used, or None."""

    parent: list[int]
    depth: list[int]
    problem: list[str | None]
    children: list[list[int]]

    def usable(self, i: int) -> bool:
        return self.problem[i] is None

    def path(self, i: int) -> list[int]:
        """The rows from the root down to row i."""
        out = [i]
        while self.parent[out[-1]] >= 0:
            out.append(self.parent[out[-1]])
        return out[::-1]


def build_forest(
    ids: Sequence[Any],
    parent_ids: Sequence[Any],
    *,
    rejected: dict[int, str] | None = None,
    orphans: str = "reject",
    max_depth: int = MAX_DEPTH,
) -> Forest:
    """Link rows into trees. `rejected` holds rows already unusable (a deleted message,
    say): their descendants are rejected too, as "under a rejected row".
    `orphans: start` makes a row whose parent is missing a root instead of rejecting it."""
    n = len(ids)
    problem: list[str | None] = [None] * n
    counts = Counter(ids[i] for i in range(n) if is_id(ids[i]))
    row_of = {ids[i]: i for i in range(n) if is_id(ids[i]) and counts[ids[i]] == 1}
    parent = [-1] * n
    for i in range(n):
        own, up = ids[i], parent_ids[i]
        if not is_id(own):
            problem[i] = "missing id"
        elif counts[own] > 1:
            problem[i] = f"duplicate id: {own!r} is on {counts[own]} rows"
        elif not is_id(up):
            continue
        elif up == own:
            problem[i] = "its own parent"
        elif up in row_of:
            parent[i] = row_of[up]
        elif counts[up] > 1:
            problem[i] = f"ambiguous parent: id {up!r} is on {counts[up]} rows"
        elif orphans != "start":
            problem[i] = f"orphan: parent {up!r} is not in the data"
    for i, reason in (rejected or {}).items():
        problem[i] = problem[i] or reason

    # Resolve each row's depth by walking up to a resolved row; a walk that meets itself
    # is a cycle. Every row is walked over once, so this is linear in the rows.
    depth = [-1] * n
    for start in range(n):
        if depth[start] >= 0:
            continue
        walk, on_walk, i = [], set(), start
        while depth[i] < 0 and parent[i] >= 0 and i not in on_walk:
            walk.append(i)
            on_walk.add(i)
            i = parent[i]
        if i in on_walk:  # a cycle: the rows from i on are in it, the rest hang below it
            cycle = walk[walk.index(i) :]
            for j in cycle:
                problem[j], depth[j] = "a cycle of parent ids", 0
            walk = walk[: walk.index(i)]
            i = cycle[0]
        elif depth[i] < 0:  # a root
            depth[i] = 0
        for j in reversed(walk):
            up = parent[j]
            depth[j] = depth[up] + 1
            if problem[j] is None and problem[up] is not None:
                problem[j] = _under(problem[up])
            elif problem[j] is None and depth[j] > max_depth:
                problem[j] = f"too deep: deeper than max_depth {max_depth}"
    children: list[list[int]] = [[] for _ in range(n)]
    for i in range(n):
        if parent[i] >= 0 and problem[i] is None:
            children[parent[i]].append(i)
    return Forest(parent, depth, problem, children)


def _under(reason: str) -> str:
    return reason if reason.startswith("under a rejected") else f"under a rejected row: {reason}"


def error(problem: str) -> tuple[str, str]:
    """A plugin's `error` for a problem: (the reason the funnel counts, the whole message)."""
    return problem.split(":", 1)[0], problem
