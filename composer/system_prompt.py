"""The system prompt policy: keep the item's own, add a default or a pooled one, or drop it.

Every draw is seeded and keyed by (record, format), so the same item gets the same system
prompt in every build, and a conversation keeps one system prompt across its turns.
"""

from __future__ import annotations

from dataclasses import dataclass

from composer.draws import uniforms
from composer.manifest import SystemPrompt

# The 16 system messages of the Orca paper (Mukherjee et al., 2023, table 2), verbatim, in the
# paper's order, typos included: they are what Orca-style data was generated with. Message 1 is
# the empty system message; drawing it means the item gets no system prompt.
ORCA_POOL = (
    "",
    "You are an AI assistant. Provide a detailed answer so user don't need to search outside "
    "to understand the answer.",
    "You are an AI assistant. You will be given a task. You must generate a detailed and long "
    "answer.",
    "You are a helpful assistant, who always provide explanation. Think like you are answering "
    "to a five year old.",
    "You are an AI assistant that follows instruction extremely well. Help as much as you can.",
    "You are an AI assistant that helps people find information. Provide a detailed answer so "
    "user don't need to search outside to understand the answer.",
    "You are an AI assistant. User will you give you a task. Your goal is to complete the task "
    "as faithfully as you can. While performing the task think step-by-step and justify your "
    "steps.",
    "You should describe the task and explain your answer. While answering a multiple choice "
    "question, first output the correct answer(s). Then explain why other answers are wrong. "
    "Think like you are answering to a five year old.",
    "Explain how you used the definition to come up with the answer.",
    "You are an AI assistant. You should describe the task and explain your answer. While "
    "answering a multiple choice question, first output the correct answer(s). Then explain "
    "why other answers are wrong. You might need to use additional knowledge to answer the "
    "question.",
    "You are an AI assistant that helps people find information. User will you give you a "
    "question. Your task is to answer as faithfully as you can. While answering think "
    "step-by-step and justify your answer.",
    "User will you give you a task with some instruction. Your job is follow the instructions "
    "as faithfully as you can. While answering think step-by-step and justify your answer.",
    "You are a teacher. Given a task, you explain in simple steps what the task is asking, any "
    "guidelines it provides and how to use those guidelines to find the answer.",
    "You are an AI assistant, who knows every language and how to translate one language to "
    "another. Given a task, you explain in simple steps what the task is asking, any "
    "guidelines that it provides. You solve the task and show how you used the guidelines to "
    "solve the task.",
    "Given a definition of a task and a sample input, break the definition into small parts.\n"
    "Each of those parts will have some instruction. Explain their meaning by showing an "
    "example that meets the criteria in the instruction. Use the following format:\n"
    "Part #: a key part of the definition.\n"
    "Usage: Sample response that meets the criteria from the key part. Explain why you think it "
    "meets the criteria.",
    "You are an AI assistant that helps people find information.",
)
POOLS = {"orca": ORCA_POOL}


@dataclass(frozen=True)
class SystemPromptChooser:
    """A policy resolved for one (source, format): `choose` gives each record's prompt."""

    mode: str
    candidates: tuple[str, ...]
    probability: float
    seed: int
    format: str

    @classmethod
    def build(
        cls, policy: SystemPrompt, seed: int, format_name: str, format_default: str | None
    ) -> SystemPromptChooser:
        if policy.pool is not None:
            pool = POOLS[policy.pool] if isinstance(policy.pool, str) else policy.pool
        elif policy.default is not None:
            pool = [format_default or policy.default]
        else:
            pool = []
        return cls(policy.mode, tuple(pool), policy.probability, seed, format_name)

    def choose(self, record_ids: list[str], own: list[str | None]) -> list[str | None]:
        """The system prompt of each record (`own`: the record's own, or None)."""
        if self.mode == "drop":
            return [None] * len(own)
        keep = self.mode == "keep"
        if not self.candidates:
            return list(own) if keep else [None] * len(own)
        gets = uniforms(self.seed, record_ids, self.format, "system") < self.probability
        picks = (
            uniforms(self.seed, record_ids, self.format, "system-pool") * len(self.candidates)
        ).astype(int)
        return [
            o if keep and o is not None else (self.candidates[p] or None) if g else None
            for o, g, p in zip(own, gets, picks)
        ]
