"""Prompt formats: one Jinja file each, rendered in a sandbox with StrictUndefined.

A template renders a list of `messages` ({role, content, from}; role is system, user or
assistant) like a Hugging Face chat template, with `add_generation_prompt` set when the
conversation ends with the user's turn. It may begin with a comment holding YAML settings:

    {#- composer
    description: Vicuna v1.1
    default_system: A chat between a user and an unbiased, uncensored assistant.
    vars: {eos_token: "</s>"}
    -#}

An SFT row's `prompt` is everything before the answer, and `completion` the answer with
the format's end marker (less a final `eos_token` unless `keep_eos`). Rendering once per
row with a marker in place of the answer gives both: the text between the generation
prompt and the marker (the "lead", such as llama2's space) is found once per format by
probing, and checked to be the same for every shape of conversation; a template for which
it is not falls back to two renders per row.

Most rows need no render at all. Conversations of the same roles (system, user, assistant)
differ only in the text pasted between the template's literals, so a format renders each
role sequence once with markers for the contents (its "skeleton") and fills the markers in
for every row of that sequence: the skeleton is used only where rendering probe contents
(quotes, braces, markup, newlines, numbers) through it gives exactly what the template does,
and only for rows whose contents are non-empty and carry no leading or trailing whitespace
(the two things a template commonly tests or trims); other rows are rendered.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from types import MappingProxyType
from typing import Any

import jinja2
import yaml
from jinja2.runtime import LoopContext
from jinja2.sandbox import SandboxedEnvironment

from composer.errors import TemplateError

ANSWER = "\x00\x01answer\x01\x00"
# Probe contents for a skeleton, one set per message (cycled): what a template could escape,
# trim, split or test, but with no space at either end (rows with that are rendered).
PROBES = (
    ("Why {{ 1 }} <b>&amp;</b> \"q\" 'x'\n\n[INST] ok?", "42", "a\tb\r\nc }} {% %}"),
    ("Line one.\nLine two:\n  - item", "<|im_end|> </s> ###", "Émile said «hi» 👋"),
)
_MARK = "\ue000{}\ue001"  # a content's place in a skeleton (private use characters)
SKELETONS = 4096  # role sequences a format keeps skeletons for; others are rendered
_FRONT_MATTER = re.compile(r"\A\{#-?\s*composer\s*\n(.*?)-?#\}", re.S)
ROLE_OF = {
    "system": "system",
    "human": "user",
    "gpt": "assistant",
    "function_call": "assistant",
    "observation": "user",
}


class _Sandbox(SandboxedEnvironment):
    """Jinja's sandbox, with a fast path for `loop.index`, `loop.last` and the like.

    The sandbox checks every attribute lookup; the loop variable's public attributes are
    safe, and looking them up is most of a chat template's work.
    """

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is LoopContext and not attribute.startswith("_"):
            try:
                return getattr(obj, attribute)
            except AttributeError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)


_env = _Sandbox(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)


@functools.lru_cache(maxsize=64)
def _parse(path: str, source: str) -> tuple[dict[str, Any], jinja2.Template]:
    """A template's settings and compiled template, once per process (the manifest check and
    the build both load each format). The settings are read, never changed."""
    settings: dict[str, Any] = {}
    match = _FRONT_MATTER.match(source)
    if match:
        try:
            settings = yaml.safe_load(match.group(1)) or {}
        except yaml.YAMLError as exc:
            raise TemplateError(f"{path}: invalid settings comment: {exc}") from exc
        if not isinstance(settings, dict) or not isinstance(settings.get("vars", {}), dict):
            raise TemplateError(
                f"{path}: the settings comment must be a mapping, with `vars` a mapping"
            )
    try:
        template = _env.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"{path}:{exc.lineno}: template syntax error: {exc.message}") from exc
    return settings, template


def builtin_dir() -> Path:
    """The installed `templates/` folder (the package `composer.templates`)."""
    return Path(str(files("composer.templates")))


def available_formats(extra_dirs: list[Path] = ()) -> dict[str, Path]:
    """Format name -> template file; folders named later override the built-ins."""
    found: dict[str, Path] = {}
    for folder in [builtin_dir(), *extra_dirs]:
        if folder.is_dir():
            for path in sorted(folder.glob("*.jinja")):
                found[path.stem] = path
    return found


def template_path(template: str, found: dict[str, Path], base: Path) -> Path | None:
    """A format's template file: a `.jinja` path (relative to `base`), or a format's name."""
    if template.endswith(".jinja"):
        path = base / template
        return path if path.is_file() else None
    return found.get(template)


@dataclass
class PromptFormat:
    name: str
    path: Path
    template: jinja2.Template
    vars: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    default_system: str | None = None
    lead: str | None = None  # None: the lead is not constant, render twice per row
    keep_eos: bool = False  # False: an output ending in the template's eos_token loses it
    _globals: dict[str, Any] | None = field(default=None, repr=False)
    _skeletons: dict[tuple[str, ...], list[str] | None] = field(
        default_factory=dict, repr=False, compare=False
    )

    @classmethod
    def load(
        cls,
        name: str,
        path: Path,
        overrides: dict[str, Any] | None = None,
        keep_eos: bool = False,
    ) -> PromptFormat:
        try:
            source = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise TemplateError(f"{path}: cannot read template: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise TemplateError(
                f"{path}: cannot read template: byte 0x{exc.object[exc.start]:02x} at offset "
                f"{exc.start} is not UTF-8 text"
            ) from None
        settings, template = _parse(str(path), source)
        unknown = set(overrides or {}) - set(settings.get("vars") or {})
        if unknown:
            raise TemplateError(
                f"{path}: unknown template vars {sorted(unknown)}; this template "
                f"takes {sorted(settings.get('vars') or {}) or 'none'}",
                key="vars",
            )
        fmt = cls(
            name=name,
            path=path,
            template=template,
            vars={**(settings.get("vars") or {}), **(overrides or {})},
            description=settings.get("description", ""),
            default_system=settings.get("default_system"),
            keep_eos=keep_eos,
        )
        fmt.lead = fmt._probe_lead()
        return fmt

    def _render(self, messages: Sequence[Mapping], add_generation_prompt: bool) -> str:
        # Template.render would merge the globals into a new dict on every call; building the
        # context from one flat dict is a quarter faster, and rendering is the hot loop.
        if self._globals is None:
            self._globals = {**self.template.globals, **self.vars}
        context = self.template.new_context(
            {**self._globals, "messages": messages, "add_generation_prompt": add_generation_prompt},
            shared=True,
        )
        try:
            return "".join(self.template.root_render_func(context))
        except Exception as exc:  # a template can fail any way Python can (1 // 0, say)
            raise TemplateError(
                f"{self.path}: cannot render format {self.name!r}: {type(exc).__name__}: {exc}"
            ) from exc

    def _probe_lead(self) -> str | None:
        """The text between the generation prompt and the answer, if it is always the same."""
        shapes = [
            [("human", "U1")],
            [("system", "S"), ("human", "U1")],
            [("system", "S"), ("human", "U1"), ("gpt", "A1"), ("human", "U2")],
            [("human", "U1"), ("gpt", "A1"), ("human", "U2"), ("gpt", "A2"), ("human", "U3")],
        ]
        leads = set()
        for shape in shapes:
            context = messages_for(shape)
            prompt = self._render(context, True)
            full = self._render((*context, _msg("gpt", ANSWER)), False)
            if not full.startswith(prompt) or full.count(ANSWER) != 1:
                raise TemplateError(
                    f"{self.path}: format {self.name!r} is not usable for training: rendering a "
                    "conversation with its answer must start with the rendering of the same "
                    "conversation with add_generation_prompt, and show the answer once"
                )
            leads.add(full[len(prompt) : full.index(ANSWER)])
        if len(leads) != 1:
            return None
        self.lead = leads.pop()
        # A template that changes the answer (`| trim`, say) cannot take it pasted in.
        tricky = " An {{ answer }} with spaces \n"
        for shape in shapes:
            context = messages_for(shape)
            if self._fast(context, tricky) != self._exact(context, tricky):
                return None
        return self.lead

    def _exact(self, context: Sequence[Mapping], answer: str, role: str = "gpt") -> tuple[str, str]:
        """Two renders: with the generation prompt, and with the answer."""
        prompt = self._render(context, True)
        full = self._render((*context, _msg(role, answer)), False)
        if not full.startswith(prompt):
            raise TemplateError(
                f"{self.path}: format {self.name!r}: the rendering with the "
                "answer does not start with the generation prompt"
            )
        return prompt, full[len(prompt) :]

    def _skeleton(self, roles: tuple[str, ...]) -> list[str] | None:
        """The literals around the contents of a conversation of these ShareGPT roles (the
        last is the answer's): len(roles) + 1 pieces, or None where filling them in is not
        what the template renders (checked on PROBES), or the template fails on the roles."""
        if roles in self._skeletons:
            return self._skeletons[roles]
        pieces = None
        if self.lead is not None and len(self._skeletons) < SKELETONS:
            try:
                pieces = self._make_skeleton(roles)
            except TemplateError:
                pieces = None
            self._skeletons[roles] = pieces
        return pieces

    def _make_skeleton(self, roles: tuple[str, ...]) -> list[str] | None:
        looked = []
        marks = [_Watched(_MARK.format(i), looked) for i in range(len(roles))]
        full = self._render(messages_for(list(zip(roles, marks))), False)
        if looked:  # the template tests or changes a content: each row is rendered
            return None
        marks = [str(mark) for mark in marks]
        pieces, rest = [], full
        for mark in marks:
            before, found, rest = rest.partition(mark)
            if not found or mark in rest or "\ue000" in before:
                return None
            pieces.append(before)
        pieces.append(rest)
        if not pieces[-2].endswith(self.lead):
            return None
        for probe in PROBES:
            values = [probe[i % len(probe)] for i in range(len(roles))]
            context = messages_for(list(zip(roles[:-1], values[:-1])))
            if _fill(pieces, self.lead, context, values[-1]) != self._exact(
                context, values[-1], roles[-1]
            ):
                return None
        return pieces

    def _fast(
        self, context: Sequence[Mapping], answer: str, role: str = "gpt"
    ) -> tuple[str, str] | None:
        """The skeleton filled in, else one render with a marker in place of the answer; None
        if the marker is not found once."""
        if _plain(answer) and all(_plain(m["content"]) for m in context):
            pieces = self._skeleton((*(m["from"] for m in context), role))
            if pieces is not None:
                return _fill(pieces, self.lead, context, answer)
        full = self._render((*context, _msg(role, ANSWER)), False)
        before, _, after = full.partition(ANSWER)
        if ANSWER in after or not before.endswith(self.lead):
            return None
        return before[: len(before) - len(self.lead)], f"{self.lead}{answer}{after}"

    def sha256(self) -> str:
        """sha256 of what decides the rendering: the template file (vars are hashed apart)."""
        return hashlib.sha256(self.path.read_bytes()).hexdigest()

    def render(self, context: Sequence[Mapping], answer: str, role: str = "gpt") -> tuple[str, str]:
        """(prompt, completion) for the answer to `context` (messages ending with the user's).

        `role` is the answer's ShareGPT role: `gpt`, or `function_call` for a tool call. The
        completion leaves off a final `eos_token` unless `keep_eos`: the trainer's tokenizer
        adds its own, and two would teach the model to stop twice.
        """
        fast = self._fast(context, answer, role) if self.lead is not None else None
        prompt, output = fast or self._exact(context, answer, role)
        return prompt, output if self.keep_eos else drop_end_token(
            output, self.vars.get("eos_token")
        )

    def render_completions(
        self, context: Sequence[Mapping], answers: list[str]
    ) -> tuple[str, list[str]]:
        """The prompt and one output per answer (a DPO pair's chosen and rejected)."""
        prompt, first = self.render(context, answers[0])
        if self.lead is not None and first.startswith(self.lead + answers[0]):
            suffix = first[len(self.lead) + len(answers[0]) :]
            return prompt, [first, *(f"{self.lead}{a}{suffix}" for a in answers[1:])]
        return prompt, [first, *(self.render(context, a)[1] for a in answers[1:])]


class _Watched(str):
    """A content in a skeleton's render, which notes any look at its text: a comparison, a
    test (`in`, `startswith`, truth, length), a change (`trim`, `replace`, a slice). Being
    pasted into the output (str(), `~`, `+`) is not a look. A template that looks cannot be
    filled in blind, whatever the probes show."""

    def __new__(cls, text: str, looked: list) -> _Watched:
        self = super().__new__(cls, text)
        self.looked = looked
        return self


def _noting(name: str):
    method = getattr(str, name)

    def noted(self, *args, **kwargs):
        self.looked.append(name)
        return method(self, *args, **kwargs)

    noted.__name__ = name
    return noted


for _name in (
    "__contains__", "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__hash__",
    "__len__", "__iter__", "__getitem__", "__mul__", "__rmul__", "__mod__",
    "capitalize", "casefold", "center", "count", "encode", "endswith", "expandtabs", "find",
    "format", "format_map", "index", "isalnum", "isalpha", "isascii", "isdecimal", "isdigit",
    "isidentifier", "islower", "isnumeric", "isprintable", "isspace", "istitle", "isupper",
    "join", "ljust", "lower", "lstrip", "partition", "removeprefix", "removesuffix",
    "replace", "rfind", "rindex", "rjust", "rpartition", "rsplit", "rstrip", "split",
    "splitlines", "startswith", "strip", "swapcase", "title", "translate", "upper", "zfill",
):  # fmt: skip
    setattr(_Watched, _name, _noting(_name))
_Watched.__bool__ = lambda self: bool(self.looked.append("__bool__") or str.__len__(self))


def _plain(text: str) -> bool:
    """Content a skeleton may take: not empty, no whitespace at either end."""
    return bool(text) and not text[0].isspace() and not text[-1].isspace()


def _fill(pieces: list[str], lead: str, context: Sequence[Mapping], answer: str) -> tuple[str, str]:
    """(prompt, completion) from a skeleton: the contents between its literals."""
    parts = []
    for literal, message in zip(pieces, context):
        parts += (literal, message["content"])
    parts.append(pieces[-2][: len(pieces[-2]) - len(lead)])
    return "".join(parts), f"{lead}{answer}{pieces[-1]}"


def drop_end_token(completion: str, eos: str | None) -> str:
    """`completion` less a final end token (and the whitespace a template puts after it,
    ChatML's newline say): the trainer's tokenizer adds the end token itself."""
    end = completion.rstrip()
    return end[: -len(eos)] if eos and end.endswith(eos) else completion


def _msg(sharegpt_role: str, value: str) -> Mapping[str, str]:
    """A template message. Read-only, so that no template can change what others render."""
    role = ROLE_OF.get(sharegpt_role, sharegpt_role)
    return MappingProxyType({"role": role, "content": value, "from": sharegpt_role})


def messages_for(turns: Sequence[tuple[str, str]]) -> tuple[Mapping[str, str], ...]:
    """ShareGPT (from, value) pairs as template messages (a tuple: read-only too)."""
    return tuple(_msg(role, value) for role, value in turns)
