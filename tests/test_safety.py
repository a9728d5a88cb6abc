"""Safety: what a manifest (or a template it names) can make composer do.

- A manifest cannot make composer write outside its output folder and its cache: names that
  look like paths are data, and a manifest name that would carry the default output folder
  `out/<name>` elsewhere is refused.
- YAML is loaded safely: a python tag is an error, never a call.
- Jinja is sandboxed: a template reaching for Python internals fails with a clear error and
  writes nothing, whether at load (validation) or while rendering the data.
- Tokens and credentials reach no output file, the cache or an error message.
- trust_remote_code is never passed for a source that does not ask for it.

Every test runs the real CLI and compares a listing of the test's temporary area (its
tmp_path, where the manifest, the data and the output live, and the folders beside it)
before and after: a change outside the output folder and the cache is a failure.

Covered elsewhere, not repeated here: the sandbox on single expressions (`''.__class__`,
`__subclasses__`, mutating messages) in tests/test_formats.py and tests/test_render.py; a
token and URL credentials kept out of the lock, and `redact`, in tests/test_lock.py;
trust_remote_code on a path source, and read_hub with or without it, in
tests/test_bad_input.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.helpers import invoke, write_jsonl, write_manifest, write_manifest_text

ROWS = [
    {"instruction": "What is two plus two?", "output": "Four."},
    {"instruction": "Name a colour.", "output": "Blue."},
    {"instruction": "Say hello.", "output": "Hello!"},
]
OUTPUT_FILES = {
    "README.md",
    "composer.lock",
    "records.parquet",
    "rejected.jsonl",
    "report.html",
    "report.json",
    "report.md",
    "sft/messages/train.parquet",
    "sft/alpaca/train.parquet",
    "dataset_info.json",
    "axolotl/sft.yaml",
    "axolotl/alpaca.yaml",
}


def output_files(*formats: str) -> set[str]:
    """The files of a build of SFT sources rendered in `formats`."""
    return OUTPUT_FILES | {f"formats/{f}/sft/train.parquet" for f in formats}


# ---------------------------------------------------------------- watching the file system


def listing(root: Path, skip: set[Path]) -> dict[Path, tuple]:
    """Every folder and file under `root` (links not followed), a file with its size and
    modification time; the folders in `skip` are not entered."""
    out: dict[Path, tuple] = {}
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = [d for d in dirs if here / d not in skip]
        for d in dirs:
            out[here / d] = ("dir",)
        for f in files:
            stat = (here / f).lstat()
            out[here / f] = (stat.st_size, stat.st_mtime_ns)
    return out


class Watch:
    """The test's temporary area (tmp_path's parent: this test's folders and earlier tests'),
    listed before a command; `outside()` is what changed outside the allowed folders."""

    def __init__(self, tmp_path: Path, cache: Path):
        self.root = tmp_path.parent
        # The caches: composer's ($COMPOSER_CACHE, and the session's shared models that it
        # links to) and the Hugging Face one that `datasets` fills when it reads a folder.
        self.caches = {cache, Path(os.environ["HF_HOME"])}
        self.caches |= {p.resolve() for p in cache.iterdir() if p.is_symlink()}
        self.before = listing(self.root, self.caches)

    def outside(self, *allowed: Path) -> list[str]:
        after = listing(self.root, self.caches)
        changed = {
            p for p in after.keys() | self.before.keys() if after.get(p) != self.before.get(p)
        }

        def ok(path: Path) -> bool:
            if any(path.is_relative_to(a) for a in allowed):
                return True
            # A folder made to hold the output folder (out/ for out/<name>).
            return after.get(path) == ("dir",) and any(a.is_relative_to(path) for a in allowed)

        return sorted(str(p) for p in changed if not ok(p))


def files_in(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def project(tmp_path, monkeypatch):
    """tmp_path/proj with a small alpaca file; the current folder is tmp_path/cwd, so that
    anything written to a relative path lands in the watched area."""
    folder = tmp_path / "proj"
    folder.mkdir()
    write_jsonl(folder / "data.jsonl", ROWS)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return folder


def source(name: str = "s", **keys) -> dict:
    return {"name": name, "plugin": "alpaca", "path": "data.jsonl", **keys}


def assert_refused(result, *lines: str) -> str:
    """Exit code 2, one `Error:` message holding each of `lines`, no traceback."""
    assert "Traceback" not in result.output
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ")
    for line in lines:
        assert line in result.stderr, result.stderr
    return result.stderr


# ---------------------------------------------------------------- writing outside


PATHLIKE = ["../escape", "../../escape", "a/b", "./x/../../y", "..\\win", "..", ".", "nul\x00"]


def test_source_names_like_paths_are_only_data(project, composer_cache_env):
    """Source names are never file names: such a manifest builds, into its output folder only."""
    absolute = str(project.parent.parent / "abs-escape")  # in the watched area
    names = [*PATHLIKE, absolute]
    manifest = write_manifest(
        project,
        [source(name) for name in names],
        formats=[{"name": f"f{i}", "template": "chatml"} for i in range(len(names))],
        dedup={"key": "none"},
    )
    watch = Watch(project.parent, composer_cache_env)
    result = invoke("build", str(manifest), "-q")
    assert result.exit_code == 0, result.output
    out = project / "out" / "t"
    assert watch.outside(out, composer_cache_env) == []
    assert files_in(out) == output_files(*(f"f{i}" for i in range(len(names))))
    report = json.loads((out / "report.json").read_text())
    assert [s["name"] for s in report["sources"]] == names
    assert not Path(absolute).exists()


@pytest.mark.parametrize("name", [*PATHLIKE, "/abs/escape", "-dash"])
def test_format_names_like_paths_are_refused(project, name):
    """A format's name names its output folder: anything but a plain name is refused."""
    manifest = write_manifest(project, [source()], formats=[{"name": name, "template": "chatml"}])
    assert_refused(invoke("build", str(manifest), "-q"), "formats[0].name", "output folder")
    assert not (project / "out").exists()


