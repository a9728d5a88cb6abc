"""A look at what a manifest renders: the first items of each source in each format."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pyarrow as pa

from composer.build import format_plans, load_formats, load_sources, prepare
from composer.errors import UserError, did_you_mean
from composer.render import render_source


def preview_rows(
    manifest_path: str | os.PathLike, items: int = 1, only: tuple[str, ...] = ()
) -> Iterator[tuple[str, str, dict]]:
    """(source, format, row) for the first `items` records of every source."""
    manifest = prepare(manifest_path)
    formats = load_formats(manifest)
    unknown = [name for name in only if name not in {f.name for f in formats}]
    if unknown:
        raise UserError(
            f"format {unknown[0]!r} is not in this manifest's formats"
            f"{did_you_mean(unknown[0], [f.name for f in formats])}; "
            f"formats: {', '.join(f.name for f in formats)}"
        )
    for i, converted in enumerate(load_sources(manifest)):
        head = converted.records.slice(0, items)
        head = head.append_column("split", pa.array(["preview"] * head.num_rows))
        plans = [p for p in format_plans(manifest, i, formats) if not only or p.format.name in only]
        rendered = render_source(
            head, converted.plugin.kind, plans, manifest.render.turns == "last", manifest.seed
        )
        for r in range(len(rendered["id"])):
            row = {key: values[r] for key, values in rendered.items()}
            yield converted.source.name, row.get("format", "text"), row
