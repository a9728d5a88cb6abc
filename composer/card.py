"""The dataset card: OUT/README.md in the Hugging Face format, so that OUT can be pushed to
the Hub as it is and loaded with `datasets.load_dataset`.

A YAML header (licence, tags, task, size, one config per record kind with its split files)
and a body built from the report alone: the composition, what filters, dedup and
decontamination removed, the formats, and how to load it. No timestamps: two builds of one
manifest give the same card.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from composer.manifest import Filters, Manifest
from composer.records import KINDS

SPLITS = ("train", "validation", "test")
UNKNOWN = "unknown"
# The Hub's size buckets: (upper bound, label).
SIZES = [
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
    (10_000_000_000, "1B<n<10B"),
    (100_000_000_000, "10B<n<100B"),
    (1_000_000_000_000, "100B<n<1T"),
]
# The config of each untemplated file set (composer.shapes), in the card's order.
SHAPE_CONFIGS = {"sft/messages": "sft", "sft/alpaca": "alpaca", "dpo/pairs": "dpo", "text": "text"}
CONFIG_TEXT = {
    "sft": "`id`, `source`, `messages` (`role`: system, user, assistant or tool; `content`): "
    "one row per conversation, as TRL's conversational type, axolotl's `chat_template` and "
    "LLaMA-Factory's sharegpt entries read it",
    "alpaca": "`id`, `source`, `instruction`, `input` (empty), `output`, `system`: the "
    "single-turn conversations only (a multi-turn one has no Alpaca shape and is not here)",
    "dpo": "`id`, `source`, `prompt` (messages), `chosen` and `rejected` (a list of one "
    "assistant message, TRL's conversational preference type), and the same answers as one "
    "message in `chosen_message`/`rejected_message` (LLaMA-Factory's ranking entries): "
    "once per pair",
    "text": "`id`, `source` and `text` (plain text, chunked)",
    "format-sft": "`id` (the record's), `source`, `turn`, `prompt` and `completion` (TRL's "
    "prompt-completion type): one row per assistant turn, rendered in the format",
    "format-dpo": "`id` (the record's), `source`, `prompt`, `chosen` and `rejected`, "
    "rendered in the format",
}


def size_category(n: int) -> str:
    """The Hub's `size_categories` bucket for `n` rows."""
    for bound, label in SIZES:
        if n < bound:
            return label
    return "n>1T"


def source_licenses(report: dict[str, Any]) -> dict[str, str]:
    """Each source's licence: its plugin's, or `unknown` (a generic plugin reading local
    files says nothing about the data's licence)."""
    from composer.plugins import registry

    plugins = registry()
    out = {}
    for s in report["sources"]:
        plugin = plugins.get(s["plugin"])
        out[s["name"]] = (plugin.license if plugin else None) or UNKNOWN
    return out


def config_name(folder: str) -> str | None:
    """The card config of a file set: `sft`, `alpaca`, `dpo`, `text`, or `<format>-sft`."""
    if folder in SHAPE_CONFIGS:
        return SHAPE_CONFIGS[folder]
    parts = folder.split("/")
    if len(parts) == 3 and parts[0] == "formats" and parts[2] in ("sft", "dpo"):
        return f"{parts[1]}-{parts[2]}"
    return None


def data_configs(outputs: dict[str, int]) -> list[dict[str, Any]]:
    """One `configs` entry per file set written (the shapes, then each format's rendered
    rows), its splits' parquet files as `data_files`; the first is the default. An empty
    file is left out: `datasets` fails on a parquet file without rows."""
    files: dict[str, dict[str, str]] = {}
    for path, rows in outputs.items():
        folder, _, name = path.rpartition("/")
        config = config_name(folder)
        if rows and config and name.endswith(".parquet"):
            files.setdefault(config, {})[name.removesuffix(".parquet")] = path
    shapes = list(SHAPE_CONFIGS.values())
    order = sorted(files, key=lambda c: shapes.index(c) if c in shapes else len(shapes))
    configs = []
    for name in order:
        splits = sorted(files[name], key=lambda s: (SPLITS.index(s) if s in SPLITS else 9, s))
        config: dict[str, Any] = {
            "config_name": name,
            "data_files": [{"split": s, "path": files[name][s]} for s in splits],
        }
        if not configs:
            config["default"] = True
        configs.append(config)
    return configs


def license_fields(licenses: dict[str, str]) -> dict[str, str]:
    """`license` for the header: the one licence all sources share, `unknown` when none is
    known, else `other` with each licence and its sources in `license_details`."""
    known = sorted({v for v in licenses.values() if v != UNKNOWN})
    if len(known) == 1 and UNKNOWN not in licenses.values():
        return {"license": known[0]}
    if not known:
        return {"license": UNKNOWN}
    details = "; ".join(
        f"{lic}: {', '.join(n for n, v in licenses.items() if v == lic)}"
        for lic in [*known, UNKNOWN]
        if lic in licenses.values()
    )
    return {"license": "other", "license_name": "mixed", "license_details": details}


