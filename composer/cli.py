"""The `composer` command: a thin click layer over the library.

Exit codes: 0 ok, 2 user error (manifest, input data, template), 1 internal error.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path

import click

from composer import __version__
from composer.errors import UserError


def user_errors(command: Callable) -> Callable:
    """Turn a UserError into `Error: ...` on stderr and exit code 2, without a traceback."""

    @wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except UserError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(2)

    return wrapper


manifest_argument = click.argument("manifest", type=click.Path(dir_okay=False))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="composer")
def cli() -> None:
    """Compose SFT and DPO fine-tuning mixtures from one YAML manifest.

    \b
    composer validate manifests/demo.yaml
    composer build manifests/demo.yaml -o out/demo
    composer preview manifests/demo.yaml --rows 2
    composer sources
    """
    clash = name_clash()
    if clash:
        click.echo(f"Warning: {clash}", err=True)


def name_clash() -> str | None:
    """MosaicML's training library installs the same `composer` command and import name:
    with both in one environment, one overwrites the other's files."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        theirs = version("mosaicml")
    except PackageNotFoundError:
        return None
    return (
        f"MosaicML's training library (mosaicml {theirs}) is installed in this environment; "
        "it also uses the `composer` command and import name, so one may overwrite the "
        "other. Keep them in separate virtual environments (see the README)."
    )


@cli.command()
@manifest_argument
@click.option(
    "-o",
    "--output",
    "output_dir",
    type=click.Path(file_okay=False),
    help="Output folder (default: the manifest's output.dir).",
)
@click.option("--seed", type=int, help="Override the manifest's seed.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or summary.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print a machine-readable summary (output files, funnel totals) on stdout.",
)
@click.option(
    "--locked",
    type=click.Path(dir_okay=False),
    help="A composer.lock the inputs must match (exit 2 naming each change).",
)
@click.option(
    "--no-cache",
    is_flag=True,
    help="Compute every stage; read and store nothing in the cache (`composer cache info`).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Worker processes (default: the manifest's `workers`, else one a core).",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    help="What runs the stages' tasks: this machine (local) or a Ray cluster (ray, with "
    "the ray extra). Default: the manifest's `engine`, else local. Same output either way.",
)
@click.option(
    "--address",
    metavar="ADDR",
    help="The Ray cluster for --engine ray: its head's HOST:PORT (default: $RAY_ADDRESS, "
    "else the cluster `ray start` runs on this machine, else a Ray started for the build).",
)
@user_errors
def build(
    manifest: str,
    output_dir: str | None,
    seed: int | None,
    quiet: bool,
    as_json: bool,
    locked: str | None,
    no_cache: bool,
    workers: int | None,
    engine: str | None,
    address: str | None,
) -> None:
    """Build the mixture MANIFEST describes.

    \b
    composer build manifests/demo.yaml
    composer build my.yaml -o out/my --seed 7
    composer build my.yaml --locked out/my/composer.lock
    composer build my.yaml --json -q | jq .totals
    composer build my.yaml --engine ray --address 10.0.0.1:6379
    """
    from composer.build import build as run_build

    progress = watching(quiet)
    started = time.perf_counter()
    result = run_build(
        manifest,
        output_dir=output_dir,
        seed=seed,
        progress=progress,
        locked=locked,
        cache=not no_cache,
        workers=workers,
        engine=engine,
        address=address,
    )
    if as_json:
        click.echo(json.dumps(build_summary(result), ensure_ascii=False, indent=2))
    elif not quiet:
        totals = result.totals
        near = totals.get("near_duplicates", 0)
        click.echo(
            f"Built {result.report['name']} in {time.perf_counter() - started:.1f}s: "
            f"{totals['rows_read']:,} rows read, {totals['rejected']:,} rejected, "
            f"{totals['duplicates']:,} duplicates, "
            + (f"{near:,} near duplicates, " if near else "")
            + f"{totals['train']:,} train + "
            f"{totals['validation']:,} validation items -> {result.output_dir}",
            err=True,
        )
        for path, rows in result.report["outputs"].items():
            click.echo(f"  {path}: {rows:,} rows", err=True)
        if result.cache_use:
            click.echo(f"  cache: {result.cache_use}", err=True)
        if result.timings:
            click.echo(f"  time: {time_line(result)}", err=True)
            click.echo(f"  slowest: {slowest_line(result)}", err=True)
    for warning in result.report["warnings"]:
        click.echo(f"Warning: {warning}", err=True)


def time_line(result) -> str:
    """Each stage's wall seconds, in the order they ran."""
    return ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items())