@pytest.mark.parametrize(
    "name", ["../escape", "../../escape", "/abs/escape", "a/b", "a\\b", ".", "..", "", "a\x00b"]
)
def test_a_manifest_name_that_is_not_a_folder_name_is_refused(project, composer_cache_env, name):
    """The name is the default output folder `out/<name>`: one that would put it elsewhere
    (or hold a NUL) is a manifest error naming the key, and nothing is written."""
    manifest = write_manifest(project, [source()], name=name)
    watch = Watch(project.parent, composer_cache_env)
    result = invoke("build", str(manifest), "-q")
    assert_refused(result, ": name: ", "cannot name the output folder out/<name>")
    assert watch.outside() == []


def test_with_an_output_dir_the_name_is_only_a_label(project, composer_cache_env):
    manifest = write_manifest(project, [source()], name="../../escape", output={"dir": "built"})
    watch = Watch(project.parent, composer_cache_env)
    result = invoke("build", str(manifest), "-q")
    assert result.exit_code == 0, result.output
    assert watch.outside(project / "built", composer_cache_env) == []
    assert json.loads((project / "built" / "report.json").read_text())["name"] == "../../escape"


def test_an_output_dir_with_a_nul_is_refused(project, composer_cache_env):
    manifest = write_manifest(project, [source()], output={"dir": "out\x00/x"})
    watch = Watch(project.parent, composer_cache_env)
    result = invoke("build", str(manifest), "-q")
    assert_refused(result, "output.dir: a path cannot hold a NUL character")
    assert watch.outside() == []


def test_the_output_folder_is_the_only_place_written_with_o(project, composer_cache_env):
    """-o names the output folder; its parents are made, nothing beside it is left."""
    manifest = write_manifest(project, [source()])
    target = project.parent / "elsewhere" / "deep" / "mine"
    watch = Watch(project.parent, composer_cache_env)
    result = invoke("build", str(manifest), "-o", str(target), "-q")
    assert result.exit_code == 0, result.output
    assert watch.outside(target, composer_cache_env) == []
    assert sorted(p.name for p in target.parent.iterdir()) == ["mine"]  # no temp folders


