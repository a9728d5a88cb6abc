"""`composer.lock`: what a build was made from, to check a later build against.

Every build writes `OUT/composer.lock`: the versions of composer, Python and the packages
that shape the output; the manifest's hash and the seed used; per source its plugin's code
hash and its upstream (each local file's sha256, or the hub id, config, split, data_files
and the commit the revision resolved to); the templates; the decontamination model and
benchmarks; the code filters run (scorer modules, tokenizers); and the sha256 of every
output file. JSON with sorted keys and no timestamps: two builds of the same inputs write
the same lock.

`check(manifest, formats, path)` computes the inputs part again and compares it with a lock:
a changed input is an error (each change named on its own line), a changed package version
only a warning. Credentials never reach the lock: tokens are not read, and a URL's
`user:password@` or token parameters are redacted.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import platform
import re
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from composer.cache import file_sha
from composer.codehash import file_sha as code_file_sha
from composer.codehash import module_sha
from composer.errors import UserError
from composer.formats import PromptFormat
from composer.manifest import Manifest, Source
from composer.plugins import Plugin, registry
from composer.readers import resolve_files

LOCK_NAME = "composer.lock"
LOCK_VERSION = 1
PACKAGES = (
    "datasets",
    "pyarrow",
    "numpy",
    "faiss-cpu",
    "faiss",
    "sentence-transformers",
    "transformers",
    "torch",
    "jinja2",
    "model2vec",
    "tokenizers",
    "py3langid",  # the language filter's model
)

_URL_USERINFO = re.compile(r"(?<=://)[^/?#@\s]+@")
_URL_SECRET = re.compile(
    r"(?i)([?&](?:token|access_token|key|api_key|sig|signature|secret|password|auth)=)[^&#\s]*"
)


# ---------------------------------------------------------------- hashing


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _folder_files(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, by relative POSIX path, sorted."""
    return {
        p.relative_to(folder).as_posix(): file_sha(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _files(files: list[str], base: Path) -> dict[str, str]:
    """sha256 of each resolved file (a folder: each file in it), by path relative to `base`."""
    out = {}
    for f in files:
        rel = Path(os.path.relpath(f, base)).as_posix()
        if os.path.isdir(f):
            out.update({f"{rel}/{k}": v for k, v in _folder_files(Path(f)).items()})
        elif os.path.isfile(f):
            out[rel] = file_sha(f)
        else:
            out[rel] = None
    return out


def redact(value: Any) -> Any:
    """`value` (a string, or lists and mappings of them) with URL credentials removed."""
    if isinstance(value, str):
        return _URL_SECRET.sub(r"\1***", _URL_USERINFO.sub("***@", value))
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    return value


# ---------------------------------------------------------------- the parts of a lock


def packages() -> dict[str, str | None]:
    """composer's, Python's and the key packages' versions (None: not installed)."""
    from composer import __version__

    found: dict[str, str | None] = {"python": platform.python_version(), "composer": __version__}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def resolve_revision(hub: str, revision: str | None) -> str | None:
    """The commit sha `revision` of a hub dataset points at now; None offline or on failure.

    HfApi reads the user's token itself for gated sets; the token is never returned."""
    import huggingface_hub.constants

    if huggingface_hub.constants.HF_HUB_OFFLINE:
        return None
    try:
        from huggingface_hub import HfApi

        return HfApi().dataset_info(hub, revision=revision).sha
    except Exception:  # offline, unknown, gated without a login: the lock records what it can
        return None


def hub_upstream(
    hub: str,
    config: str | None,
    split: str | None,
    revision: str | None,
    data_files: Any,
    pinned: str | None = None,
) -> dict[str, Any]:
    """A hub upstream: its id, config, split and data_files, and the commit (or, for a local
    folder in hub layout, its files' sha256). `pinned`: a locked commit to resolve instead."""
    entry: dict[str, Any] = {
        "hub": redact(hub),
        "config": config,
        "split": split,
        "data_files": redact(data_files),
        "revision": redact(revision),
    }
    if os.path.isdir(hub):
        entry["files"] = _folder_files(Path(hub))
    else:
        entry["resolved"] = resolve_revision(hub, pinned or revision)
    return entry


def _plugin_sha(plugin: Plugin) -> str | None:
    """The plugin's module and the modules of its own package it reaches (a helper, another
    plugin's function): see composer.codehash."""
    module = sys.modules.get(plugin.module) if plugin.module else None
    module = module or inspect.getmodule(plugin.convert)
    return module_sha(module) if module else None


def source_entry(
    manifest: Manifest, source: Source, plugin: Plugin, pinned: dict[str, str] | None = None
) -> dict[str, Any]:
    """One source: its plugin, the plugin's code hash, its upstream and joined inputs.
    `pinned`: locked commits to resolve instead, of the upstream (under "") and inputs."""
    pinned = pinned or {}
    if source.path:
        upstream: dict[str, Any] = {
            "files": _files(resolve_files(source.path, manifest.base_dir), manifest.base_dir)
        }
    else:
        own = source.hub is None  # the plugin's default upstream and its settings
        upstream = hub_upstream(
            source.hub or plugin.hub,
            source.config or (plugin.config if own else None),
            source.split or plugin.split,
            source.revision or (plugin.revision if own else None),
            source.data_files or (plugin.data_files if own else None),
            pinned.get(""),
        )
    inputs = {}
    for name, spec in plugin.inputs.items():
        if name in source.inputs:
            files = resolve_files(source.inputs[name], manifest.base_dir)
            inputs[name] = {"files": _files(files, manifest.base_dir)}
        else:
            inputs[name] = hub_upstream(
                spec["hub"],
                spec.get("config"),
                spec.get("split", "train"),
                spec.get("revision"),
                spec.get("data_files"),
                pinned.get(name),
            )
    return {
        "plugin": plugin.name,
        "plugin_sha256": _plugin_sha(plugin),
        "kind": plugin.kind,
        "upstream": upstream,
        "inputs": inputs,
    }


def _decontamination(manifest: Manifest) -> dict[str, Any] | None:
    config = manifest.decontaminate
    if config is None:
        return None
    from composer.benchmarks import resolve
    from composer.embeddings import model_id

    benchmarks = {}
    for entry in config.benchmarks:
        spec = resolve(entry.model_dump(exclude_none=True))
        if spec.path:
            files = resolve_files(spec.path, manifest.base_dir)
            benchmarks[spec.name] = {"files": _files(files, manifest.base_dir)}
        elif spec.hub:
            benchmarks[spec.name] = hub_upstream(
                spec.hub, spec.config, spec.split, spec.revision, None
            )
        benchmarks[spec.name]["fields"] = list(spec.fields)
    settings = config.model_dump(mode="json", exclude={"benchmarks"})
    return {
        "model": config.model,
        "model_id": model_id(config.model) if config.embedding else None,
        "settings": settings,
        "benchmarks": benchmarks,
    }


def filter_code(manifest: Manifest) -> dict[str, dict[str, str | None]]:
    """sha256 of the code and files filters run: each `package.module:function` scorer's
    module (and the modules of its own it reaches), and each max_tokens tokenizer's files."""
    from composer.filters import _tokenizer_path
    from composer.scorers import load_function

    scorers: dict[str, str | None] = {}
    tokenizers: dict[str, str | None] = {}
    specs = [manifest.filters] + [s.filters for s in manifest.sources]
    for spec in filter(None, specs):
        for score in spec.score:
            if ":" in score.scorer:
                function = load_function(score.scorer, manifest.base_dir)
                scorers[score.scorer] = module_sha(sys.modules[function.__module__])
        if spec.max_tokens is not None:
            name = spec.max_tokens.tokenizer
            path = _tokenizer_path(name, manifest.base_dir)
            folder = manifest.base_dir / os.path.expanduser(name)
            if path is not None:
                tokenizers[name] = code_file_sha(str(path))  # as loaded: once per process
            elif folder.is_dir():
                tokenizers[name] = sha256_bytes(json.dumps(_folder_files(folder)).encode())
            else:
                tokenizers[name] = _hub_snapshot_sha(name)
    return {
        "scorers": dict(sorted(scorers.items())),
        "tokenizers": dict(sorted(tokenizers.items())),
    }


def _hub_snapshot_sha(repo: str) -> str | None:
    """sha256 of the files of a model already in the Hugging Face cache (None: not there)."""
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(repo, local_files_only=True)
    except Exception:  # not cached, or not a repo id
        return None
    return sha256_bytes(json.dumps(_folder_files(Path(folder))).encode())


def manifest_entry(manifest: Manifest) -> dict[str, Any]:
    """sha256 of the manifest file's bytes (None when built in code) and of its validated
    model (seed apart: that is recorded as used; workers and engine apart: they change
    nothing in the output)."""
    path = Path(manifest.path)
    dump = manifest.model_dump(mode="json", by_alias=True, exclude={"seed", "workers", "engine"})
    return {
        "file_sha256": file_sha(path) if path.is_file() else None,
        "model_sha256": sha256_bytes(json.dumps(dump, sort_keys=True).encode()),
        "seed": manifest.seed,
    }


def inputs(
    manifest: Manifest,
    formats: list[PromptFormat],
    pins: dict[str, dict[str, str]] | None = None,
) -> dict[str, Any]:
    """Everything in a lock but the outputs. `pins`: see `pins()`."""
    plugins = registry()
    pins = pins or {}
    return {
        "version": LOCK_VERSION,
        "packages": packages(),
        "manifest": manifest_entry(manifest),
        "sources": {
            s.name: source_entry(manifest, s, plugins[s.plugin_name], pins.get(s.name))
            for s in manifest.sources
        },
        "templates": {
            fmt.name: {
                "file": fmt.path.name,
                "sha256": fmt.sha256(),
                "vars": fmt.vars,
            }
            for fmt in formats
        },
        "decontamination": _decontamination(manifest),
        "code": filter_code(manifest),
    }


def outputs(folder: Path) -> dict[str, str]:
    """sha256 of every file in a build's output folder but the lock itself."""
    return {k: v for k, v in _folder_files(folder).items() if k != LOCK_NAME}


def dumps(lock: dict[str, Any]) -> str:
    text = json.dumps(lock, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a file name that is not UTF-8: kept as JSON escapes
        text = json.dumps(lock, sort_keys=True, indent=2) + "\n"
    return text


def write(lock_inputs: dict[str, Any], folder: Path) -> None:
    """Write folder/composer.lock: `lock_inputs` and the hashes of the folder's files."""
    lock = {**lock_inputs, "outputs": outputs(folder)}
    (folder / LOCK_NAME).write_text(dumps(lock), encoding="utf-8")


def read(path: str | os.PathLike) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such lock file") from None
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{path}: not a composer.lock: byte 0x{exc.object[exc.start]:02x} at offset "
            f"{exc.start} is not UTF-8 text"
        ) from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read the lock file: {exc.strerror or exc}") from None
    try:
        lock = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{exc.lineno}: not a composer.lock: {exc.msg}") from None
    if not isinstance(lock, dict) or lock.get("version") != LOCK_VERSION:
        raise UserError(f"{path}: not a composer.lock (version {LOCK_VERSION})")
    return lock


def pins(lock: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Source name -> the hub commits the locked build read: its upstream's under "", each
    joined input's under the input's name."""
    out: dict[str, dict[str, str]] = {}
    for name, entry in (lock.get("sources") or {}).items():
        if not isinstance(entry, dict):
            continue
        parts = {"": entry.get("upstream"), **(entry.get("inputs") or {})}
        commits = {k: v["resolved"] for k, v in parts.items() if (v or {}).get("resolved")}
        if commits:
            out[name] = commits
    return out


# ---------------------------------------------------------------- comparing


def _short(sha: str | None) -> str:
    return f"{sha[:8]}…" if sha else "none"


def _upstream_changes(label: str, old: dict, new: dict) -> list[str]:
    changes = []
    old_files, new_files = old.get("files"), new.get("files")
    if old_files is not None or new_files is not None:
        old_files, new_files = old_files or {}, new_files or {}
        for f in sorted(set(old_files) | set(new_files)):
            if f not in new_files:
                changes.append(f"{label}: file {f} is gone")
            elif f not in old_files:
                changes.append(f"{label}: new file {f}")
            elif old_files[f] != new_files[f]:
                changes.append(
                    f"{label}: file {f} changed "
                    f"(sha256 {_short(old_files[f])} -> {_short(new_files[f])})"
                )
    for key in ("hub", "config", "split", "data_files", "revision", "resolved", "fields"):
        if old.get(key) != new.get(key):
            a, b = old.get(key), new.get(key)
            if key == "resolved":
                a, b = _short(a), _short(b)
            changes.append(f"{label}: {key} changed ({a} -> {b})")
    return changes


def differences(old: dict[str, Any], new: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(changes, warnings) from a locked build's inputs to these: changes are errors."""
    changes: list[str] = []
    old_m, new_m = old.get("manifest") or {}, new["manifest"]
    if old_m.get("model_sha256") != new_m["model_sha256"]:
        changes.append("manifest changed")
    if old_m.get("seed") != new_m["seed"]:
        changes.append(f"seed changed ({old_m.get('seed')} -> {new_m['seed']})")

    old_s, new_s = old.get("sources") or {}, new["sources"]
    for name in [n for n in old_s if n not in new_s]:
        changes.append(f"source {name!r} is no longer in the manifest")
    for name, entry in new_s.items():
        if name not in old_s:
            changes.append(f"source {name!r} is new")
            continue
        was = old_s[name]
        if was.get("plugin") != entry["plugin"]:
            was_plugin, plugin = was.get("plugin"), entry["plugin"]
            changes.append(f"source {name!r}: plugin changed ({was_plugin} -> {plugin})")
        elif was.get("plugin_sha256") != entry["plugin_sha256"]:
            changes.append(f"plugin {entry['plugin']!r} code changed")
        label = f"source {name!r}"
        changes += _upstream_changes(label, was.get("upstream") or {}, entry["upstream"])
        old_in = was.get("inputs") or {}
        for key in sorted(set(old_in) | set(entry["inputs"])):
            old_up, new_up = old_in.get(key) or {}, entry["inputs"].get(key) or {}
            changes += _upstream_changes(f"{label}: input {key!r}", old_up, new_up)

    old_t, new_t = old.get("templates") or {}, new["templates"]
    for name in sorted(set(old_t) | set(new_t)):
        if name not in new_t:
            changes.append(f"template {name!r} is no longer used")
        elif name not in old_t:
            changes.append(f"template {name!r} is new")
        elif old_t[name] != new_t[name]:
            changes.append(f"template {name!r} changed")

    old_d, new_d = old.get("decontamination"), new["decontamination"]
    if (old_d is None) != (new_d is None):
        changes.append("decontamination " + ("added" if new_d else "removed"))
    elif new_d is not None:
        if (old_d.get("model"), old_d.get("model_id")) != (new_d["model"], new_d["model_id"]):
            changes.append(
                f"decontamination model changed ({old_d.get('model')} -> {new_d['model']})"
            )
        if old_d.get("settings") != new_d["settings"]:
            changes.append("decontamination settings changed")
        old_b, new_b = old_d.get("benchmarks") or {}, new_d["benchmarks"]
        for name in sorted(set(old_b) | set(new_b)):
            old_up, new_up = old_b.get(name) or {}, new_b.get(name) or {}
            changes += _upstream_changes(f"benchmark {name!r}", old_up, new_up)

    old_c, new_c = old.get("code") or {}, new["code"]
    for part, label in (("scorers", "scorer"), ("tokenizers", "tokenizer")):
        before, now = old_c.get(part) or {}, new_c[part]
        for name in sorted(set(before) | set(now)):
            if before.get(name) != now.get(name):
                changes.append(
                    f"{label} {name!r} changed "
                    f"(sha256 {_short(before.get(name))} -> {_short(now.get(name))})"
                )

    warnings = []
    old_p, new_p = old.get("packages") or {}, new["packages"]
    for name in sorted(set(old_p) | set(new_p)):
        if old_p.get(name) != new_p.get(name):
            warnings.append(
                f"package {name} {old_p.get(name) or 'not installed'} -> "
                f"{new_p.get(name) or 'not installed'}: the output may differ from the locked build"
            )
    return changes, warnings


def check(
    manifest: Manifest, formats: list[PromptFormat], path: str | os.PathLike
) -> dict[str, Any]:
    """This build's inputs, checked against the lock at `path`: a UserError naming every
    change; package version changes are printed as warnings on stderr. Returns the inputs
    (hub sources resolved to the locked commits)."""
    locked = read(path)
    current = inputs(manifest, formats, pins(locked))
    changes, warnings = differences(locked, current)
    if changes:
        lines = "\n".join(f"  {c}" for c in changes)
        raise UserError(f"{path}: the build's inputs differ from this lock\n{lines}")
    for warning in warnings:
        print(f"Warning: {warning}", file=sys.stderr)
    return current


def pinned(manifest: Manifest, lock_inputs: dict[str, Any]) -> Manifest:
    """`manifest` with each hub source's revision, and each joined hub input's, set to the
    commit in `lock_inputs`."""
    commits = pins(lock_inputs)
    if not commits:
        return manifest
    sources = []
    for source in manifest.sources:
        mine = commits.get(source.name, {})
        if mine.get(""):
            source = source.model_copy(update={"revision": mine[""]})
        else:
            source = source.model_copy()
        source._input_revisions = {k: v for k, v in mine.items() if k}
        sources.append(source)
    return manifest.model_copy(update={"sources": sources})
