"""The manifest: YAML, validated up front into typed models.

Every problem is reported at once as `file:line: key.path: message`, with a did-you-mean for
unknown keys and names, before any data is read.
"""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from composer.errors import ManifestError, TemplateError, UserError, did_you_mean

FORMAT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
DEFAULT_FORMATS = ("alpaca", "vicuna", "chatml", "llama2")


def names_to_mappings(value: Any) -> Any:
    """`[alpaca, {name: x, ...}]` -> `[{name: alpaca}, {name: x, ...}]`: a name is shorthand."""
    if isinstance(value, list):
        return [{"name": v} if isinstance(v, str) else v for v in value]
    return value


class Strict(BaseModel):
    # No NaN or infinity in any number: each is a manifest error with its line.
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


# Bounds on what a manifest may ask for: an upsample past this factor is surely a typo (a
# billion-fold upsample would try to build a billion rows), and a YAML document may expand
# (through aliases) to this many values, this deep.
MAX_FACTOR = 1000
MAX_YAML_VALUES = 100_000
MAX_YAML_DEPTH = 50

# Keys other tools use, with composer's own: an unknown-key error names the one to use.
OTHER_TOOLS_KEYS = {
    "fraction": "sample (a fraction such as `sample: 0.5`)",
    "val_ratio": "split.validation (`split: {validation: 0.05}`)",
    "max_val_set": "split.validation as a row count, or a source's max_validation",
    "max_chunk_size": "options.max_chunk_size (the text plugin's option)",
}


class SystemPrompt(Strict):
    """What system prompt an item gets: its own (keep), always the default/pool (replace), none."""

    mode: Literal["keep", "replace", "drop"] = "keep"
    default: str | None = None
    pool: str | list[str] | None = None
    probability: float = Field(1.0, ge=0, le=1)


class Sample(Strict):
    """How many rows to take from a source after dedup: a count, a fraction or a factor."""

    count: int | None = Field(None, ge=0)
    fraction: float | None = Field(None, ge=0, le=1)
    factor: float | None = Field(None, ge=0, le=MAX_FACTOR)

    @model_validator(mode="after")
    def _one(self) -> Sample:
        if sum(v is not None for v in (self.count, self.fraction, self.factor)) != 1:
            raise ValueError("give exactly one of count, fraction, factor")
        return self


def parse_sample(value: Any) -> Any:
    """`0.5` is a fraction, `1000` a count, `2.5` or `"3x"` an upsampling factor."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number or {{count|fraction|factor: n}}, got {value!r}")
    if isinstance(value, int):
        return {"count": value}
    if isinstance(value, float):
        return {"fraction": value} if value <= 1 else {"factor": value}
    if isinstance(value, str) and value.endswith("x"):
        try:
            return {"factor": float(value[:-1])}
        except ValueError:
            pass
    if isinstance(value, str):
        raise ValueError(f"expected a number, 'Nx' or {{count|fraction|factor: n}}, got {value!r}")
    return value


class Bounds(Strict):
    """A range a measure must fall in; either end may be open."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _some(self) -> Bounds:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is above max ({self.max:g})")
        return self


class ScoreFilter(Strict):
    """Keep rows by a score: a built-in scorer (`length`, `words`, `lexical_diversity`,
    `readability`), an upstream value kept in the record's meta (`meta.correctness`), or a
    function (`package.module:function`, given a batch of records, returning numbers)."""

    scorer: str
    min: float | None = None
    max: float | None = None
    top: float | None = Field(None, gt=0, le=1)  # keep this share of the highest scores
    by: Literal["quantile", "range"] = "quantile"  # top share of the rows, or of the range

    @model_validator(mode="after")
    def _some(self) -> ScoreFilter:
        if self.min is None and self.max is None and self.top is None:
            raise ValueError("give min, max or top")
        return self


class MaxTokens(Strict):
    """Drop rows longer than `max` tokens of a local tokenizer (a tokenizer.json file, a
    model folder, or a model name already in the Hugging Face cache)."""

    tokenizer: str
    max: int = Field(gt=0)