def test_templates_and_vars_from_outside_are_read_never_written(project, composer_cache_env):
    """templates_dir and template paths outside the manifest's folder (relative with `..` and
    absolute), and vars that look like paths: read, rendered as text, nothing written."""
    shared = project.parent / "shared"
    shared.mkdir()
    (shared / "plain.jinja").write_text(
        "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant: {% endif %}",
        "utf-8",
    )
    (shared / "file.jinja").write_text((shared / "plain.jinja").read_text(), "utf-8")
    manifest = write_manifest(
        project,
        [source()],
        templates_dir=["../shared", str(shared)],
        formats=[
            {"name": "plain"},
            {"name": "relative", "template": "../shared/file.jinja"},
            {"name": "absolute", "template": str(shared / "file.jinja")},
            {"name": "llama2", "vars": {"bos_token": "../../escape/", "eos_token": "/etc/x"}},
        ],
    )
    watch = Watch(project.parent, composer_cache_env)
    result = invoke("build", str(manifest), "-q")
    assert result.exit_code == 0, result.output
    out = project / "out" / "t"
    assert watch.outside(out, composer_cache_env) == []
    assert files_in(out) == output_files("plain", "relative", "absolute", "llama2")


def test_a_templates_dir_that_does_not_exist_is_refused_not_made(project, composer_cache_env):
    missing = project.parent / "nowhere"
    manifest = write_manifest(project, [source()], templates_dir=["../nowhere"])
    watch = Watch(project.parent, composer_cache_env)
    result = invoke("build", str(manifest), "-q")
    assert_refused(result, "templates_dir: no such folder: ")
    assert watch.outside() == []
    assert not missing.exists()


# ---------------------------------------------------------------- the Jinja sandbox

BODY = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"


@pytest.mark.parametrize(
    ("expression", "why"),
    [
        ("{{ cycler.__init__.__globals__.os.system('touch PWNED') }}", "unsafe"),
        ("{{ joiner.__init__.__globals__.__builtins__.open('PWNED', 'w') }}", "unsafe"),
        ("{{ namespace.__init__.__globals__ }}", "unsafe"),
        ("{{ lipsum.__globals__['os'].popen('touch PWNED').read() }}", "unsafe"),
        ("{{ self._TemplateReference__context }}", "unsafe"),
        ("{{ range.__self__ }}", "no attribute '__self__'"),
        ("{{ open('PWNED', 'w') }}", "'open' is undefined"),
        ("{% include 'SECRET_PATH' %}", "no loader"),
        ("{% extends 'SECRET_PATH' %}", "no loader"),
    ],
)
def test_a_template_reaching_outside_its_sandbox_is_refused(
    project, composer_cache_env, expression, why
):
    secret = project.parent / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT", "utf-8")
    (project / "evil.jinja").write_text(
        expression.replace("SECRET_PATH", str(secret)) + BODY, "utf-8"
    )
    manifest = write_manifest(
        project, [source()], formats=[{"name": "evil", "template": "evil.jinja"}]
    )
    watch = Watch(project.parent, composer_cache_env)
    result = invoke("build", str(manifest), "-q")
    stderr = assert_refused(result, "formats[0]: ", str(project / "evil.jinja"), why)
    assert "TOP-SECRET-CONTENT" not in stderr
    assert watch.outside() == []
    assert not list(project.parent.rglob("PWNED"))


def test_a_template_that_breaks_out_only_on_some_data_fails_the_build_cleanly(
    project, composer_cache_env
):
    """Validation renders probe conversations; the unsafe branch runs only on a real row,
    at build time: the build fails with the sandbox's error and writes no output."""
    write_jsonl(project / "data.jsonl", [*ROWS, {"instruction": "TRIGGER", "output": "x"}])
    (project / "sly.jinja").write_text(
        "{% for m in messages %}{% if m.content == 'TRIGGER' %}"
        "{{ cycler.__init__.__globals__.os.system('touch PWNED') }}{% endif %}"
        "{{ m.role }}: {{ m.content }}\n{% endfor %}",
        "utf-8",
    )
    manifest = write_manifest(
        project, [source()], formats=[{"name": "sly", "template": "sly.jinja"}]
    )
    assert invoke("validate", str(manifest)).exit_code == 0  # the probes do not trigger it
    watch = Watch(project.parent, composer_cache_env)
    result = invoke("build", str(manifest), "-q")
    assert_refused(
        result,
        f"{project / 'sly.jinja'}: cannot render format 'sly': SecurityError: ",
        "is unsafe",
    )
    out = project / "out" / "t"
    assert watch.outside(out, composer_cache_env) == []
    assert not (project / "out").exists() or not any((project / "out").iterdir())  # no temp
    assert not list(project.parent.rglob("PWNED"))


# ---------------------------------------------------------------- YAML

PYTHON_TAGS = [
    '!!python/object/apply:os.system ["touch PWNED"]',
    '!!python/object/new:os.system ["touch PWNED"]',
    "!!python/object/apply:builtins.open [PWNED, w]",
    "!!python/name:os.system",
    "!!python/module:os",
]


