"""OpenAssistant message trees (message_id/parent_id rows) as one conversation per path.

Every root-to-leaf path becomes a conversation; deleted messages and their subtrees are
left out. The whole dataset is one batch, because a tree's messages may be far apart.
"""

from collections import defaultdict

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
    children = defaultdict(list)
    roots = []
    for i in range(n):
        if deleted[i]:
            continue
        (children[batch["parent_id"][i]] if batch["parent_id"][i] else roots).append(i)
    if best_only:  # follow only the best-ranked reply at every branch
        for kids in children.values():
            kids.sort(key=lambda i: (ranks[i] is None, ranks[i] or 0))
            del kids[1:]
    out = {"conversations": [], "row": [], "meta": []}
    for root in roots:
        stack = [[root]]
        while stack:
            path = stack.pop()
            kids = children.get(batch["message_id"][path[-1]], [])
            if kids:
                stack.extend([*path, k] for k in reversed(kids))
                continue
            # A path that ends with the user's message has no answer to learn from: cut it.
            while path and batch["role"][path[-1]] != "assistant":
                path = path[:-1]
            if path:
                out["conversations"].append(
                    [turn(batch["role"][i], batch["text"][i]) for i in path]
                )
                out["row"].append(path[-1])
                out["meta"].append({"message_ids": [batch["message_id"][i] for i in path]})
    return out
