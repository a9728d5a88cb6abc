"""OpenAssistant message trees (message_id/parent_id rows) as one conversation per path.

Every path from a root prompt to an answer with no answer below it becomes a conversation.
Paths come best-ranked first (by the `rank` of each reply along the path, unranked last),
so that with `dedup: instruction` the best-ranked conversation for a prompt is the one kept.
`best_only` keeps only the best-ranked reply at every branch. Every message is accounted
for: the end of a conversation, a turn inside one (linked), or rejected with its reason
(deleted, under a deleted message, unanswered, a lower-ranked branch, or a broken tree:
see composer.trees). The whole dataset is one batch, because a tree's messages may be far
apart.
"""

from composer.trees import build_forest, error
from composer.turns import turn

name = "oasst"
kind = "sft"
hub = "OpenAssistant/oasst1"
confidence = 2
license = "apache-2.0"
columns = ("message_id", "parent_id", "text", "role")
optional_columns = ("deleted", "rank")
batch_size = None


def convert(batch: dict[str, list], best_only: bool = False) -> dict[str, list]:
    n = len(batch["message_id"])
    deleted = batch.get("deleted") or [False] * n
    ranks = batch.get("rank") or [None] * n
    roles = [turn(r, "")["from"] for r in batch["role"]]
    forest = build_forest(
        batch["message_id"],
        batch["parent_id"],
        rejected={i: "deleted" for i in range(n) if deleted[i]},
    )
    problem = forest.problem

    def by_rank(i: int) -> tuple:
        return (ranks[i] is None, ranks[i] if ranks[i] is not None else 0, i)

    # Walk each tree depth first, best-ranked reply first: the order records come out in.
    order, answered = [], [False] * n
    for root in (i for i in range(n) if forest.parent[i] < 0 and problem[i] is None):
        stack = [root]
        while stack:
            i = stack.pop()
            order.append(i)
            kids = sorted(forest.children[i], key=by_rank)
            if best_only:
                for k in kids[1:]:
                    _reject_subtree(forest, k, "not the best-ranked reply", problem)
                kids = kids[:1]
            stack.extend(reversed(kids))
    for i in reversed(order):  # children before parents: does an answer lie below?
        if problem[i] is None and roles[i] == "gpt":
            answered[i] = True
        if answered[i] and forest.parent[i] >= 0:
            answered[forest.parent[i]] = True

    out = {"conversations": [], "row": [], "meta": [], "error": [], "linked": []}
    for i in order:
        if problem[i] is not None:
            continue
        if not answered[i]:
            problem[i] = "unanswered: no reply below this message"
        elif roles[i] == "gpt" and not any(answered[k] for k in forest.children[i]):
            path = forest.path(i)
            out["conversations"].append([turn(batch["role"][j], batch["text"][j]) for j in path])
            out["row"].append(i)
            out["meta"].append({"message_ids": [batch["message_id"][j] for j in path]})
            out["error"].append(None)
        else:
            out["linked"].append(i)
    for i in range(n):  # rejected messages, in file order
        if problem[i] is not None:
            out["conversations"].append(None)
            out["row"].append(i)
            out["meta"].append(None)
            out["error"].append(error(problem[i]))
    return out


def _reject_subtree(forest, top: int, reason: str, problem: list) -> None:
    stack = [top]
    while stack:
        i = stack.pop()
        problem[i] = reason if i == top else f"under a rejected row: {reason}"
        stack.extend(forest.children[i])