@pytest.mark.parametrize("tag", PYTHON_TAGS)
def test_a_python_tag_in_the_manifest_is_an_error_not_a_call(project, composer_cache_env, tag):
    manifest = write_manifest_text(
        project,
        f"""\
        name: t
        seed: {tag}
        sources:
          - {{name: s, plugin: alpaca, path: data.jsonl}}
        """,
    )
    watch = Watch(project.parent, composer_cache_env)
    for command in ("validate", "build"):
        result = invoke(command, str(manifest))
        assert_refused(result, f"{manifest}:2: invalid YAML: ", "could not determine a constructor")
    assert watch.outside() == []
    assert not list(project.parent.rglob("PWNED"))


@pytest.mark.parametrize("tag", PYTHON_TAGS[:2])
def test_a_python_tag_in_a_template_settings_comment_is_an_error(project, composer_cache_env, tag):
    (project / "tagged.jinja").write_text(
        f"{{#- composer\ndescription: {tag}\n-#}}\n" + BODY, "utf-8"
    )
    manifest = write_manifest(
        project, [source()], formats=[{"name": "tagged", "template": "tagged.jinja"}]
    )
    watch = Watch(project.parent, composer_cache_env)
    result = invoke("build", str(manifest), "-q")
    assert_refused(result, "formats[0]: ", "invalid settings comment")
    assert watch.outside() == []
    assert not list(project.parent.rglob("PWNED"))


# ---------------------------------------------------------------- credentials

TOKEN = "hf_SECRETSECRETSECRET"


@pytest.fixture
def token(monkeypatch):
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.setenv(name, TOKEN)
    return TOKEN


def secrets_in(*folders: Path) -> list[str]:
    """Every file under `folders` whose bytes hold SECRET."""
    return [
        str(p)
        for folder in folders
        for p in sorted(folder.rglob("*"))
        if p.is_file() and b"SECRET" in p.read_bytes()
    ]


def test_a_token_in_the_environment_is_written_nowhere(project, composer_cache_env, token):
    """A path source and a hub source (a local folder in hub layout), with HF_TOKEN set: the
    token is in no output file, no cache entry, the cache log, or the command's output."""
    hub = project / "org_set"
    hub.mkdir()
    write_jsonl(hub / "train.jsonl", [{"instruction": "Hub question?", "output": "Yes."}])
    write_jsonl(project / "bad.jsonl", [*ROWS, "{not json", {"instruction": "q", "output": ""}])
    manifest = write_manifest(
        project,
        [source("local", path="bad.jsonl"), source("hub", path=None, hub=str(hub))],
        output={"jsonl": True, "json": True},
    )
    del manifest  # written; the build reads it
    result = invoke("build", str(project / "manifest.yaml"))
    assert result.exit_code == 0, result.output
    out = project / "out" / "t"
    assert {"report.json", "report.md", "report.html", "README.md", "composer.lock"} <= files_in(
        out
    )
    assert json.loads((out / "report.json").read_text())["totals"]["rejected"] == 2
    assert (composer_cache_env / "log.jsonl").is_file()
    assert "SECRET" not in result.output
    assert secrets_in(out, composer_cache_env) == []
    # Built again from the cache: the same.
    result = invoke("build", str(project / "manifest.yaml"))
    assert result.exit_code == 0 and "SECRET" not in result.output
    assert secrets_in(out, composer_cache_env) == []


@pytest.mark.parametrize(
    ("keys", "where", "masked"),
    [
        ({"path": "https://user:SECRET1@host/data.jsonl"}, "path", "https://***@host/data.jsonl"),
        ({"path": ["data.jsonl", "data.jsonl?token=SECRET2"]}, "path", "data.jsonl?token=***"),
        ({"path": None, "hub": "https://user:SECRET3@host/ds"}, "hub", "https://***@host/ds"),
        ({"path": None, "hub": "org/ds?access_token=SECRET4"}, "hub", "org/ds?access_token=***"),
    ],
)
def test_credentials_in_a_path_or_hub_are_refused_and_never_shown(
    project, composer_cache_env, token, keys, where, masked
):
    """Composer cannot keep them out of messages and reports (the hub id is shown as the
    upstream), so it refuses them up front, showing them masked."""
    manifest = write_manifest(project, [source(**keys)])
    watch = Watch(project.parent, composer_cache_env)
    result = invoke("build", str(manifest), "-q")
    stderr = assert_refused(result, f"sources[0].{where}: {masked} holds credentials")
    assert "SECRET" not in stderr
    assert watch.outside() == []


