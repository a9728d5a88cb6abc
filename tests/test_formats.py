"""Prompt formats: the reference renderings of DESIGN.md, template loading and the sandbox.

The reference strings below are transcribed from DESIGN.md ("Prompt formats") for system `S`,
user `U1`, answer `A1` and user `U2`. DESIGN gives alpaca for one turn only; its two-turn
strings here are the built-in template's extension (the answer, a blank line, a new
`### Instruction:` block).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import composer
from composer.build import load_formats
from composer.errors import TemplateError, UserError
from composer.formats import ANSWER, PromptFormat, available_formats, builtin_dir, messages_for
from composer.manifest import Manifest
from tests.helpers import read_rendered

BUILTINS = ("alpaca", "vicuna", "chatml", "llama2", "openassistant", "llama3")
ALPACA = (
    "Below is an instruction that describes a task.  Write a response that "
    "appropriately completes the request.\n\n"
)
LLAMA3_SYS = "<|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
LLAMA3_U1 = "<|start_header_id|>user<|end_header_id|>\n\nU1<|eot_id|>"
LLAMA3_A1 = "<|start_header_id|>assistant<|end_header_id|>\n\nA1<|eot_id|>"
LLAMA3_U2 = "<|start_header_id|>user<|end_header_id|>\n\nU2<|eot_id|>"
LLAMA3_GEN = "<|start_header_id|>assistant<|end_header_id|>\n\n"

# format -> (one turn, one turn with S, two turns, two turns with S, output for answer "A")
REFERENCE = {
    "alpaca": (
        ALPACA + "### Instruction:\nU1\n\n### Response:\n",
        ALPACA + "### Instruction:\nS\nU1\n\n### Response:\n",
        ALPACA + "### Instruction:\nU1\n\n### Response:\nA1\n\n### Instruction:\nU2\n\n"
        "### Response:\n",
        ALPACA + "### Instruction:\nS\nU1\n\n### Response:\nA1\n\n### Instruction:\nU2\n\n"
        "### Response:\n",
        "A</s>",
    ),
    "vicuna": (
        "USER: U1\nASSISTANT: ",
        "S\nUSER: U1\nASSISTANT: ",
        "USER: U1\nASSISTANT: A1\nUSER: U2\nASSISTANT: ",
        "S\nUSER: U1\nASSISTANT: A1\nUSER: U2\nASSISTANT: ",
        "A</s>",
    ),
    "chatml": (
        "<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\n",
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\n",
        "<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n"
        "<|im_start|>user\nU2<|im_end|>\n<|im_start|>assistant\n",
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n"
        "<|im_start|>assistant\nA1<|im_end|>\n<|im_start|>user\nU2<|im_end|>\n"
        "<|im_start|>assistant\n",
        "A<|im_end|>",
    ),
    "llama2": (
        "[INST] U1 [/INST]",
        "[INST] <<SYS>>\nS\n<</SYS>>\n\nU1 [/INST]",
        "[INST] U1 [/INST] A1 </s><s>[INST] U2 [/INST]",
        "[INST] <<SYS>>\nS\n<</SYS>>\n\nU1 [/INST] A1 </s><s>[INST] U2 [/INST]",
        " A </s>",  # "the answer follows after a space and ends with </s>"
    ),
    "openassistant": (
        "<|prompter|>U1</s><|assistant|>",
        "<|system|>S</s><|prompter|>U1</s><|assistant|>",
        "<|prompter|>U1</s><|assistant|>A1</s><|prompter|>U2</s><|assistant|>",
        "<|system|>S</s><|prompter|>U1</s><|assistant|>A1</s><|prompter|>U2</s><|assistant|>",
        "A</s>",
    ),
    "llama3": (
        LLAMA3_U1 + LLAMA3_GEN,
        LLAMA3_SYS + LLAMA3_U1 + LLAMA3_GEN,
        LLAMA3_U1 + LLAMA3_A1 + LLAMA3_U2 + LLAMA3_GEN,
        LLAMA3_SYS + LLAMA3_U1 + LLAMA3_A1 + LLAMA3_U2 + LLAMA3_GEN,
        "A<|eot_id|>",
    ),
}
SHAPES = {
    "one": [("human", "U1")],
    "one_sys": [("system", "S"), ("human", "U1")],
    "two": [("human", "U1"), ("gpt", "A1"), ("human", "U2")],
    "two_sys": [("system", "S"), ("human", "U1"), ("gpt", "A1"), ("human", "U2")],
}


@cache
def builtin(name: str, keep_eos: bool = True, **overrides) -> PromptFormat:
    """A built-in format; with its end token kept, as the reference renderings show it."""
    return PromptFormat.load(name, available_formats()[name], overrides or None, keep_eos)


def full_rendering(fmt: PromptFormat, messages: list[dict], generation: bool) -> str:
    """What the template itself renders, without composer's split into input and output."""
    return fmt.template.render(messages=messages, add_generation_prompt=generation, **fmt.vars)