class Filters(Strict):
    """Row filters, per source and for the whole manifest, each counted in the funnel.

    The prompt is the human turns (a DPO pair's context), the response the assistant turns
    (a pair's chosen answer; a text record's text)."""

    response_chars: Bounds | None = None
    response_words: Bounds | None = None
    prompt_chars: Bounds | None = None
    prompt_words: Bounds | None = None
    ratio: Bounds | None = None  # response characters / prompt characters
    system_prompt: Literal["any", "with", "without"] = "any"  # rows with or without one
    refusals: bool = False  # drop rows whose answer refuses or moralises
    as_an_ai: bool = False  # drop rows with "as an AI language model" boilerplate
    language: list[str] | None = None  # keep responses in these languages (ISO 639-1)
    max_tokens: MaxTokens | None = None
    score: list[ScoreFilter] = []

    @field_validator("score", mode="before")
    @classmethod
    def _one_or_more(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value

    def merged(self, other: Filters | None) -> Filters:
        """These filters with `other`'s settings (a source's own) taking precedence."""
        if other is None:
            return self
        return self.model_copy(update={k: getattr(other, k) for k in other.model_fields_set})


class Packing(Strict):
    """Merge similar short single-turn items into multi-turn conversations (orca-chat)."""

    max_chars: int = Field(8000, gt=0)  # budget of a packed conversation
    # cosine between neighbours' prompts (static model): paraphrases score 0.75 and more,
    # unrelated short questions up to about 0.5
    min_similarity: float = Field(0.65, ge=-1, le=1)
    max_turns: int = Field(8, ge=2)  # exchanges in one packed conversation


class Mix(Strict):
    """The mixture by proportions: each source's `weight` share of `total` rows, solved
    after filtering, dedup and decontamination."""

    total: int = Field(gt=0)
    upsample: bool = False  # repeat rows of a source short of its share (else shrink total)


class Source(Strict):
    name: str
    plugin: str | None = None
    path: str | list[str] | None = None
    hub: str | None = None
    config: str | None = None
    split: str | None = None
    revision: str | None = None
    data_files: str | list[str] | dict[str, str | list[str]] | None = None
    confidence: float | None = None
    sample: Sample | None = None
    columns: dict[str, str] = {}
    options: dict[str, Any] = {}
    system_prompt: SystemPrompt | None = None
    on_invalid: Literal["skip", "fail"] = "skip"
    # With on_invalid skip: the largest share of rows read that may be rejected (None: any).
    max_invalid: float | None = Field(None, ge=0, le=1)
    trust_remote_code: bool = False  # passed to datasets.load_dataset for hub sources
    opt_in: bool = False  # required for a plugin marked opt_in (toxic data)
    inputs: dict[str, str | list[str]] = {}  # local files for a plugin's joined upstreams
    filters: Filters | None = None
    weight: float | None = Field(None, gt=0)  # share of `mix.total`, solved after filters
    stratify: str | None = None  # a meta field: sampling keeps each value's share
    max_validation: int | None = Field(None, ge=0)
    packing: Packing | None = None
    # Set by `composer build --locked` (composer.lock.pinned): joined hub inputs' commits.
    _input_revisions: dict[str, str] = PrivateAttr(default_factory=dict)

    @field_validator("sample", mode="before")
    @classmethod
    def _sample(cls, value: Any) -> Any:
        return None if value is None else parse_sample(value)

    @property
    def plugin_name(self) -> str:
        return self.plugin or self.name


EMBEDDING_THRESHOLD = 0.95  # near dedup's cosine default (bench/bench_near_dedup.py)


class NearDedup(Strict):
    """Near-duplicates after exact dedup (composer.near_dedup): MinHash over word n-grams
    (Jaccard threshold) or the static embedding model (cosine threshold)."""

    method: Literal["minhash", "embedding"] = "minhash"
    # bench/bench_near_dedup.py: the recall targets at 0.7 (Jaccard); a cosine of 0.7 would
    # merge most GSM8K problems, so `embedding` defaults to EMBEDDING_THRESHOLD
    threshold: float = Field(0.7, gt=0, le=1)
    ngram: int = Field(2, ge=1, le=8)
    permutations: int = Field(64, ge=4, le=512)
    bands: int = Field(16, ge=1)

    @model_validator(mode="after")
    def _bands_divide(self) -> NearDedup:
        if self.permutations % self.bands:
            raise ValueError(f"bands ({self.bands}) must divide permutations ({self.permutations})")
        if self.method == "embedding" and "threshold" not in self.model_fields_set:
            self.threshold = EMBEDDING_THRESHOLD
        return self


class Dedup(Strict):
    key: Literal["instruction", "user_turns", "conversation", "none"] = "instruction"
    near: NearDedup | None = None

    @model_validator(mode="after")
    def _near_needs_a_key(self) -> Dedup:
        if self.near is not None and self.key == "none":
            raise ValueError("near needs a dedup key (instruction, user_turns or conversation)")
        return self


class Format(Strict):
    """A prompt format: a template (built-in name or .jinja path) and its variables."""

    name: str
    template: str | None = None
    coverage: float = Field(1.0, ge=0, le=1)
    vars: dict[str, Any] = {}
    system_prompt: SystemPrompt | None = None
    # A local Hugging Face tokenizer folder: render with its own chat template instead.
    tokenizer: str | None = None
    max_seq_len: int | None = Field(None, gt=0)  # the report shows the share of rows over it
    keep_eos: bool = False  # keep the end token in completions (a trainer adds its own)

    @field_validator("name")
    @classmethod
    def _folder_name(cls, name: str) -> str:
        # The name names the format's folder of the output (formats/<name>/).
        if not FORMAT_NAME.fullmatch(name):
            raise ValueError(
                f"{name!r}: a format's name names its output folder (formats/<name>/): "
                "letters, digits, '.', '_' and '-', starting with a letter or digit"
            )
        return name

    @model_validator(mode="after")
    def _template_or_tokenizer(self) -> Format:
        if self.tokenizer is not None and (self.template is not None or self.vars):
            raise ValueError("a format renders with a `tokenizer` or a `template` (and vars)")
        return self


class Render(Strict):
    turns: Literal["all", "last"] = "all"


class Split(Strict):
    validation: float | int = 0
    test: float | int = 0

    @model_validator(mode="after")
    def _room_for_train(self) -> Split:
        fractions = [v for v in (self.validation, self.test) if isinstance(v, float)]
        if len(fractions) == 2 and sum(fractions) >= 1:
            raise ValueError(
                f"validation ({self.validation:g}) and test ({self.test:g}) leave no training "
                "data: their sum must be below 1"
            )
        return self

    @field_validator("validation", "test")
    @classmethod
    def _size(cls, value: float | int) -> float | int:
        if isinstance(value, bool) or value < 0 or (isinstance(value, float) and value >= 1):
            raise ValueError(f"expected a fraction in [0, 1) or a row count, got {value!r}")
        return value


class BenchmarkEntry(Strict):
    """A benchmark: a built-in name, optionally pointed at a local file or other upstream."""

    name: str
    path: str | list[str] | None = None
    hub: str | None = None
    config: str | None = None
    split: str | None = None
    revision: str | None = None
    fields: list[str] | None = None


class Decontaminate(Strict):
    """Remove training rows that hold benchmark test items (see composer.decontaminate)."""

    benchmarks: list[BenchmarkEntry] = Field(min_length=1)
    system: bool = False
    ngram: int = Field(13, ge=0)
    ngram_overlap: float = Field(0.25, gt=0, le=1)
    embedding: bool = True
    model: str = "sentence-transformers/all-MiniLM-L6-v2"
    static: bool = True
    report_only: bool = False

    _names = field_validator("benchmarks", mode="before")(names_to_mappings)


class Output(Strict):
    model_config = ConfigDict(
        extra="forbid", strict=True, populate_by_name=True, allow_inf_nan=False
    )

    dir: str | None = None
    jsonl: bool = False
    json_list: bool = Field(False, alias="json")


class Manifest(Strict):
    name: str
    seed: int = 42
    sources: list[Source] = Field(min_length=1)
    dedup: Dedup = Dedup()
    formats: list[Format] = Field(
        default_factory=lambda: [Format(name=f) for f in DEFAULT_FORMATS], min_length=1
    )
    templates_dir: str | list[str] | None = None
    render: Render = Render()
    system_prompt: SystemPrompt = SystemPrompt()
    split: Split = Split()
    output: Output = Output()
    decontaminate: Decontaminate | None = None
    filters: Filters | None = None
    mix: Mix | None = None
    # Worker processes for the decontamination scan (default: one a core); the output's
    # bytes do not depend on it.
    workers: int | None = Field(None, ge=1)
    # What runs the stages' tasks: this machine (`local`: the workers above) or a Ray
    # cluster (`ray`: `--address`, else $RAY_ADDRESS, else the one `ray start` runs here).
    # The output's bytes do not depend on it; `composer build --engine` overrides it.
    engine: Literal["local", "ray"] = "local"

    # Set by load(): the manifest's folder, against which relative paths resolve.
    base_dir: Path = Field(default=Path("."), exclude=True)
    path: str = Field(default="<manifest>", exclude=True)

    _names = field_validator("formats", mode="before")(names_to_mappings)

    def resolve(self, path: str) -> Path:
        return self.base_dir / os.path.expanduser(path)

    @property
    def output_dir(self) -> Path:
        return self.resolve(self.output.dir or f"out/{self.name}")

    def template_dirs(self) -> list[Path]:
        dirs = self.templates_dir or []
        return [self.resolve(d) for d in ([dirs] if isinstance(dirs, str) else dirs)]


# ---------------------------------------------------------------- loading and checking


def load_manifest(path: str | os.PathLike) -> Manifest:
    """Read, validate and check a manifest; raise ManifestError listing every problem."""
    path = str(path)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise UserError(f"{path}: no such manifest file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read manifest: {exc}") from None
    try:
        loader = _UniqueKeyLoader(text)  # a SafeLoader: no arbitrary objects
        try:  # parsed once: the nodes give key lines, and the data is built from them
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except RecursionError:
        raise UserError(f"{path}: invalid YAML: nested too deep") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else path
        problem = getattr(exc, "problem", None) or str(exc)
        raise UserError(f"{where}: invalid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise ManifestError(path, ["expected a mapping of manifest keys at the top level"])
    _check_size(path, node)
    lines = _key_lines(node)
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        from composer.lock import redact

        problems = describe_errors(exc.errors(), data, lines)
        problems += _problems_beyond(path, data, exc.errors(), lines)
        problems.sort(key=lambda p: int(p.split(":")[0][5:]) if p.startswith("line ") else 0)
        raise ManifestError(path, [redact(p) for p in problems]) from None
    manifest.base_dir = Path(path).resolve().parent
    manifest.path = path
    problems = check(manifest)
    if problems:
        problems.sort(key=lambda p: _line(p[0], lines))
        raise ManifestError(path, [_with_line(loc, msg, lines) for loc, msg in problems])
    return manifest


def _problems_beyond(
    path: str, data: dict, errors: list[dict], lines: dict[tuple, int]
) -> list[str]:
    """The cross-key problems (files, plugins, formats) that schema errors would hide until
    they are fixed: the checks run on the manifest without its wrong keys, so that one
    `composer validate` reports every problem at once. None when no such manifest exists
    (a required key is missing, or a list entry is wrong as a whole)."""
    import copy

    pruned, removed = copy.deepcopy(data), []
    for error in errors:
        loc = _data_loc(error["loc"], data)
        if error["type"] == "missing" or not loc or isinstance(loc[-1], int):
            return []
        parent = pruned
        for part in loc[:-1]:  # gone when a union's error removed an outer key first
            found = isinstance(parent, dict | list) and _has(parent, part)
            parent = parent[part] if found else None
        if isinstance(parent, dict):
            parent.pop(loc[-1], None)
        removed.append(loc)
    try:
        manifest = Manifest.model_validate(pruned)
    except ValidationError:
        return []
    manifest.base_dir = Path(path).resolve().parent
    manifest.path = path
    # Not a problem at a removed key, nor at an object that holds one (its absence's echo).
    related = lambda loc, r: loc[: len(r)] == r or r[: len(loc)] == loc  # noqa: E731
    found = [p for p in check(manifest) if not any(related(p[0], r) for r in removed)]
    found.sort(key=lambda p: _line(p[0], lines))
    return [_with_line(loc, msg, lines) for loc, msg in found]


def check(manifest: Manifest) -> list[tuple[tuple, str]]:
    """Checks across keys that a schema cannot express: names, files, plugins, formats."""
    from composer.filters import check_filters
    from composer.formats import PromptFormat, available_formats, template_path
    from composer.lock import redact
    from composer.plugins import registry
    from composer.readers import file_type, resolve_files
    from composer.system_prompt import POOLS

    problems: list[tuple[tuple, str]] = []
    if manifest.output.dir is None and not _plain_name(manifest.name):
        problems.append(
            (
                ("name",),
                f"{manifest.name!r} cannot name the output folder out/<name>: use a plain "
                "folder name (no '/', '\\', NUL, '.' or '..'), or set output.dir",
            )
        )
    if manifest.output.dir is not None and "\0" in manifest.output.dir:
        problems.append((("output", "dir"), "a path cannot hold a NUL character"))
    plugins = registry()
    seen: set[str] = set()
    for i, source in enumerate(manifest.sources):
        loc = ("sources", i)
        secret = _credential_problems(loc, source)
        problems += secret
        if source.name in seen:
            problems.append(((*loc, "name"), f"duplicate source name {source.name!r}"))
        seen.add(source.name)
        plugin = plugins.get(source.plugin_name)
        if plugin is None:
            key = "plugin" if source.plugin else "name"
            problems.append(
                (
                    (*loc, key),
                    f"unknown plugin {source.plugin_name!r}"
                    f"{did_you_mean(source.plugin_name, plugins)}; "
                    "`composer sources` lists them",
                )
            )
        if source.path and source.hub:
            problems.append((loc, "give either path or hub, not both"))
        elif source.path:
            # Not checked when it holds credentials: the messages would show them.
            files = [] if secret else resolve_files(source.path, manifest.base_dir)
            patterns = (
                [] if secret else [source.path] if isinstance(source.path, str) else source.path
            )
            for pattern in patterns:
                if glob.has_magic(pattern) and not resolve_files(pattern, manifest.base_dir):
                    problems.append(((*loc, "path"), f"no files match {pattern!r}"))
            for f in files:
                if glob.has_magic(f):
                    continue
                if not os.path.exists(f):
                    problems.append(((*loc, "path"), f"no such file: {f}"))
                elif file_type(f) is None:
                    problems.append(
                        (
                            (*loc, "path"),
                            f"unsupported file type: {f} (use .jsonl, "
                            ".json, .csv, .parquet (.pq), .arrow or a save_to_disk folder)",
                        )
                    )
        elif not source.hub and plugin is not None and not plugin.hub:
            problems.append(
                (loc, f"plugin {plugin.name!r} has no default upstream: give path or hub")
            )
        if plugin is not None and plugin.opt_in and not source.opt_in:
            problems.append(
                (
                    loc,
                    f"source {source.name!r}: plugin {plugin.name!r} is opt-in (its data is "
                    "toxic or unsafe on purpose): add `opt_in: true` to the source to use it",
                )
            )
        if plugin is not None:
            for key in source.inputs:
                if key not in plugin.inputs:
                    problems.append(
                        (
                            (*loc, "inputs", key),
                            f"plugin {plugin.name!r} joins no input {key!r}"
                            f"{did_you_mean(key, plugin.inputs)}; its inputs: "
                            f"{', '.join(plugin.inputs) or 'none'}",
                        )
                    )
            for key, message in plugin.option_problems(source.options):
                problems.append(((*loc, "options", key), message))
            readable = (*plugin.columns, *plugin.optional_columns)
            for key in source.columns:
                if readable and key not in readable:
                    problems.append(
                        (
                            (*loc, "columns", key),
                            f"plugin {plugin.name!r} reads no "
                            f"column {key!r}{did_you_mean(key, readable)}; it reads: "
                            f"{', '.join(readable)}",
                        )
                    )
        if source.filters is not None:
            problems += [
                ((*loc, "filters", *key), message)
                for key, message in check_filters(source.filters, manifest.base_dir)
            ]
        if source.weight is not None and manifest.mix is None:
            problems.append(((*loc, "weight"), "a weight needs `mix: {total: N}` at the top"))
        if manifest.mix is not None and source.weight is None:
            problems.append((loc, "with `mix`, every source needs a `weight`"))
        if source.weight is not None and source.sample is not None:
            problems.append(((*loc, "sample"), "give either sample or weight, not both"))
        if source.packing is not None and plugin is not None and plugin.kind != "sft":
            problems.append(
                ((*loc, "packing"), f"packing merges SFT items; {plugin.name!r} is {plugin.kind}")
            )
        for key in ("config", "revision", "data_files"):
            if source.path and getattr(source, key) is not None:
                problems.append(((*loc, key), f"{key} applies to hub sources, not to path"))
        if source.path and source.trust_remote_code:
            problems.append(
                ((*loc, "trust_remote_code"), "trust_remote_code applies to hub sources, not path")
            )
        if source.max_invalid is not None and source.on_invalid == "fail":
            problems.append(
                (
                    (*loc, "max_invalid"),
                    "max_invalid applies with on_invalid: skip (fail stops at the first bad row)",
                )
            )
    if manifest.filters is not None:
        problems += [
            (("filters", *key), message)
            for key, message in check_filters(manifest.filters, manifest.base_dir)
        ]
    formats = available_formats(manifest.template_dirs())
    names: set[str] = set()
    for i, fmt in enumerate(manifest.formats):
        template = fmt.template or fmt.name
        if fmt.name in names:
            problems.append((("formats", i, "name"), f"duplicate format name {fmt.name!r}"))
        names.add(fmt.name)
        if fmt.tokenizer is not None:
            from composer.chat_template import tokenizer_problem

            if problem := tokenizer_problem(manifest.resolve(fmt.tokenizer)):
                problems.append((("formats", i, "tokenizer"), problem))
            continue
        path = template_path(template, formats, manifest.base_dir)
        if template not in formats and not template.endswith(".jinja"):
            key = "template" if fmt.template else "name"
            problems.append(
                (
                    ("formats", i, key),
                    f"unknown format {template!r}"
                    f"{did_you_mean(template, formats)}; available: "
                    f"{', '.join(sorted(formats))}",
                )
            )
        elif path is None:
            problems.append(
                (("formats", i, "template"), f"no such template file: {manifest.resolve(template)}")
            )
        else:  # load it now, so that a template that cannot render fails validation
            try:
                PromptFormat.load(fmt.name, path, fmt.vars)
            except TemplateError as exc:
                problems.append((("formats", i, exc.key) if exc.key else ("formats", i), str(exc)))
    if manifest.decontaminate is not None:
        from composer.benchmarks import BUILTIN

        for i, entry in enumerate(manifest.decontaminate.benchmarks):
            loc = ("decontaminate", "benchmarks", i)
            secret = _credential_problems(loc, entry)
            problems += secret
            if entry.name not in BUILTIN and not entry.fields:
                problems.append(
                    (
                        (*loc, "name"),
                        f"unknown benchmark {entry.name!r}"
                        f"{did_you_mean(entry.name, BUILTIN)}; give its `fields` (and a "
                        "path or hub) to add one; `composer benchmarks` lists them",
                    )
                )
            if entry.path is not None and not secret:
                for pattern in [entry.path] if isinstance(entry.path, str) else entry.path:
                    if not resolve_files(pattern, manifest.base_dir) or not all(
                        os.path.exists(f) for f in resolve_files(pattern, manifest.base_dir)
                    ):
                        problems.append(((*loc, "path"), f"no such file: {pattern}"))
    policies = [(("system_prompt",), manifest.system_prompt)]
    policies += [
        (("sources", i, "system_prompt"), s.system_prompt) for i, s in enumerate(manifest.sources)
    ]
    policies += [
        (("formats", i, "system_prompt"), f.system_prompt) for i, f in enumerate(manifest.formats)
    ]
    for loc, policy in policies:
        if policy is not None and isinstance(policy.pool, str) and policy.pool not in POOLS:
            problems.append(
                (
                    (*loc, "pool"),
                    f"unknown pool {policy.pool!r}"
                    f"{did_you_mean(policy.pool, POOLS)}; built-in pools: "
                    f"{', '.join(POOLS)} (or give a list of prompts)",
                )
            )
    for d in manifest.template_dirs():
        if not d.is_dir():
            problems.append((("templates_dir",), f"no such folder: {d}"))
    # No message shows a URL's password or token, whatever key it came from.
    return [(loc, redact(message)) for loc, message in problems]


def _plain_name(name: str) -> bool:
    """A name that is one folder name: `out/<name>` stays inside `out/`."""
    return name not in ("", ".", "..") and not any(c in name for c in "/\\\0")


def _credential_problems(loc: tuple, entry: Source | BenchmarkEntry) -> list[tuple[tuple, str]]:
    """A `path` or `hub` holding a URL's user:password@ or token: refused, so that it never
    reaches an error message, a report or the lock (shown here with the secret masked)."""
    from composer.lock import redact

    problems = []
    for key in ("path", "hub"):
        value = getattr(entry, key)
        for text in [value] if isinstance(value, str) else value or []:
            if redact(text) != text:
                problems.append(
                    (
                        (*loc, key),
                        f"{redact(text)} holds credentials (a URL's user:password@ or a "
                        "token): composer would show them in messages and reports; log in with "
                        "HF_TOKEN or `hf auth login` instead",
                    )
                )
    return problems


# ---------------------------------------------------------------- error messages

_TYPE_NAMES = {
    "float": "a number",
    "int": "an integer",
    "string": "a string",
    "bool": "true or false",
    "dict": "a mapping",
    "list": "a list",
    "model": "a mapping",
}


def _data_loc(loc: tuple, data: Any) -> tuple:
    """The part of a pydantic error location that is a path in the manifest's data.

    What follows is pydantic's own (the member of a union that was tried, say).
    """
    out, node = [], data
    for part in loc:
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if not (in_list or (isinstance(node, dict) and part in node)):
            break
        node = node[part]
        out.append(part)
    return tuple(out)


def _expected(kind: str) -> str | None:
    name = kind.removesuffix("_type").removesuffix("_parsing")
    return _TYPE_NAMES.get(name) if name != kind else None


def describe_errors(errors: list[dict], data: Any, lines: dict[tuple, int]) -> list[str]:
    """One `line N: key.path: message` per wrong key (a union's members merged into one)."""
    by_loc: dict[tuple, list[dict]] = {}
    for error in errors:
        loc = _data_loc(error["loc"], data)
        if error["type"] == "missing":
            loc = (*loc, error["loc"][-1])
        by_loc.setdefault(loc, []).append(error)
    problems = []
    for loc, group in by_loc.items():
        expected = [e for e in (_expected(g["type"]) for g in group) if e]
        if len(group) > 1 and len(expected) == len(group):
            if "a number" in expected:  # an int is a number too
                expected = [e for e in expected if e != "an integer"]
            wanted = " or ".join(dict.fromkeys(expected))
            message = f"expected {wanted}, got {group[0].get('input')!r}"
        else:
            message = _message(group[0], loc)
        problems.append((_line(loc, lines), _with_line(loc, message, lines, data)))
    return [text for _, text in sorted(problems, key=lambda p: p[0])]


def _message(error: dict, loc: tuple) -> str:
    kind, value = error["type"], error.get("input")
    if kind == "extra_forbidden":
        parent = _model_at(loc[:-1])
        hint = did_you_mean(str(loc[-1]), parent.model_fields) if parent and loc else ""
        if loc and str(loc[-1]) in OTHER_TOOLS_KEYS:
            hint = f" (other tools' key; composer's is {OTHER_TOOLS_KEYS[str(loc[-1])]})"
        return f"unknown key{hint}"
    if kind == "missing":
        return "required key is missing"
    if kind == "finite_number":
        return f"expected a finite number (not NaN or infinity), got {value!r}"
    if kind == "literal_error":
        expected = error["ctx"]["expected"]
        choices = [c.strip(" '") for c in expected.replace(" or ", ", ").split(",")]
        return f"expected one of {expected}, got {value!r}{did_you_mean(str(value), choices)}"
    if _expected(kind):
        return f"expected {_expected(kind)}, got {value!r}"
    bounds = {
        "greater_than_equal": ">=",
        "greater_than": ">",
        "less_than_equal": "<=",
        "less_than": "<",
    }
    if kind in bounds:
        limit = next(iter(error["ctx"].values()))
        return f"expected a number {bounds[kind]} {limit:g}, got {value!r}"
    if kind == "too_short":
        return "needs at least one entry"
    return error["msg"].removeprefix("Value error, ")


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (YAML keeps the last, silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    "a key must be a plain name, not a list or mapping",
                    key_node.start_mark,
                )
            if isinstance(key, str) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} is given twice (first on line {seen[key]})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _check_size(path: str, node: yaml.Node) -> None:
    """Refuse a document that expands (through aliases: a "billion laughs") past
    MAX_YAML_VALUES values or MAX_YAML_DEPTH levels, before anything walks it. Each node is
    measured once, so the check itself is linear in the text."""
    memo: dict[int, tuple[int, int]] = {}

    def measure(node: yaml.Node, level: int) -> tuple[int, int]:  # (values, depth)
        if id(node) in memo:
            return memo[id(node)]
        if level > MAX_YAML_DEPTH:
            raise UserError(
                f"{path}:{node.start_mark.line + 1}: the manifest nests deeper than "
                f"{MAX_YAML_DEPTH} levels"
            )
        children = (
            [n for pair in node.value for n in pair]
            if isinstance(node, yaml.MappingNode)
            else node.value
            if isinstance(node, yaml.SequenceNode)
            else []
        )
        values, depth = 1, 1
        for child in children:
            v, d = measure(child, level + 1)
            values, depth = values + v, max(depth, d + 1)
        memo[id(node)] = (values, depth)
        if values > MAX_YAML_VALUES or depth > MAX_YAML_DEPTH:
            what = f"{values:,} values" if values > MAX_YAML_VALUES else f"{depth} levels"
            raise UserError(
                f"{path}:{node.start_mark.line + 1}: the manifest expands to {what} "
                f"(YAML aliases?); the limit is {MAX_YAML_VALUES:,} values, "
                f"{MAX_YAML_DEPTH} levels deep"
            )
        return values, depth

    measure(node, 1)


_KEYS = _UniqueKeyLoader("")  # builds key objects from YAML nodes for _key_lines


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The model class at a key path, to suggest the keys it does accept."""
    model: Any = Manifest
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        annotation = field.annotation
        for candidate in (annotation, *getattr(annotation, "__args__", ())):
            inner = getattr(candidate, "__args__", (candidate,))
            found = next(
                (c for c in inner if isinstance(c, type) and issubclass(c, BaseModel)), None
            )
            if found:
                model = found
                break
        else:
            return None
    return model


def key_path(loc: tuple, data: Any = None) -> str:
    """`sources[2].confidence`. With the data at hand, an integer key of a mapping stays a key."""
    out, node = "", data
    for part in loc:
        name = str(part) or "''"
        index = isinstance(part, int) and not isinstance(node, dict)
        out += f"[{part}]" if index else f".{name}" if out else name
        node = node[part] if isinstance(node, dict | list) and _has(node, part) else None
    return out or "(top level)"


def _has(node: dict | list, part: Any) -> bool:
    return part in node if isinstance(node, dict) else isinstance(part, int) and part < len(node)


def _line(loc: tuple, lines: dict[tuple, int]) -> int:
    """The line of the deepest part of `loc` that the YAML has (0 if none)."""
    return next((lines[loc[:n]] for n in range(len(loc), -1, -1) if loc[:n] in lines), 0)


def _with_line(loc: tuple, message: str, lines: dict[tuple, int], data: Any = None) -> str:
    line, path = _line(loc, lines), key_path(loc, data)
    return f"line {line}: {path}: {message}" if line else f"{path}: {message}"


def _key_lines(node: yaml.Node | None, loc: tuple = ()) -> dict[tuple, int]:
    """Map each key path in the YAML document to its 1-based line."""
    lines: dict[tuple, int] = {}
    if node is None:
        return lines
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            # The key as the data has it (`1:` is the integer 1), so that lookups match.
            child = (*loc, _KEYS.construct_object(key, deep=True))
            lines.update(_key_lines(value, child))
            lines[child] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, value in enumerate(node.value):
            lines.update(_key_lines(value, (*loc, i)))
    return lines