def test_a_local_folder_spelled_like_a_url_with_credentials_is_refused(project, composer_cache_env):
    """`https://user:SECRET@host/data.jsonl` as a local path (folders `https:` and
    `user:SECRET@host`, which pathlib reaches): before the check, it built and wrote the
    password into report.json, README.md and composer.lock."""
    folder = project / "https:" / "user:SECRET5@host"
    folder.mkdir(parents=True)
    write_jsonl(folder / "data.jsonl", ROWS)
    manifest = write_manifest(project, [source(path="https://user:SECRET5@host/data.jsonl")])
    watch = Watch(project.parent, composer_cache_env)
    result = invoke("build", str(manifest), "-q")
    stderr = assert_refused(result, "sources[0].path: https://***@host/data.jsonl holds")
    assert "SECRET" not in stderr
    assert watch.outside() == []


def test_credentials_in_a_benchmark_path_are_refused(project, composer_cache_env):
    manifest = write_manifest(
        project,
        [source()],
        decontaminate={
            "benchmarks": [
                {"name": "mine", "path": "https://u:SECRET6@host/b.jsonl", "fields": ["q"]}
            ],
            "embedding": False,
        },
    )
    result = invoke("validate", str(manifest))
    stderr = assert_refused(result, "decontaminate.benchmarks[0].path: https://***@host/b.jsonl")
    assert "SECRET" not in stderr


def test_a_secret_in_a_wrongly_typed_key_is_masked(project, composer_cache_env):
    manifest = write_manifest(project, [source(path=None, hub=["https://u:SECRET7@host/ds"])])
    stderr = assert_refused(invoke("validate", str(manifest)), "sources[0].hub: expected a string")
    assert "SECRET" not in stderr and "***@host" in stderr


def test_data_files_with_credentials_fail_offline_without_showing_them(
    project, composer_cache_env, token
):
    """data_files URLs may carry a signature (the lock keeps them masked, see test_lock);
    offline, the build fails, and neither the message nor any file holds the secret."""
    hub = project / "org_set"
    hub.mkdir()
    write_jsonl(hub / "train.jsonl", ROWS)
    url = "https://user:SECRET8@host/train.jsonl?token=SECRET9"
    manifest = write_manifest(
        project, [source(path=None, hub=str(hub), data_files={"train": [url]})]
    )
    watch = Watch(project.parent, composer_cache_env)
    result = invoke("build", str(manifest), "-q")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "SECRET" not in result.output
    assert watch.outside(project / "out" / "t", composer_cache_env) == []
    assert secrets_in(project.parent / "cwd", composer_cache_env) == []
    assert not (project / "out" / "t").exists()


# ---------------------------------------------------------------- trust_remote_code


def test_trust_remote_code_reaches_datasets_only_for_the_source_that_asks(
    project, composer_cache_env, monkeypatch
):
    """Two hub sources (local folders), one with trust_remote_code: the other's load never
    gets it; the one that asks gets it only from a `datasets` that still runs scripts (< 4),
    which is the only one where it means anything. (A spy that calls the real function.)"""
    import datasets

    from composer.readers import _runs_scripts

    calls = []
    real = datasets.load_dataset

    def spy(path, *args, **kwargs):
        calls.append((path, kwargs.get("trust_remote_code")))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(datasets, "load_dataset", spy)
    folders = {}
    for name in ("plain", "trusted"):
        folders[name] = project / name
        folders[name].mkdir()
        write_jsonl(folders[name] / "train.jsonl", [{"instruction": f"{name}?", "output": "a"}])
    manifest = write_manifest(
        project,
        [
            source("plain", path=None, hub=str(folders["plain"])),
            source("trusted", path=None, hub=str(folders["trusted"]), trust_remote_code=True),
        ],
    )
    # One worker: the spy lives in this process, and two hub sources would convert on workers.
    result = invoke("build", str(manifest), "-q", "--no-cache", "--workers", "1")
    assert result.exit_code == 0, result.output
    expected = True if _runs_scripts(datasets.__version__) else None
    assert sorted(calls) == [(str(folders["plain"]), None), (str(folders["trusted"]), expected)]