def card_data(report: dict[str, Any], manifest: Manifest | None = None) -> dict[str, Any]:
    """The card's YAML header, as a dict."""
    header = license_fields(source_licenses(report))
    languages = _languages(manifest)
    if languages:
        header["language"] = languages
    kinds = [k for k in KINDS if any(s["kind"] == k for s in report["sources"])]
    header["tags"] = ["composer", *kinds]
    header["task_categories"] = ["text-generation"]
    configs = data_configs(report["outputs"])
    rows = sum(report["outputs"][f["path"]] for c in configs for f in c["data_files"])
    header["size_categories"] = [size_category(rows)]
    header["pretty_name"] = report["name"]
    if configs:  # none when every file is empty
        header["configs"] = configs
    return header


def _languages(manifest: Manifest | None) -> list[str]:
    """The languages every source is filtered to, when each one is."""
    if manifest is None:
        return []
    found: set[str] = set()
    for source in manifest.sources:
        spec = (manifest.filters or Filters()).merged(source.filters)
        if not spec.language:
            return []
        found.update(spec.language)
    return sorted(found)


def dataset_card(
    report: dict[str, Any], manifest: Manifest | None = None, repo_id: str | None = None
) -> str:
    """OUT/README.md: the YAML header, then what the mixture is and how to load it.

    `repo_id` goes into the loading example; without it the example names a placeholder.
    """
    header = yaml.safe_dump(
        card_data(report, manifest), sort_keys=False, allow_unicode=True, width=1000
    )
    body = _body(report, manifest, repo_id or f"<user>/{report['name']}")
    return f"---\n{header}---\n\n{body}"


def write_card(folder: Path, report: dict[str, Any], manifest: Manifest | None = None) -> Path:
    """Write the card as folder/README.md (a build's output folder)."""
    path = Path(folder) / "README.md"
    path.write_text(dataset_card(report, manifest), encoding="utf-8")
    return path


# ---------------------------------------------------------------- the body