def write_template(folder: Path, name: str, source: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.jinja"
    path.write_text(source, encoding="utf-8")
    return path


# ---------------------------------------------------------------- reference renderings


def test_the_six_builtin_formats_ship_with_the_package():
    assert set(BUILTINS) <= set(available_formats())
    assert all(available_formats()[n].parent == builtin_dir() for n in BUILTINS)


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("name", BUILTINS)
def test_input_is_the_reference_rendering(name, shape):
    expected = REFERENCE[name][list(SHAPES).index(shape)]
    prompt, output = builtin(name).render(messages_for(SHAPES[shape]), "A")
    assert prompt == expected
    assert output == REFERENCE[name][4]


@pytest.mark.parametrize("name", ["alpaca", "vicuna", "llama2", "openassistant"])
def test_the_end_token_is_left_off_by_default(name):
    """The trainer's tokenizer adds its end token; the template's own would make two."""
    fmt = builtin(name, keep_eos=False)
    prompt, output = fmt.render(messages_for(SHAPES["two_sys"]), "A")
    assert output == REFERENCE[name][4].removesuffix(fmt.vars["eos_token"])
    assert prompt == REFERENCE[name][3]
    _, (good, bad) = fmt.render_completions(messages_for(SHAPES["two"]), ["G", "B"])
    assert not good.endswith("</s>") and not bad.endswith("</s>")


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("name", BUILTINS)
def test_input_and_output_are_the_templates_own_renderings(name, shape):
    """input is the generation-prompt rendering; input + output the rendering with the answer."""
    fmt = builtin(name)
    context = messages_for(SHAPES[shape])
    prompt, output = fmt.render(context, "A")
    assert prompt == full_rendering(fmt, context, True)
    assert prompt + output == full_rendering(fmt, [*context, *messages_for([("gpt", "A")])], False)


@pytest.mark.parametrize("name", BUILTINS)
def test_output_is_the_answer_and_the_end_marker(name):
    _, output = builtin(name).render(messages_for(SHAPES["one"]), "The answer.\nTwo lines.")
    expected = REFERENCE[name][4].replace("A", "The answer.\nTwo lines.")
    assert output == expected


def test_llama2_answer_follows_after_a_space():
    prompt, output = builtin("llama2").render(messages_for(SHAPES["one"]), "A1")
    assert not prompt.endswith(" ")
    assert output == " A1 </s>"
    assert builtin("llama2").lead == " "


@pytest.mark.parametrize("name", BUILTINS)
def test_dpo_prompt_chosen_rejected(name):
    fmt = builtin(name)
    context = messages_for(SHAPES["two_sys"])
    prompt, (chosen, rejected) = fmt.render_completions(context, ["Good.", "Bad, longer."])
    assert prompt == REFERENCE[name][3]
    assert chosen == REFERENCE[name][4].replace("A", "Good.")
    assert rejected == REFERENCE[name][4].replace("A", "Bad, longer.")


@pytest.mark.parametrize("name", BUILTINS)
def test_dpo_completions_match_single_renders(name):
    fmt = builtin(name)
    context = messages_for(SHAPES["one"])
    answers = ["x", "a much longer answer\nwith lines", "A1 </s>"]
    prompt, outputs = fmt.render_completions(context, answers)
    assert [(prompt, o) for o in outputs] == [fmt.render(context, a) for a in answers]


def test_chatml_bagel_variant_through_vars():
    fmt = builtin("chatml", im_start="<s>", im_end="\n</s>")
    prompt, output = fmt.render(messages_for(SHAPES["one"]), "A")
    assert prompt == "<s>user\nU1\n</s>\n<s>assistant\n"
    assert output == "A\n</s>"
    prompt, _ = fmt.render(messages_for(SHAPES["two_sys"]), "A")
    assert prompt == (
        "<s>system\nS\n</s>\n<s>user\nU1\n</s>\n<s>assistant\nA1\n</s>\n"
        "<s>user\nU2\n</s>\n<s>assistant\n"
    )


def test_front_matter_settings():
    vicuna = builtin("vicuna")
    assert vicuna.default_system == "A chat between a user and an unbiased, uncensored assistant."
    assert vicuna.vars == {"eos_token": "</s>"}
    assert builtin("chatml").vars == {"im_start": "<|im_start|>", "im_end": "<|im_end|>"}
    assert builtin("chatml").default_system is None
    assert all(builtin(n).description for n in BUILTINS)


def test_tool_roles_render_as_assistant_and_user():
    context = messages_for([("human", "U1"), ("function_call", "F"), ("observation", "O")])
    prompt, _ = builtin("chatml").render(context, "A")
    assert prompt == (
        "<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\nF<|im_end|>\n"
        "<|im_start|>user\nO<|im_end|>\n<|im_start|>assistant\n"
    )


# ---------------------------------------------------------------- loading and errors


def test_unknown_template_vars_are_an_error(tmp_path):
    with pytest.raises(TemplateError, match=r"unknown template vars \['im_begin'\].*im_end"):
        builtin("chatml", im_begin="<s>")
    with pytest.raises(TemplateError, match="takes none"):
        builtin("llama3", eos_token="</s>")


def test_undefined_variable_is_a_template_error_with_the_path(tmp_path):
    path = write_template(
        tmp_path, "bad", "{% for m in messages %}{{ m.content }}{{ eos }}{% endfor %}"
    )
    with pytest.raises(TemplateError) as info:
        PromptFormat.load("bad", path)
    assert str(path) in str(info.value)
    assert "'eos' is undefined" in str(info.value)


def test_missing_key_is_undefined_too(tmp_path):
    path = write_template(tmp_path, "bad", "{% for m in messages %}{{ m.text }}{% endfor %}")
    with pytest.raises(TemplateError, match="undefined"):
        PromptFormat.load("bad", path)


def test_syntax_error_names_file_and_line(tmp_path):
    path = write_template(
        tmp_path, "broken", "{% for m in messages %}\n{{ m.content }\n{% endfor %}\n"
    )
    with pytest.raises(TemplateError, match=rf"^{path}:2: template syntax error"):
        PromptFormat.load("broken", path)


def test_invalid_front_matter_is_a_template_error(tmp_path):
    path = write_template(tmp_path, "fm", "{#- composer\nvars: [unclosed\n-#}\n{{ 'x' }}")
    with pytest.raises(TemplateError, match="invalid settings comment"):
        PromptFormat.load("fm", path)


def test_unreadable_template_is_a_template_error(tmp_path):
    with pytest.raises(TemplateError, match="cannot read template"):
        PromptFormat.load("nothing", tmp_path / "nothing.jinja")


@pytest.mark.parametrize(
    "expression",
    [
        "messages.__class__.__mro__",
        "''.__class__",
        "''.__class__.__mro__[1].__subclasses__()",
        "messages[0].__class__.__init__.__globals__",
        "add_generation_prompt.__class__.__base__",
    ],
)
def test_sandbox_blocks_unsafe_attributes(tmp_path, expression):
    path = write_template(
        tmp_path,
        "evil",
        "{{ " + expression + " }}{% for m in messages %}{{ m.content }}{% endfor %}",
    )
    with pytest.raises(TemplateError, match="unsafe"):
        PromptFormat.load("evil", path)


@pytest.mark.parametrize(
    "statement",
    [
        "{% set _ = messages.append({'role': 'x'}) %}",
        "{% set _ = messages[0].update({'content': 'x'}) %}",
    ],
)
def test_sandbox_refuses_to_mutate_the_messages(tmp_path, statement):
    """Messages reach templates as a tuple of read-only mappings: no method can change them."""
    path = write_template(
        tmp_path, "evil", statement + "{% for m in messages %}{{ m.content }}{% endfor %}"
    )
    with pytest.raises(TemplateError, match="has no attribute"):
        PromptFormat.load("evil", path)


@pytest.mark.parametrize(
    "body",
    [
        "{{ 1 // 0 }}",
        "{% for i in range(10**9) %}{% endfor %}",
        "{{ messages[0].content + 1 }}",
        "{% include 'x.jinja' %}",
    ],
)
def test_python_errors_in_a_template_are_template_errors(tmp_path, body):
    path = write_template(
        tmp_path, "oops", body + "{% for m in messages %}{{ m.content }}{% endfor %}"
    )
    with pytest.raises(TemplateError, match=str(path)):
        PromptFormat.load("oops", path)


def test_answer_rendering_must_start_with_the_generation_prompt(tmp_path):
    # The generation prompt says "Assistant:\n" but an answer is rendered after "Assistant: ".
    path = write_template(
        tmp_path,
        "skew",
        (
            "{% for m in messages %}{{ m.role | capitalize }}: {{ m.content }}\n{% endfor %}"
            "{% if add_generation_prompt %}Assistant:\n{% endif %}"
        ),
    )
    with pytest.raises(TemplateError, match=r"not usable for training.*add_generation_prompt"):
        PromptFormat.load("skew", path)


def test_answer_rendered_twice_is_not_usable(tmp_path):
    path = write_template(
        tmp_path,
        "twice",
        (
            "{% for m in messages %}{{ m.content }}{% if m.role == 'assistant' %}{{ m.content }}"
            "{% endif %}\n{% endfor %}"
        ),
    )
    with pytest.raises(TemplateError, match="show the answer once"):
        PromptFormat.load("twice", path)


LEAD_BY_SHAPE = (
    # The first answer follows "A:" after a space, later ones after a newline.
    "{%- for m in messages -%}"
    "{%- if m.role == 'assistant' -%}"
    "{{ (' ' if loop.index0 == 1 or (loop.index0 == 2 and messages[0].role == 'system') "
    "else '\n') ~ m.content ~ '</s>\n' }}"
    "{%- else -%}{{ m.role ~ ': ' ~ m.content ~ '\n' }}"
    "{%- if m.role == 'user' and (add_generation_prompt or not loop.last) -%}A:{%- endif -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
)


def test_lead_that_differs_by_shape_falls_back_to_two_renders(tmp_path):
    fmt = PromptFormat.load("shaped", write_template(tmp_path, "shaped", LEAD_BY_SHAPE))
    assert fmt.lead is None
    prompt, output = fmt.render(messages_for(SHAPES["one"]), "A")
    assert (prompt, output) == ("user: U1\nA:", " A</s>\n")
    prompt, output = fmt.render(messages_for(SHAPES["two_sys"]), "A")
    assert (prompt, output) == ("system: S\nuser: U1\nA: A1</s>\nuser: U2\nA:", "\nA</s>\n")
    prompt, (good, bad) = fmt.render_completions(messages_for(SHAPES["two"]), ["G", "B"])
    assert (prompt, good, bad) == ("user: U1\nA: A1</s>\nuser: U2\nA:", "\nG</s>\n", "\nB</s>\n")


def test_constant_lead_is_found_once(tmp_path):
    path = write_template(
        tmp_path,
        "spaced",
        (
            "{% for m in messages %}{% if m.role == 'assistant' %}  {{ m.content }}|{% else %}"
            "<{{ m.role }}>{{ m.content }}{% endif %}{% endfor %}"
        ),
    )
    fmt = PromptFormat.load("spaced", path)
    assert fmt.lead == "  "
    assert fmt.render(messages_for(SHAPES["two"]), "A") == ("<user>U1  A1|<user>U2", "  A|")


def test_template_that_filters_content_renders_the_answer_as_the_template_does(tmp_path):
    path = write_template(
        tmp_path,
        "llama3_trim",
        (
            "{%- for m in messages -%}{{- '<|start_header_id|>' ~ m.role ~ '<|end_header_id|>\n\n' "
            "~ (m.content | trim) ~ '<|eot_id|>' -}}{%- endfor -%}{%- if add_generation_prompt -%}"
            "{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}{%- endif -%}"
        ),
    )
    fmt = PromptFormat.load("llama3_trim", path)
    context = messages_for(SHAPES["one"])
    prompt, output = fmt.render(context, "A\n")
    assert output == "A<|eot_id|>"
    assert prompt + output == full_rendering(
        fmt, [*context, *messages_for([("gpt", "A\n")])], False
    )


def test_content_containing_the_answer_sentinel(tmp_path):
    fmt = builtin("chatml")
    context = messages_for([("human", f"quote {ANSWER} end")])
    prompt, output = fmt.render(context, "A")
    assert (prompt, output) == (full_rendering(fmt, context, True), "A<|im_end|>")


# ---------------------------------------------------------------- user formats via a manifest

ZEPHYR = """{#- composer
description: Zephyr (<|user|>, <|assistant|>, each closed by </s>)
vars:
  eos_token: "</s>"
-#}
{%- for m in messages -%}
  {{- "<|" ~ m["role"] ~ "|>\\n" ~ m["content"] ~ eos_token -}}
  {%- if not loop.last or add_generation_prompt -%}{{- "\\n" -}}{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- "<|assistant|>\\n" -}}{%- endif -%}
"""


def write_project(tmp_path: Path, formats: str, extra: str = "") -> Path:
    rows = [
        {"conversations": [{"from": "human", "value": "U1"}, {"from": "gpt", "value": "A1"}]},
        {
            "conversations": [
                {"from": "system", "value": "S"},
                {"from": "human", "value": "U1b"},
                {"from": "gpt", "value": "A1b"},
                {"from": "human", "value": "U2b"},
                {"from": "gpt", "value": "A2b"},
            ]
        },
    ]
    (tmp_path / "chats.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    write_template(tmp_path / "my_templates", "zephyr", ZEPHYR)
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(
        "name: user_format\nseed: 7\n"
        "sources:\n  - {name: chats, plugin: sharegpt, path: chats.jsonl}\n"
        f"templates_dir: my_templates\nformats: {formats}\noutput: {{dir: out}}\n{extra}",
        "utf-8",
    )
    return manifest


def test_user_format_from_templates_dir_end_to_end(tmp_path):
    manifest = write_project(
        tmp_path,
        '[zephyr, {name: bagel, template: chatml, vars: {im_start: "<s>", im_end: "\\n</s>"}}]',
    )
    result = composer.build(manifest)
    rows = read_rendered(result.output_dir, "sft")
    got = {(r["format"], r["prompt"], r["completion"]) for r in rows}
    assert got == {
        ("zephyr", "<|user|>\nU1</s>\n<|assistant|>\n", "A1"),
        ("zephyr", "<|system|>\nS</s>\n<|user|>\nU1b</s>\n<|assistant|>\n", "A1b"),
        (
            "zephyr",
            "<|system|>\nS</s>\n<|user|>\nU1b</s>\n<|assistant|>\nA1b</s>\n"
            "<|user|>\nU2b</s>\n<|assistant|>\n",
            "A2b",
        ),
        ("bagel", "<s>user\nU1\n</s>\n<s>assistant\n", "A1\n</s>"),
        ("bagel", "<s>system\nS\n</s>\n<s>user\nU1b\n</s>\n<s>assistant\n", "A1b\n</s>"),
        (
            "bagel",
            "<s>system\nS\n</s>\n<s>user\nU1b\n</s>\n<s>assistant\nA1b\n</s>\n"
            "<s>user\nU2b\n</s>\n<s>assistant\n",
            "A2b\n</s>",
        ),
    }
    assert sorted(r["turn"] for r in rows) == [1, 1, 1, 1, 2, 2]


def test_user_folder_overrides_a_builtin(tmp_path):
    write_template(tmp_path / "mine", "chatml", ZEPHYR)
    found = available_formats([tmp_path / "mine"])
    assert found["chatml"] == tmp_path / "mine" / "chatml.jinja"
    assert found["llama3"].parent == builtin_dir()


def test_format_given_as_a_jinja_path(tmp_path):
    write_template(tmp_path, "zeph", ZEPHYR)
    manifest = Manifest.model_validate(
        {
            "name": "x",
            "sources": [{"name": "s", "plugin": "sharegpt", "path": "a.jsonl"}],
            "formats": [{"name": "z", "template": "zeph.jinja"}],
            "base_dir": tmp_path,
        }
    )
    (fmt,) = load_formats(manifest)
    assert fmt.name == "z"
    assert fmt.render(messages_for(SHAPES["one"]), "A") == (
        "<|user|>\nU1</s>\n<|assistant|>\n",
        "A",
    )


def test_unknown_template_vars_in_a_manifest_fail_the_build(tmp_path):
    manifest = write_project(tmp_path, "[{name: chatml, vars: {im_begin: x}}]")
    with pytest.raises(UserError, match=r"chatml.jinja: unknown template vars \['im_begin'\]"):
        composer.build(manifest)
    assert not (tmp_path / "out").exists()


def test_unknown_template_vars_are_reported_by_validate(tmp_path):
    manifest = write_project(tmp_path, "[{name: chatml, vars: {im_begin: x}}]")
    with pytest.raises(UserError, match=r"formats\[0\]\.vars.*im_begin"):
        composer.load_manifest(manifest)


def test_unknown_format_in_a_manifest_object_is_a_user_error():
    manifest = Manifest.model_validate(
        {
            "name": "x",
            "sources": [{"name": "s", "plugin": "sharegpt", "path": "a.jsonl"}],
            "formats": ["chatmel"],
        }
    )
    with pytest.raises(UserError, match="chatmel"):
        load_formats(manifest)


# ---------------------------------------------------------------- any conversation renders

SPECIALS = [
    "{{ x }}",
    "{{",
    "}}",
    "{% if true %}",
    "{% endif %}",
    "{%",
    "%}",
    "{#",
    "#}",
    "</s>",
    "<s>",
    "<|im_end|>",
    "<|eot_id|>",
    "[INST]",
    "[/INST]",
    "\n",
    "\r\n",
    " ",
    "\t",
    "### Response:\n",
    "USER: ",
    "ASSISTANT: ",
    "é",
    "漢字",
    "🙂",
    "\u200b",
    "\\",
]
content = st.lists(st.one_of(st.text(max_size=6), st.sampled_from(SPECIALS)), max_size=6).map(
    "".join
)


@st.composite
def conversations(draw):
    """A context ending with the user's turn (optional system turn first) and an answer."""
    turns = [("system", draw(content))] if draw(st.booleans()) else []
    for _ in range(draw(st.integers(0, 3))):
        turns += [("human", draw(content)), ("gpt", draw(content))]
    turns.append(("human", draw(content)))
    return turns, draw(content), draw(content)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conversation=conversations(), name=st.sampled_from(BUILTINS))
def test_any_conversation_renders_and_splits_exactly(conversation, name):
    turns, answer, other = conversation
    assume(not any(ANSWER in text for _, text in turns))
    fmt = builtin(name)
    context = messages_for(turns)
    prompt, output = fmt.render(context, answer)
    assert prompt == full_rendering(fmt, context, True)
    assert prompt + output == full_rendering(
        fmt, [*context, *messages_for([("gpt", answer)])], False
    )
    # Content is data, never Jinja: every message shows up verbatim.
    for _, text in turns:
        assert text in prompt
    assert answer in output
    prompt2, (out_a, out_b) = fmt.render_completions(context, [answer, other])
    assert (prompt2, out_a) == (prompt, output)
    assert out_b == fmt.render(context, other)[1]


# ---------------------------------------------------------------- Llama-2 as Meta writes it

B_INST, E_INST = "[INST]", "[/INST]"
B_SYS, E_SYS = "<<SYS>>\n", "\n<</SYS>>\n\n"


def meta_chat_completion(dialog: list[dict]) -> str:
    """Meta's `Llama.chat_completion` prompt (llama/generation.py), as text: the system
    prompt folded into the first instruction, every content stripped, each (instruction,
    answer) pair encoded with BOS and EOS (written `<s>`, `</s>`), the last instruction with
    BOS alone."""
    if dialog[0]["role"] == "system":
        first = B_SYS + dialog[0]["content"] + E_SYS + dialog[1]["content"]
        dialog = [{"role": dialog[1]["role"], "content": first}, *dialog[2:]]
    text = "".join(
        f"<s>{B_INST} {(prompt['content']).strip()} {E_INST} {(answer['content']).strip()} </s>"
        for prompt, answer in zip(dialog[::2], dialog[1::2])
    )
    return text + f"<s>{B_INST} {(dialog[-1]['content']).strip()} {E_INST}"


META_DIALOGS = [
    [{"role": "user", "content": "I am going to Paris, what should I see?"}],
    [
        {"role": "system", "content": "Always answer with Haiku"},
        {"role": "user", "content": "I am going to Paris, what should I see?"},
    ],
    [
        {"role": "system", "content": " Always answer with emojis "},
        {"role": "user", "content": "How to go from Beijing to NY?\n"},
        {"role": "assistant", "content": "  ✈️🗽 \n"},
        {"role": "user", "content": "  What is so great about #1?"},
    ],
]


@pytest.mark.parametrize("dialog", META_DIALOGS)
def test_llama2_with_leading_bos_and_strip_is_metas_chat_completion_byte_for_byte(dialog):
    fmt = builtin("llama2", leading_bos=True, strip=True)
    role = {"system": "system", "user": "human", "assistant": "gpt"}
    context = messages_for([(role[m["role"]], m["content"]) for m in dialog])
    prompt, completion = fmt.render(context, " The Eiffel Tower. ")
    assert prompt.encode() == meta_chat_completion(dialog).encode()
    # the answer as Meta's next prompt would hold it: stripped, a space, then EOS
    answered = [*dialog, {"role": "assistant", "content": " The Eiffel Tower. "}]
    following = meta_chat_completion([*answered, {"role": "user", "content": "Next?"}])
    assert following.startswith(prompt + completion)
    assert completion == " The Eiffel Tower. </s>"


def test_llama2_defaults_keep_the_design_reference():
    """Without the two variables: no leading <s>, contents as they are."""
    fmt = builtin("llama2")
    prompt, _ = fmt.render(messages_for([("human", " U1 ")]), "A")
    assert prompt == "[INST]  U1  [/INST]"


# ---------------------------------------------------------------- skeletons

CONTENT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)) | st.sampled_from("{}%#<>&\n\t '\""),
    min_size=0,
    max_size=30,
)
CONVERSATION = st.lists(
    st.tuples(st.sampled_from(["human", "gpt", "function_call", "observation"]), CONTENT),
    min_size=0,
    max_size=5,
)


