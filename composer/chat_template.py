"""A prompt format rendered by a model's own chat template (a local Hugging Face tokenizer).

`{name: qwen, tokenizer: path/to/tokenizer, max_seq_len: 2048}` in a manifest's `formats`
renders each conversation with that tokenizer's `apply_chat_template`, so the text is exactly
what the model sees, and measures the rendered rows in its tokens for the report. The format
has the interface of `composer.formats.PromptFormat` (render, render_completions, sha256).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from composer.errors import TemplateError
from composer.formats import drop_end_token
from composer.shapes import MESSAGE_ROLE_OF

TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json", "chat_template.jinja")


def tokenizer_problem(folder: Path) -> str | None:
    """Why `folder` is not a tokenizer with a chat template, or None."""
    if not folder.is_dir():
        return f"no such tokenizer folder: {folder}"
    if (folder / "chat_template.jinja").is_file():
        return None
    try:
        config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"{folder}: no readable tokenizer_config.json ({exc})"
    if not config.get("chat_template"):
        return f"{folder}: the tokenizer has no chat_template to render with"
    return None


def folder_sha(folder: Path) -> str:
    """sha256 over the tokenizer's files (names and bytes): a changed template or vocabulary
    changes the render cache's key."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


@dataclass
class ChatTemplateFormat:
    name: str
    path: Path  # the tokenizer folder
    tokenizer: Any = field(repr=False)
    keep_eos: bool = False
    max_seq_len: int | None = None
    vars: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    default_system: str | None = None
    lead: str | None = None

    @classmethod
    def load(
        cls, name: str, folder: Path, keep_eos: bool = False, max_seq_len: int | None = None
    ) -> ChatTemplateFormat:
        problem = tokenizer_problem(folder)
        if problem:
            raise TemplateError(problem, key="tokenizer")
        from transformers import AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        except Exception as exc:  # transformers raises many kinds for a broken folder
            raise TemplateError(
                f"{folder}: cannot load the tokenizer: {type(exc).__name__}: {exc}",
                key="tokenizer",
            ) from exc
        return cls(
            name=name,
            path=folder,
            tokenizer=tokenizer,
            keep_eos=keep_eos,
            max_seq_len=max_seq_len,
            description=f"the chat template of {folder.name}",
        )

    def sha256(self) -> str:
        return folder_sha(self.path)

    def _apply(self, messages: Sequence[Mapping], add_generation_prompt: bool) -> str:
        # The roles of the `messages` files (a tool's answer is `tool`), as a chat model has them.
        chat = [{"role": MESSAGE_ROLE_OF[m["from"]], "content": m["content"]} for m in messages]
        try:
            return self.tokenizer.apply_chat_template(
                chat, tokenize=False, add_generation_prompt=add_generation_prompt
            )
        except Exception as exc:  # the template's own raise_exception, or a Jinja error
            raise TemplateError(
                f"{self.path}: cannot render format {self.name!r}: {type(exc).__name__}: {exc}"
            ) from exc

    def render(self, context: Sequence[Mapping], answer: str, role: str = "gpt") -> tuple[str, str]:
        """(prompt, completion): the context with the generation prompt, and what the full
        conversation adds to it (less a final eos_token unless keep_eos)."""
        from composer.formats import messages_for

        prompt = self._apply(context, True)
        full = self._apply((*context, *messages_for([(role, answer)])), False)
        if not full.startswith(prompt):
            raise TemplateError(
                f"{self.path}: format {self.name!r}: the chat template's rendering with the "
                "answer does not start with its rendering with add_generation_prompt; it "
                "cannot be split into prompt and completion"
            )
        completion = full[len(prompt) :]
        if not self.keep_eos:
            completion = drop_end_token(completion, self.tokenizer.eos_token)
        return prompt, completion

    def render_completions(
        self, context: Sequence[Mapping], answers: list[str]
    ) -> tuple[str, list[str]]:
        rendered = [self.render(context, a) for a in answers]
        return rendered[0][0], [completion for _, completion in rendered]

    def token_lengths(self, texts: list[str]) -> np.ndarray:
        """Each text's length in this tokenizer's tokens (special tokens as the text has them)."""
        if not texts:
            return np.zeros(0, dtype=np.int64)
        ids = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        return np.fromiter((len(i) for i in ids), dtype=np.int64, count=len(ids))