def slowest_line(result, count: int = 3) -> str:
    """The stages that took longest, with the rows a second each took in, and the engine."""
    stages = result.stages
    parts = []
    for name in result.slowest(count):
        rate = stages[name]["rows_per_s"]
        per_s = f", {rate:,} rows/s" if rate is not None else ""
        parts.append(
            f"{name} {stages[name]['seconds']:.1f}s ({stages[name]['rows']:,} rows{per_s})"
        )
    return "; ".join(parts) + (f" [{result.engine} engine]" if result.engine else "")


def watching(quiet: bool = False) -> bool:
    """Progress bars only for a person watching: never in a log file or a pipe (and then
    none from `datasets` either)."""
    progress = not quiet and sys.stderr.isatty()
    if not progress:
        import datasets

        datasets.disable_progress_bars()
    return progress


def build_summary(result) -> dict:
    """What `build --json` prints: where the output is, its files and the funnel."""
    from composer.report import STAGES

    report = result.report
    return {
        "name": report["name"],
        "output_dir": str(result.output_dir),
        "files": {
            path: {"path": str(result.output_dir / path), "rows": rows}
            for path, rows in report["outputs"].items()
        },
        "totals": report["totals"],
        "sources": {
            s["name"]: {k: s[k] for k in (*STAGES, "linked", "left_out", "packed")}
            for s in report["sources"]
        },
        "warnings": report["warnings"],
        "cache": result.cache_use,
        # Where the time went (empty when the output came from the cache): seconds, rows
        # in and rows a second per stage, in the order they ran. Not in the output folder.
        "stages": result.stages,
        "slowest": result.slowest(),
        "engine": result.engine,
    }


@cli.command()
@manifest_argument
@click.option("--json", "as_json", is_flag=True, help="Print the resolved manifest as JSON.")
@user_errors
def validate(manifest: str, as_json: bool) -> None:
    """Check MANIFEST without reading any data."""
    from composer.manifest import load_manifest

    loaded = load_manifest(manifest)
    if as_json:
        click.echo(json.dumps(loaded.model_dump(mode="json", by_alias=True), indent=2))
    else:
        click.echo(f"{manifest}: ok ({len(loaded.sources)} sources, {len(loaded.formats)} formats)")
    from composer.build import gated_notice
    from composer.plugins import registry

    for source in loaded.sources:
        plugin = registry()[source.plugin_name]
        if plugin.gated and not source.path:
            click.echo(gated_notice(source.name, source.hub or plugin.hub), err=True)


@cli.group()
def cache() -> None:
    """What the stage cache holds, and emptying it.

    \b
    composer cache info
    composer cache prune --days 30  # entries no build has used for 30 days
    composer cache clear            # everything, the log too
    composer cache clear output     # only these parts
    """


@cache.command("info")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def cache_info(as_json: bool) -> None:
    """Entries and size of each part of the cache, and how often each was reused."""
    from composer.cache import StageCache

    info = StageCache().info()
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"Cache: {info['path']}")
    rows = [["part", "entries", "size", "hits", "misses", "stored", "corrupt"]]
    for part, f in info["folders"].items():
        entries = "" if f["entries"] is None else f"{f['entries']:,}"
        counts = [f"{f.get(e, 0):,}" if f["entries"] is not None else "" for e in EVENTS]
        rows.append([part, entries, _size(f["bytes"]), *counts])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo(
            "  ".join(
                v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths))
            )
        )
    click.echo("(hits, misses, stored, corrupt: counted in log.jsonl since it began)")


EVENTS = ("hit", "miss", "store", "corrupt")


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


@cache.command("prune")
@click.option(
    "--days",
    type=click.FloatRange(min=0),
    default=30,
    show_default=True,
    help="Remove entries no build has used for this many days.",
)
def cache_prune(days: float) -> None:
    """Remove the stage entries no build has used lately (embeddings stay)."""
    from composer.cache import StageCache

    stage_cache = StageCache()
    removed, size = stage_cache.prune(days)
    click.echo(
        f"Pruned {stage_cache.root}: {removed:,} entr{'y' if removed == 1 else 'ies'} "
        f"unused for {days:g} days ({_size(size)})",
        err=True,
    )


@cache.command("clear")
@click.argument("parts", nargs=-1)
@user_errors
def cache_clear(parts: tuple[str, ...]) -> None:
    """Remove PARTS of the cache (source, near, benchmarks, decontaminate, render, output,
    embeddings, static, onnx), or all of it and its log."""
    from composer.cache import StageCache

    stage_cache = StageCache()
    removed = stage_cache.clear(parts)
    what = ", ".join(removed) if removed else "nothing to remove"
    click.echo(f"Cleared {stage_cache.root}: {what}", err=True)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--kind", type=click.Choice(["sft", "dpo", "text"]), help="Only this kind.")
