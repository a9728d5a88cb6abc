"""`composer new-source`: a working plugin and its test, to edit rather than to start from.

In a composer checkout the plugin goes to `sources/NAME.py` and its test to
`tests/test_source_NAME.py`; with `--package DIR` it is a package of its own, registered
through the `composer.sources` entry point, that `pip install DIR` makes visible to composer.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path

from composer.errors import UserError

PLUGIN = {
    "sft": '''"""{name}: one line on what the dataset is (shown by `composer sources`).

Each upstream row (instruction, response, optional system) becomes a two-turn conversation.
"""

from composer.turns import turn, with_system

name = "{name}"
kind = "sft"
hub = None  # "owner/dataset" on the Hugging Face Hub: the default upstream
revision = None  # a commit sha, for a reproducible build
license = "unknown"
confidence = 1  # higher wins when two sources hold the same instruction
columns = ("instruction", "response")
optional_columns = ("system",)


def convert(batch: dict[str, list]) -> dict[str, list]:
    systems = batch.get("system") or [None] * len(batch["instruction"])
    return {{
        "conversations": [
            with_system(system, [turn("human", instruction), turn("gpt", response)])
            for instruction, response, system in zip(
                batch["instruction"], batch["response"], systems
            )
        ]
    }}
''',
    "dpo": '''"""{name}: one line on what the dataset is (shown by `composer sources`).

Each upstream row (prompt, chosen, rejected) becomes a preference pair.
"""

from composer.turns import turn

name = "{name}"
kind = "dpo"
hub = None  # "owner/dataset" on the Hugging Face Hub: the default upstream
revision = None  # a commit sha, for a reproducible build
license = "unknown"
confidence = 1
columns = ("prompt", "chosen", "rejected")


def convert(batch: dict[str, list]) -> dict[str, list]:
    return {{
        "conversations": [[turn("human", prompt)] for prompt in batch["prompt"]],
        "chosen": batch["chosen"],
        "rejected": batch["rejected"],
    }}
''',
    "text": '''"""{name}: one line on what the dataset is (shown by `composer sources`).

Each upstream row's `text` is cut into chunks of at most `max_chunk_size` characters.
"""

from composer.sources.text import chunk

name = "{name}"
kind = "text"
hub = None  # "owner/dataset" on the Hugging Face Hub: the default upstream
revision = None  # a commit sha, for a reproducible build
license = "unknown"
confidence = 1
columns = ("text",)


def convert(batch: dict[str, list], max_chunk_size: int = 2000) -> dict[str, list]:
    out = {{"text": [], "row": []}}
    for row, text in enumerate(batch["text"]):
        for piece in chunk(text, max_chunk_size) if isinstance(text, str) else [text]:
            out["text"].append(piece)
            out["row"].append(row)
    return out
''',
}

ROWS = {
    "sft": (
        '{"instruction": "Name a prime number.", "response": "7"}',
        '{"instruction": "Say hi.", "response": "Hi!", "system": "Be brief."}',
        '{"instruction": "No answer here.", "response": None}',
    ),
    "dpo": (
        '{"prompt": "Name a prime number.", "chosen": "7", "rejected": "8"}',
        '{"prompt": "Say hi.", "chosen": "Hi!", "rejected": "No."}',
        '{"prompt": "No answer here.", "chosen": None, "rejected": "x"}',
    ),
    "text": (
        '{"text": "A short story."}',
        '{"text": "Another story, a little longer."}',
        '{"text": None}',
    ),
}

CHECKS = {
    "sft": """    assert converted.records.column("conversations").to_pylist() == [
        [{{"from": "human", "value": "Name a prime number."}}, {{"from": "gpt", "value": "7"}}],
        [
            {{"from": "system", "value": "Be brief."}},
            {{"from": "human", "value": "Say hi."}},
            {{"from": "gpt", "value": "Hi!"}},
        ],
    ]""",
    "dpo": """    assert converted.records.column("chosen").to_pylist() == ["7", "Hi!"]
    assert converted.records.column("rejected").to_pylist() == ["8", "No."]
    assert converted.records.column("conversations").to_pylist()[0] == [
        {{"from": "human", "value": "Name a prime number."}}
    ]""",
    "text": """    assert converted.records.column("text").to_pylist() == [
        "A short story.",
        "Another story, a little longer.",
    ]""",
}

TEST = '''"""The {name} source plugin on rows in the upstream schema, converted as a build does."""

from composer.testing import convert_rows

ROWS = [
    {rows},
]


def test_converts_upstream_rows(tmp_path):
    converted = convert_rows("{name}", ROWS[:2], folder=tmp_path)
{checks}
    assert converted.rejections == []


def test_rejects_an_incomplete_row_and_keeps_the_others(tmp_path):
    converted = convert_rows("{name}", ROWS, folder=tmp_path)
    assert converted.records.num_rows == 2
    assert [r.where for r in converted.rejections] == ["{name}.jsonl:line 3"]
'''

PYPROJECT = """[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.1.0"
description = "The {name} source plugin for composer"
requires-python = ">=3.10"
dependencies = ["composer-mix"]

[project.entry-points."composer.sources"]
{name} = "{module}"

[tool.setuptools]
py-modules = ["{module}"]
"""

README = """# {dist}

The `{name}` source plugin for [composer](https://github.com/). Install it beside composer:

    pip install -e .
    composer sources          # lists {name}
    python -m pytest tests

and name it in a manifest: `sources: [{{name: {name}, path: data.jsonl}}]`.
"""


def check_name(name: str) -> None:
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or keyword.iskeyword(name):
        raise UserError(
            f"invalid source name {name!r}: use lower-case letters, digits and underscores, "
            "starting with a letter (it is a Python module name)"
        )


def _write_new(files: dict[Path, str]) -> list[Path]:
    """Write every file, or none: refuse when any exists already."""
    existing = [str(p) for p in files if p.exists()]
    if existing:
        raise UserError(f"{existing[0]} exists already; not overwriting it")
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(files)


def test_text(name: str, kind: str) -> str:
    rows = ",\n    ".join(ROWS[kind])
    return TEST.format(name=name, rows=rows, checks=CHECKS[kind].format())


def new_source(name: str, kind: str, root: Path, package: Path | None = None) -> list[Path]:
    """Write the plugin and its test; return the files written."""
    from composer.plugins import registry

    check_name(name)
    if name in registry():
        raise UserError(
            f"a source plugin named {name!r} exists already ({registry()[name].origin})"
        )
    plugin = PLUGIN[kind].format(name=name)
    if package is None:
        if not (root / "sources").is_dir():
            raise UserError(
                f"{root} has no sources/ folder: run this in a composer checkout, "
                "or give --package DIR for a plugin package of its own"
            )
        return _write_new(
            {
                root / "sources" / f"{name}.py": plugin,
                root / "tests" / f"test_source_{name}.py": test_text(name, kind),
            }
        )
    module, dist = f"composer_source_{name}", f"composer-source-{name.replace('_', '-')}"
    return _write_new(
        {
            package / "pyproject.toml": PYPROJECT.format(name=name, module=module, dist=dist),
            package / f"{module}.py": plugin,
            package / "tests" / f"test_{name}.py": test_text(name, kind),
            package / "README.md": README.format(name=name, dist=dist),
        }
    )