def rendered_by_the_template(fmt: PromptFormat, context, answer: str, role: str):
    """What render must give: two renders of the template, no skeleton."""
    prompt, output = fmt._exact(context, answer, role)
    return prompt, output if fmt.keep_eos else composer.formats.drop_end_token(
        output, fmt.vars.get("eos_token")
    )


@pytest.mark.parametrize("name", BUILTINS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(system=st.none() | CONTENT, turns=CONVERSATION, answer=CONTENT)
def test_a_skeleton_renders_what_the_template_renders(name, system, turns, answer):
    """Any roles, any contents (empty, spaced, braces, markup): filling a role sequence's
    skeleton gives the template's own rendering, or the row is rendered."""
    fmt = builtin(name, keep_eos=False)
    head = [("system", system)] if system is not None else []
    context = messages_for([*head, *turns, ("human", "U")])
    try:
        expected = rendered_by_the_template(fmt, context, answer, "gpt")
    except TemplateError:
        assume(False)
    assert fmt.render(context, answer) == expected


def test_built_in_formats_fill_skeletons_for_common_conversations():
    """The fast path is taken: each built-in has a skeleton for a chat with a system prompt."""
    for name in BUILTINS:
        fmt = builtin(name)
        fmt.render(messages_for(SHAPES["two_sys"]), "A")
        assert fmt._skeletons[("system", "human", "gpt", "human", "gpt")] is not None, name


@pytest.mark.parametrize(
    "body",
    [
        "{% if m.content == '42' %}forty-two{% else %}{{ m.content }}{% endif %}",
        "{{ m.content | replace('<', '&lt;') }}",
        "{{ m.content | replace('  ', ' ') }}",
        "{{ m.content.split('\\n')[0] }}",
        "{% if 'BOOM' in m.content %}!{% endif %}{{ m.content }}",
        "{% if m.content.startswith('<tool>') %}T{% endif %}{{ m.content }}",
        "{{ {'a': 'b'}.get(m.content, m.content) }}",
        "{% if m.content | length > 500 %}(long){% endif %}{{ m.content }}",
    ],
)
def test_a_template_that_reads_the_content_gets_no_skeleton(tmp_path, body):
    """A template that tests or changes the text (not only pastes it) renders every row."""
    source = "{% for m in messages %}<{{ m.role }}>" + body + "|{% endfor %}"
    fmt = PromptFormat.load("reads", write_template(tmp_path, "reads", source))
    context = messages_for([("human", "42"), ("gpt", "a<b"), ("human", "x\ny")])
    assert fmt.render(context, "ok") == rendered_by_the_template(fmt, context, "ok", "gpt")
    assert fmt._skeletons.get(("human", "gpt", "human", "gpt")) is None


# It trims and tests a concatenation, which a skeleton's watched contents do not see.
TRIMS_USERS = (
    "{% for m in messages %}<{{ m.role }}>"
    "{{ (('' ~ m.content) | trim) if m.role == 'user' else m.content }}"
    "{% if m.role == 'user' and not ('' ~ m.content) %}(empty){% endif %}|{% endfor %}"
)


@pytest.mark.parametrize("text", [" spaced ", "", "\ttab", "end\n"])
def test_contents_a_template_may_trim_or_test_are_rendered(tmp_path, text):
    """A template that trims the user's turns, or marks empty ones, has skeletons (probe
    contents have no spaces at either end), yet a row with such a turn is rendered."""
    fmt = PromptFormat.load("trims", write_template(tmp_path, "trims", TRIMS_USERS))
    for context in (
        messages_for([("human", text)]),
        messages_for([("system", text), ("human", "U"), ("gpt", text), ("human", text)]),
    ):
        plain = messages_for([(m["from"], "P") for m in context])
        fmt.render(plain, "A")
        assert fmt._skeletons[(*(m["from"] for m in context), "gpt")] is not None
        assert fmt.render(context, "A") == rendered_by_the_template(fmt, context, "A", "gpt")