@user_errors
def sources(as_json: bool, kind: str | None) -> None:
    """List the source plugins: kind, default confidence, upstream, licence, flags."""
    from composer.plugins import registry

    plugins = [p for p in registry().values() if kind is None or p.kind == kind]
    rows = [
        {
            "name": p.name,
            "kind": p.kind,
            "confidence": p.confidence,
            "upstream": p.hub,
            "config": p.config,
            "revision": p.revision,
            "data_files": p.data_files,
            "license": p.license,
            "gated": p.gated,
            "opt_in": p.opt_in,
            "origin": p.origin,
            "options": sorted(p.options),
            "description": p.description,
        }
        for p in plugins
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = [("NAME", "KIND", "CONF", "UPSTREAM", "REVISION", "LICENSE", "FLAGS", "ORIGIN")]
    for r, p in zip(rows, plugins):
        upstream = r["upstream"] or "-"
        if upstream in ("json", "csv", "parquet", "text") and isinstance(p.data_files, str):
            upstream = p.data_files  # a file that `datasets` reads with a generic builder
        if r["config"]:
            upstream += f" ({r['config']})"
        revision = r["revision"] or "-"
        if re.fullmatch(r"[0-9a-f]{40}", revision):
            revision = revision[:12]
        flags = ",".join(f for f in ("gated", "opt_in") if r[f]) or "-"
        table.append(
            (
                r["name"],
                r["kind"],
                f"{r['confidence']:g}",
                upstream,
                revision,
                r["license"] or "-",
                flags,
                r["origin"],
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


@cli.command("new-source")
@click.argument("name")
@click.option("--kind", type=click.Choice(["sft", "dpo", "text"]), default="sft", show_default=True)
@click.option(
    "--package",
    type=click.Path(file_okay=False),
    help="Write an installable plugin package in this folder (entry point composer.sources).",
)
@user_errors
def new_source(name: str, kind: str, package: str | None) -> None:
    """Scaffold a source plugin NAME and its test, ready to edit.

    In a composer checkout: sources/NAME.py and tests/test_source_NAME.py. With --package:
    a package of its own that `pip install` registers with composer.
    """
    from composer.scaffold import new_source as scaffold

    for path in scaffold(name, kind, Path.cwd(), Path(package) if package else None):
        click.echo(f"wrote {path}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def benchmarks(as_json: bool) -> None:
    """List the built-in benchmarks to decontaminate against."""
    from dataclasses import asdict

    from composer.benchmarks import BUILTIN

    if as_json:
        click.echo(json.dumps([asdict(b) for b in BUILTIN.values()], indent=2))
        return
    for b in BUILTIN.values():
        upstream = f"{b.hub}" + (f" ({b.config})" if b.config else "") + f" {b.split}"
        click.echo(f"{b.name:<14} {upstream:<48} fields: {', '.join(b.fields)}")


@cli.command()
@manifest_argument
@click.option(
    "-o", "--audit", type=click.Path(dir_okay=False), help="Write every match here as JSON lines."
)
@click.option("--no-cache", is_flag=True, help="Read and store nothing in the cache.")
@user_errors
def decontaminate(manifest: str, audit: str | None, no_cache: bool) -> None:
    """Show what decontamination would remove (and the scores); remove nothing.

    \b
    composer decontaminate my.yaml
    composer decontaminate my.yaml -o matches.jsonl
    """
    from collections import Counter

    from composer.build import scan_contamination
    from composer.output import write_jsonl

    found = scan_contamination(manifest, progress=watching(), cache=not no_cache)
    benchmarks = sorted({b for counts in found.by_benchmark.values() for b in counts})
    click.echo("Records that would be removed, by source (and benchmark):")
    for source, counts in found.by_benchmark.items():
        cells = ", ".join(f"{b} {counts.get(b, 0):,}" for b in benchmarks)
        click.echo(f"  {source:<24} {int(found.removed[source].sum()):>8,}  {cells}")
    detectors = Counter(m["detector"] for m in found.audit)
    summary = ", ".join(f"{d} {n:,}" for d, n in sorted(detectors.items())) or "none"
    click.echo(f"Matches: {len(found.audit):,} ({summary})")
    click.echo(
        "Transformer cosine of the re-scored pairs, by lexical evidence; a match needs "
        "numbers >= 0.5, code >= 0.5, copy >= 0.3, words >= 0.7, none >= 0.92:"
    )
    for evidence in ("numbers", "code", "copy", "words", "none"):
        scores = [s for e, s in found.scores if e == evidence]
        counts = Counter(min(max(int(s * 10), 0), 9) for s in scores)
        bars = "  ".join(f"{b / 10:.1f}+ {counts.get(b, 0):,}" for b in range(3, 10))
        click.echo(f"  {evidence:<8} {len(scores):>8,} pairs   {bars}")
    if audit:
        write_jsonl(found.audit, Path(audit))
        click.echo(f"Wrote {len(found.audit):,} matches to {audit}")


@cli.command("dedup")
@manifest_argument
@user_errors
def dedup_preview(manifest: str) -> None:
    """Show what near dedup would remove (and the similarities); remove nothing.

    Uses the manifest's `dedup.near` (MinHash, threshold 0.7 when it has none; the
    embedding method's default is a cosine of 0.95), so a threshold can be picked before a
    build removes anything.

    \b
    composer dedup my.yaml
    """
    import numpy as np

    from composer.build import scan_near_duplicates

    found = scan_near_duplicates(manifest, progress=True)
    click.echo("Records that would be removed as near-duplicates, by source (and winner):")
    for source, gone in found.removed.items():
        winners = ", ".join(f"{w} {n:,}" for w, n in sorted(found.lost_to[source].items()))
        click.echo(f"  {source:<24} {int(gone.sum()):>8,}  {winners}")
    sims = found.similarities
    counts = np.histogram(np.clip(sims, 0, 1), bins=10, range=(0, 1))[0]
    bars = "  ".join(f"{b / 10:.1f}+ {int(n):,}" for b, n in enumerate(counts) if b >= 3)
    click.echo(f"Similarity of the {len(sims):,} candidate pairs:  {bars}")
    for cluster in found.clusters[:3]:
        click.echo(f"- kept ({cluster['winner']['source']}): {cluster['winner']['text'][:100]!r}")
        for loser in cluster["losers"]:
            click.echo(
                f"    {loser['similarity']:.2f} ({loser['source']}): {loser['text'][:100]!r}"
            )


@cli.command()
@manifest_argument
@click.option(
    "-n",
    "--rows",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Items per source.",
)
@click.option("-f", "--format", "only", multiple=True, help="Only these formats.")
@user_errors
def preview(manifest: str, rows: int, only: tuple[str, ...]) -> None:
    """Show a few rendered rows per source and format, without writing anything."""
    from composer.preview import preview_rows

    for source, fmt, row in preview_rows(manifest, rows, only):
        click.secho(f"=== {source} · {fmt} · {row.get('split', '')}", bold=True)
        for key in ("prompt", "completion", "chosen", "rejected", "text"):
            if key in row:
                click.secho(f"--- {key}", fg="cyan")
                click.echo(row[key])


@cli.command()
@click.argument("folder", type=click.Path(file_okay=False))
@click.argument("repo_id")
@click.option("--private", is_flag=True, help="Create the repository private.")
@click.option(
    "--token",
    help="A Hugging Face token with write access (default: HF_TOKEN or `hf auth login`).",
)
@click.option("--revision", help="Push to this branch (created when missing).")
@user_errors
def push(folder: str, repo_id: str, private: bool, token: str | None, revision: str | None) -> None:
    """Upload a build's output FOLDER to the Hub as the dataset REPO_ID.

    The folder goes up as it is: its README.md is the dataset card, whose configs
    `datasets.load_dataset(REPO_ID, "sft")` reads.

    \b
    composer push out/demo me/demo-mix
    composer push out/demo me/demo-mix --private --revision v2
    """
    from composer.hub_push import push as run_push

    click.echo(run_push(Path(folder), repo_id, private=private, token=token, revision=revision))


@cli.command()
@click.argument("path", type=click.Path())
@click.argument("column")
@click.option("-s", "--source", help="Only this source's rows; with a manifest, required.")
@click.option(
    "--bins", default=20, show_default=True, type=click.IntRange(min=1), help="Histogram bins."
)
@click.option(
    "--width", default=40, show_default=True, type=click.IntRange(min=1), help="Bar width."
)
@click.option("--log", is_flag=True, help="Log-spaced bins (for long-tailed lengths).")
@click.option("--json", "as_json", is_flag=True, help="The numbers as JSON, no histogram.")
@user_errors
def stats(
    path: str, column: str, source: str | None, bins: int, width: int, log: bool, as_json: bool
) -> None:
    """Distribution of COLUMN in PATH, to choose filter thresholds.

    PATH is a data file (an output file, records.parquet, an input file) or a manifest
    with --source. COLUMN is a column (text: its length in characters; a list: its items)
    or a scorer on records: length, words, lexical_diversity, readability, meta.FIELD.

    \b
    composer stats out/demo/formats/chatml/sft/train.parquet completion --log
    composer stats out/demo/records.parquet words --source alpaca
    composer stats manifests/demo.yaml readability --source sharegpt
    """
    from composer.stats import column_stats, describe, load_values

    values = load_values(path, column, source)
    if as_json:
        click.echo(json.dumps({"column": column, **column_stats(values)}, indent=2))
    else:
        click.echo(describe(values, column, bins, width, log))