def _cell(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return [*lines, ""]


def _n(count: int, word: str) -> str:
    """`1 record`, `2 records`."""
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "-"


def _upstream(source: dict[str, Any], manifest: Manifest | None) -> str:
    """A link to a Hub upstream; a local file's path as code."""
    spec = None
    if manifest is not None:
        spec = next((s for s in manifest.sources if s.name == source["name"]), None)
    upstream = source["upstream"]
    if spec is not None and spec.path is None and upstream:
        repo, _, revision = upstream.partition("@")
        if repo.count("/") == 1 and " " not in repo:
            label = f"{repo}@{revision[:12]}" if revision else repo
            return f"[{label}](https://huggingface.co/datasets/{repo})"
    return f"`{upstream}`" if upstream else "-"


def _settings(filters: Filters | None) -> str:
    """The filter settings a manifest gave, as inline YAML."""
    if filters is None:
        return ""
    data = filters.model_dump(mode="json", exclude_unset=True, exclude_none=True)
    if not data:
        return ""
    return yaml.safe_dump(data, default_flow_style=True, sort_keys=False, width=10_000).strip()


def _body(report: dict[str, Any], manifest: Manifest | None, repo: str) -> str:
    sources, totals = report["sources"], report["totals"]
    items = sum(s["sampled"] for s in sources)
    kinds = [k for k in KINDS if any(s["kind"] == k for s in sources)]
    by_kind = {k: sum(s["sampled"] for s in sources if s["kind"] == k) for k in kinds}
    lines = [
        f"# {report['name']}",
        "",
        f"A fine-tuning mixture composed by composer (`pip install composer-mix`) from "
        f"{len(sources)} source{'s' if len(sources) != 1 else ''}: {items:,} items ("
        + ", ".join(f"{n:,} {k}" for k, n in by_kind.items())
        + f"), rendered in {len(report['formats'])} prompt format"
        f"{'s' if len(report['formats']) != 1 else ''} ({', '.join(report['formats'])}). "
        f"Seed {report['seed']}: the same manifest and seed give the same files.",
        "",
        *(f"> **Warning:** {w}\n" for w in report.get("warnings", [])),
        "## Composition",
        "",
        "Each source, where it comes from, its licence and confidence (higher wins dedup), "
        "and what it gives the final mixture: items (before rendering), their share, and "
        "rendered rows.",
        "",
    ]
    licenses = source_licenses(report)
    mixed = any(s.get("requested_share") is not None for s in sources)
    header = ["source", "plugin", "upstream", "licence", "conf.", "items", "share"]
    header += ["asked share"] if mixed else []
    header += ["rows"]
    rows = []
    for s in sources:
        row = [
            s["name"],
            s["plugin"],
            _upstream(s, manifest),
            licenses[s["name"]],
            float(s["confidence"]),
            s["sampled"],
            _share(s["sampled"], items),
        ]
        if mixed:
            asked = s.get("requested_share")
            row.append(f"{asked:.1%}" if asked is not None else "-")
        row.append(sum(n for by_format in s["rows_out"].values() for n in by_format.values()))
        rows.append(row)
    lines += _table(header, rows)
    packed = [s for s in sources if s.get("packed")]
    if packed:
        lines += [
            "Packing merged similar short items into multi-turn conversations: "
            + ", ".join(f"{s['name']} {_n(s['packed'], 'item')}" for s in packed)
            + " went into others.",
            "",
        ]
    if report["outputs"].get("records.parquet") is not None:
        lines += [
            "`records.parquet` holds the items before rendering (ShareGPT `conversations`, "
            "`chosen`/`rejected` or `text`, the upstream row in `meta`, and the `split`).",
            "",
        ]
    if details := license_fields(licenses).get("license_details"):
        lines += [
            "## Licences",
            "",
            f"The sources keep their own licences; use each part under its terms: {details}.",
            "",
        ]
    lines += _splits(report)
    lines += _filters(sources, manifest)
    lines += _dedup(report)
    lines += _decontamination(report, manifest)
    rejected = [s for s in sources if s["rejected"]]
    if rejected:
        lines += [
            "## Rejected rows",
            "",
            f"{totals['rejected']:,} upstream rows could not be used; each is in "
            "`rejected.jsonl` with its reason.",
            "",
        ]
        lines += _table(
            ["source", "reason", "rows"],
            [[s["name"], r, n] for s in rejected for r, n in s["rejected_by_reason"].items()],
        )
    lines += _formats(report, kinds)
    lines += _loading(report, repo, kinds)
    return "\n".join(lines).rstrip("\n") + "\n"


def _splits(report: dict[str, Any]) -> list[str]:
    configs = data_configs(report["outputs"])
    lines = [
        "## Configs and splits",
        "",
        "One config per kind of record, each split a parquet file (an empty one is left out "
        "of the configs):",
        "",
    ]
    rows = [
        [c["config_name"], f["split"], f"`{f['path']}`", report["outputs"][f["path"]]]
        for c in configs
        for f in c["data_files"]
    ]
    return lines + _table(["config", "split", "file", "rows"], rows)


def _filters(sources: list[dict[str, Any]], manifest: Manifest | None) -> list[str]:
    dropped = [(s["name"], f, n) for s in sources for f, n in s.get("filtered_by", {}).items()]
    settings = []
    if manifest is not None:
        if text := _settings(manifest.filters):
            settings.append(f"- every source: `{text}`")
        for source in manifest.sources:
            if text := _settings(source.filters):
                settings.append(f"- {source.name}: `{text}`")
    if not dropped and not settings and not any(s.get("filtered") for s in sources):
        return []
    total = sum(s.get("filtered", 0) for s in sources)
    lines = [
        "## Filters",
        "",
        f"Filters dropped {_n(total, 'record')} before dedup.",
        "",
    ]
    if settings:
        lines += ["Settings:", "", *settings, ""]
    if dropped:
        lines += _table(["source", "filter", "records dropped"], [list(d) for d in dropped])
    return lines


def _dedup(report: dict[str, Any]) -> list[str]:
    sources = report["sources"]
    total = sum(s["duplicates"] for s in sources)
    lines = [
        "## Deduplication",
        "",
        f"Key `{report['dedup_key']}`: {_n(total, 'duplicate record')} removed. An item found in "
        "several sources is kept from the one with the highest confidence.",
        "",
        *_lost_to(sources, "lost_to"),
    ]
    if "near_duplicates" in report:
        near = report["near_duplicates"]
        lines += [
            f"Near duplicates ({near['method']}, threshold {near['threshold']:g}): "
            f"{_n(sum(s['near_duplicates'] for s in sources), 'record')} removed, each a near "
            "copy of a record kept from a source of the same or higher confidence.",
            "",
            *_lost_to(sources, "near_lost_to"),
        ]
    return lines


def _lost_to(sources: list[dict[str, Any]], field: str) -> list[str]:
    """The records each source lost to another (or to itself), as a table; none: nothing."""
    lost = [[s["name"], winner, n] for s in sources for winner, n in s[field].items()]
    return _table(["source", "lost to", "records"], lost) if lost else []


def _decontamination(report: dict[str, Any], manifest: Manifest | None) -> list[str]:
    if "decontamination" not in report:
        return []
    sources = report["sources"]
    stats = report["decontamination"]
    names = {b for s in sources for b in s["contaminated_by"]}
    if manifest is not None and manifest.decontaminate is not None:
        names |= {b.name for b in manifest.decontaminate.benchmarks}
    benchmarks = sorted(names)
    removed = sum(s["contaminated"] for s in sources)
    report_only = (
        manifest is not None
        and manifest.decontaminate is not None
        and (manifest.decontaminate.report_only)
    )
    verb = "found (and kept: report only)" if report_only else "removed"
    lines = [
        "## Decontamination",
        "",
        f"Checked against {', '.join(benchmarks) or 'the benchmarks'} "
        f"({_n(stats.get('benchmark_items', 0), 'benchmark item')}): {_n(removed, 'record')} "
        f"{verb}. Every match is in `contamination.jsonl`.",
        "",
    ]
    rows = [
        [s["name"], *(s["contaminated_by"].get(b, 0) for b in benchmarks), s["contaminated"]]
        for s in sources
    ]
    return lines + _table(["source", *benchmarks, "records removed"], rows)


def _formats(report: dict[str, Any], kinds: list[str]) -> list[str]:
    lines = ["## Files", ""]
    configs = [c["config_name"] for c in data_configs(report["outputs"])]
    lines += [f"- `{c}`: {CONFIG_TEXT[c]}" for c in configs if c in CONFIG_TEXT]
    if any(k in kinds for k in ("sft", "dpo")):
        lines += [
            f"- `<format>-sft`, `<format>-dpo` ({', '.join(report['formats'])}): "
            f"{CONFIG_TEXT['format-sft']}; {CONFIG_TEXT['format-dpo']}. A completion leaves "
            "off the format's end token (the trainer's tokenizer adds its own) unless the "
            "format sets `keep_eos`.",
            "",
            "Beside them: `dataset_info.json` for LLaMA-Factory (`dataset_dir:` this folder; "
            "datasets `sft_train`, `alpaca_train`, `dpo_train`, and `_validation`), and "
            "`axolotl/sft.yaml`, `axolotl/alpaca.yaml`, `axolotl/dpo.yaml` (`datasets:` "
            "snippets, paths relative to this folder).",
        ]
    by_format: dict[str, dict[str, int]] = {}
    for key, n in report["totals"].get("rows_out", {}).items():
        split, _, fmt = key.partition("/")
        by_format.setdefault(fmt, {})[split] = n
    order = [*report["formats"], "text"]
    by_format = dict(
        sorted(by_format.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 99)
    )
    if by_format:
        splits = sorted(
            {s for counts in by_format.values() for s in counts},
            key=lambda s: (SPLITS.index(s) if s in SPLITS else 9, s),
        )
        lines += ["", "Rendered rows per format:", ""]
        lines += _table(
            ["format", *splits],
            [[fmt, *(counts.get(s, 0) for s in splits)] for fmt, counts in by_format.items()],
        )
    else:
        lines.append("")
    return lines


def _loading(report: dict[str, Any], repo: str, kinds: list[str]) -> list[str]:
    fmt = "chatml" if "chatml" in report["formats"] else report["formats"][0]
    code = ["from datasets import load_dataset", ""]
    code.append(f'repo = "{repo}"  # this dataset\'s id on the Hub, or the path of this folder')
    if "sft" in kinds:
        code += [
            "# TRL SFTTrainer: conversations (the trainer applies the model's chat template)",
            'sft = load_dataset(repo, "sft")  # messages',
            "# or one format's rendered rows (prompt, completion)",
            f'{fmt} = load_dataset(repo, "{fmt}-sft")',
        ]
    if "dpo" in kinds:
        code += [
            "# TRL DPOTrainer: prompt, chosen, rejected (conversational), once per pair",
            'dpo = load_dataset(repo, "dpo")',
        ]
    if "text" in kinds:
        code.append('text = load_dataset(repo, "text")')
    code.append('records = load_dataset(repo, data_files="records.parquet")')
    trl = []
    if "sft" in kinds:
        trl += [
            "from trl import SFTConfig, SFTTrainer",
            "",
            'trainer = SFTTrainer(model=model, train_dataset=sft["train"], '
            'eval_dataset=sft.get("validation"), args=SFTConfig(output_dir="sft-out"))',
        ]
    if "dpo" in kinds:
        trl += [
            *([""] if trl else []),
            "from trl import DPOConfig, DPOTrainer",
            "",
            'trainer = DPOTrainer(model=model, train_dataset=dpo["train"], '
            'eval_dataset=dpo.get("validation"), args=DPOConfig(output_dir="dpo-out"))',
        ]
    lines = ["## Load it", "", "```python", *code, "```", ""]
    if trl:
        lines += [
            "Train with TRL (`model`: a model name or a loaded model with a chat template):",
            "",
            "```python",
            *trl,
            "```",
            "",
        ]
    return lines
