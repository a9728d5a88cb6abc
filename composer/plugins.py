"""Source plugins: discovery and the contract every plugin meets.

Built-in plugins are the modules of `composer.sources` (the `sources/` folder); third-party
plugins are modules registered under the entry-point group `composer.sources`. Both go
through `Plugin.from_module`, so a built-in is no different from a plugin someone installs.

A plugin module defines:

    name = "slimorca"                 # registry key (defaults to the module name)
    kind = "sft"                      # sft | dpo | text
    hub = "Open-Orca/SlimOrca"        # default upstream; a manifest can override it
    confidence = 2                    # default confidence; higher wins dedup
    columns = ("conversations",)      # upstream columns convert() needs
    optional_columns = ("system",)    # columns it reads when they are there
    def convert(batch, **options): ...   # dict of column lists -> dict of record columns
    def check_options(**options): ...    # optional: [(option, problem)] for bad values

Optional, for the catalogue: `config`, `split`, `revision`, `data_files` (the hub files to
read), `license`, `gated = True` (the hub asks users to accept terms), `opt_in = True` (the
manifest must say `opt_in: true`: toxic data), `batch_size = None` (convert sees every row
at once: stratified sampling, joins, message trees) and `inputs` (other upstreams joined
in: `{"old": {"hub": ..., "data_files": ...}}`, each passed whole to a convert parameter of
that name with no default). A keyword parameter `seed` is not an option: the build passes
the manifest's seed, for the plugin's random choices (see `composer.kit`).

`def select(columns, **options) -> list[int]` with `select_columns = ("task_name",)`
chooses rows before conversion from those columns alone (a stratified sample of millions
of rows, say); convert then sees only the chosen rows, in batches.

`convert` returns `conversations` (ShareGPT turns), plus `chosen`/`rejected` for dpo or
`text` for text, and optionally `meta` (dicts), `row` (the batch row each output came
from, when one row gives several records) and `error` (a reason to reject the row).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

from composer.errors import UserError, did_you_mean
from composer.records import KINDS

ENTRY_POINT_GROUP = "composer.sources"


@dataclass(frozen=True)
class Plugin:
    name: str
    kind: str
    convert: Callable[..., dict[str, list]]
    hub: str | None = None
    config: str | None = None
    split: str = "train"
    revision: str | None = None
    confidence: float = 1.0
    columns: tuple[str, ...] = ()
    optional_columns: tuple[str, ...] = ()
    batch_size: int | None = 1000
    description: str = ""
    origin: str = "built-in"
    options: dict[str, Any] = field(default_factory=dict)
    check_options: Callable[..., list[str]] | None = None
    data_files: str | list[str] | None = None
    license: str | None = None
    gated: bool = False
    opt_in: bool = False
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    takes_seed: bool = False
    select: Callable[..., list[int]] | None = None
    module: str = ""  # the module's name (its code, and what it reaches, is hashed)
    select_columns: tuple[str, ...] = ()

    @classmethod
    def from_module(cls, module: ModuleType, origin: str) -> Plugin:
        name = getattr(module, "name", module.__name__.rsplit(".", 1)[-1])
        kind = getattr(module, "kind", None)
        convert = getattr(module, "convert", None)
        if kind not in KINDS or not callable(convert):
            raise UserError(
                f"plugin {name!r} ({module.__name__}) must define kind (one of "
                f"{', '.join(KINDS)}) and a convert(batch) function"
            )
        doc = (module.__doc__ or "").strip().splitlines()
        return cls(
            name=name,
            kind=kind,
            convert=convert,
            hub=getattr(module, "hub", None),
            config=getattr(module, "config", None),
            split=getattr(module, "split", "train"),
            revision=getattr(module, "revision", None),
            confidence=float(getattr(module, "confidence", 1.0)),
            columns=tuple(getattr(module, "columns", ())),
            optional_columns=tuple(getattr(module, "optional_columns", ())),
            batch_size=getattr(module, "batch_size", 1000),
            description=doc[0] if doc else "",
            origin=origin,
            module=module.__name__,
            options={
                **_keyword_options(convert),
                **_keyword_options(getattr(module, "select", None)),
            },
            check_options=getattr(module, "check_options", None),
            data_files=getattr(module, "data_files", None),
            license=getattr(module, "license", None),
            gated=bool(getattr(module, "gated", False)),
            opt_in=bool(getattr(module, "opt_in", False)),
            inputs=_inputs(module, name, convert),
            takes_seed=any(
                "seed" in inspect.signature(f).parameters
                for f in (convert, getattr(module, "select", None))
                if f is not None
            ),
            select=getattr(module, "select", None),
            select_columns=tuple(getattr(module, "select_columns", ())),
        )

    @staticmethod
    def own_options(function: Callable, options: dict[str, Any]) -> dict[str, Any]:
        """The options that `function` (convert or select) takes."""
        params = inspect.signature(function).parameters
        return {k: v for k, v in options.items() if k in params}

    def option_problems(self, options: dict[str, Any]) -> list[tuple[str, str]]:
        """(option, problem) for unknown options, values of the wrong type, bad values."""
        problems = []
        for key, value in options.items():
            if key not in self.options:
                known = ", ".join(self.options) or "none"
                problems.append(
                    (
                        key,
                        f"unknown option for plugin {self.name!r}"
                        f"{did_you_mean(key, self.options)}; options: {known}",
                    )
                )
                continue
            default = self.options[key]
            if default is not None and not _same_type(value, default):
                problems.append((key, f"expected {type(default).__name__}, got {value!r}"))
        if not problems and self.check_options:
            accepted = self.own_options(self.check_options, options)
            problems += [(key, message) for key, message in self.check_options(**accepted)]
        return problems


def _same_type(value: Any, default: Any) -> bool:
    """Whether `value` may stand for an option whose default is `default` (an int for a float)."""
    if isinstance(default, bool) or isinstance(value, bool):
        return type(value) is type(default)
    if isinstance(default, float):
        return isinstance(value, int | float)
    if isinstance(default, list | tuple):  # YAML gives a list for a tuple default
        return isinstance(value, list | tuple)
    return isinstance(value, type(default))


def _keyword_options(function: Callable | None) -> dict[str, Any]:
    """The options a manifest may pass: keyword parameters and their defaults (`seed` is
    the build's, not an option)."""
    if function is None:
        return {}
    params = list(inspect.signature(function).parameters.values())[1:]
    return {
        p.name: p.default
        for p in params
        if p.default is not inspect.Parameter.empty and p.name != "seed"
    }


def _inputs(module: ModuleType, name: str, convert: Callable) -> dict[str, dict[str, Any]]:
    """The joined upstreams: one per convert parameter without a default, after `batch`."""
    inputs = dict(getattr(module, "inputs", {}))
    params = list(inspect.signature(convert).parameters.values())[1:]
    wanted = [
        p.name
        for p in params
        if p.default is inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    if sorted(wanted) != sorted(inputs):
        raise UserError(
            f"plugin {name!r} ({module.__name__}): convert parameters without a default "
            f"({', '.join(wanted) or 'none'}) must match its inputs ({', '.join(inputs) or 'none'})"
        )
    return inputs


class Plugins(MutableMapping):
    """Plugins by name; a built-in's module is imported the first time it is asked for (a
    build that names three sources does not import sixty)."""

    def __init__(self, builtin: list[str], installed: dict[str, Plugin]):
        self._builtin = builtin
        self._loaded = dict(installed)
        self._names = sorted({*builtin, *installed})
        self._in_code: set[str] = set()  # set here, not importable elsewhere

    def __getitem__(self, name: str) -> Plugin:
        if name not in self._loaded:
            if name not in self._builtin:
                raise KeyError(name)
            module = importlib.import_module(f"composer.sources.{name}")
            plugin = Plugin.from_module(module, "built-in")
            if plugin.name != name:
                raise UserError(
                    f"built-in plugin module {module.__name__} names itself {plugin.name!r}: "
                    "a built-in plugin's name is its module's"
                )
            self._loaded[name] = plugin
        return self._loaded[name]

    def __setitem__(self, name: str, plugin: Plugin) -> None:  # a plugin made in code
        self._loaded[name] = plugin
        self._in_code.add(name)
        self._names = sorted({*self._names, name})

    def __delitem__(self, name: str) -> None:
        self._loaded.pop(name, None)
        self._in_code.discard(name)
        self._builtin = [n for n in self._builtin if n != name]
        self._names = [n for n in self._names if n != name]

    def made_here(self, name: str) -> bool:
        """Whether the plugin was put in this registry in code: another process (an
        engine's worker) cannot look it up by name."""
        return name in self._in_code

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


@cache
def registry() -> Plugins:
    """Every plugin by name: the built-ins, then those installed through entry points."""
    import composer.sources as builtin

    names = sorted(
        info.name
        for info in pkgutil.iter_modules(builtin.__path__)
        if not info.name.startswith("_")
    )
    installed: dict[str, Plugin] = {}
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            module = ep.load()
        except Exception as exc:  # a broken third-party package must not hide the others
            raise UserError(f"cannot load source plugin {ep.name!r} ({ep.value}): {exc}") from exc
        plugin = Plugin.from_module(module, f"{ep.dist.name if ep.dist else ep.value}")
        if plugin.name in installed or plugin.name in names:
            first = installed[plugin.name].origin if plugin.name in installed else "built-in"
            raise UserError(
                f"two source plugins are named {plugin.name!r}: {first} and {plugin.origin}"
            )
        installed[plugin.name] = plugin
    return Plugins(names, installed)


def get_plugin(name: str) -> Plugin:
    plugins = registry()
    if name not in plugins:
        raise UserError(f"unknown source plugin {name!r}{did_you_mean(name, plugins)}")
    return plugins[name]
