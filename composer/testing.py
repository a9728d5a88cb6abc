"""Run a source plugin on a few rows, the way `composer build` does: for plugin tests.

    from composer.testing import convert_rows

    records = convert_rows("my_source", [{"question": "2+2?", "answer": "4"}]).records

The rows are written to a real file in the upstream schema (jsonl or parquet), read back
by the build's readers, converted with the manifest's seed and options, and validated;
rows the plugin or validation rejects are in `.rejections`. A plugin may be named (it is
looked up in the registry, entry points included) or given as its module, before it is
installed.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from composer.convert import Converted, convert_source
from composer.manifest import Manifest
from composer.plugins import Plugin, get_plugin


def write_rows(path: Path, rows: list[dict]) -> None:
    """`rows` as a parquet file (for a .parquet path) or JSON lines."""
    table = pa.Table.from_pylist(rows)
    if path.suffix == ".parquet":
        pq.write_table(table, path)
    else:
        import json

        path.write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
        )


def convert_rows(
    plugin: str | ModuleType,
    rows: list[dict],
    *,
    folder: str | Path | None = None,
    suffix: str = ".jsonl",
    inputs: dict[str, list[dict]] | None = None,
    seed: int = 42,
    **source: Any,
) -> Converted:
    """Convert `rows` with `plugin`; `source` holds manifest source keys (options, columns...).

    Files go to `folder` (a test's tmp_path), or to a temporary folder removed afterwards.
    """
    if folder is None:
        with tempfile.TemporaryDirectory() as tmp:
            return convert_rows(
                plugin, rows, folder=tmp, suffix=suffix, inputs=inputs, seed=seed, **source
            )
    folder = Path(folder)
    loaded = (
        Plugin.from_module(plugin, "under test")
        if isinstance(plugin, ModuleType)
        else get_plugin(plugin)
    )

    def write(name: str, data: list[dict]) -> str:
        path = folder / f"{name}{suffix}"
        write_rows(path, data)
        return path.name

    entry = {"name": loaded.name, "path": write(loaded.name, rows), **source}
    if inputs:
        entry["inputs"] = {
            name: write(f"{loaded.name}-{name}", data) for name, data in inputs.items()
        }
    manifest = Manifest.model_validate(
        {"name": "test", "seed": seed, "sources": [entry], "formats": ["chatml"]}
    )
    manifest.base_dir = folder
    if loaded.opt_in and not manifest.sources[0].opt_in:
        raise ValueError(f"plugin {loaded.name!r} is opt-in: pass opt_in=True")
    problems = loaded.option_problems(manifest.sources[0].options)
    if problems:
        raise ValueError("; ".join(f"options.{key}: {message}" for key, message in problems))
    return convert_source(manifest, 0, manifest.sources[0], loaded)
