"""The manifest is validated up front: every problem as `line N: key.path: message`.

Each bad manifest is checked twice: through the library (`load_manifest` raises a
`ManifestError` whose `problems` are the exact lines) and through `composer validate`, which
must exit with code 2 and print `Error: ...` on stderr, never a traceback. The manifests and
the small data files they point at are written by each test into its tmp_path.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from composer import Manifest, UserError, load_manifest
from composer.errors import ManifestError
from composer.formats import available_formats
from tests.helpers import assert_user_error, invoke, write_manifest_text

ROW = '{"instruction": "Say hi.", "output": "Hi!"}\n'

# A valid manifest; most cases below add one line to it (line 6) or change one line.
BASE = """\
name: t
sources:
  - name: a
    plugin: alpaca
    path: a.jsonl
"""


def write_manifest(folder: Path, text: str) -> Path:
    """Write the manifest (dedented) and the one data file the cases point at, a.jsonl."""
    (folder / "a.jsonl").write_text(ROW, encoding="utf-8")
    return write_manifest_text(folder, text)


def problems(path: Path) -> list[str]:
    """The problem lines `load_manifest` reports for a manifest that must not load."""
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert info.value.path == str(path)
    return info.value.problems


def manifest_error(path: Path, lines: list[str]) -> str:
    return f"{path}: invalid manifest\n" + "\n".join(f"  {line}" for line in lines)


FORMATS = ", ".join(sorted(available_formats([])))
SUPPORTED = "(use .jsonl, .json, .csv, .parquet (.pq), .arrow or a save_to_disk folder)"
SAMPLE_SHAPES = "{count|fraction|factor: n}"

# (manifest, the exact problem lines). `{dir}` stands for the manifest's resolved folder.
CASES = {
    # ---------------------------------------------------------------- unknown keys
    "unknown top-level key": (
        """\
        name: t
        sorces: []
        sources:
          - name: a
            plugin: alpaca
            path: a.jsonl
        """,
        ["line 2: sorces: unknown key (did you mean 'sources'?)"],
    ),
    "unknown source key": (
        BASE + "    confidance: 2\n",
        ["line 6: sources[0].confidance: unknown key (did you mean 'confidence'?)"],
    ),
    "unknown key in a source's system_prompt": (
        BASE + "    system_prompt: {defualt: Be brief.}\n",
        ["line 6: sources[0].system_prompt.defualt: unknown key (did you mean 'default'?)"],
    ),
    "unknown key in a format": (
        BASE + "formats: [{name: chatml, covrage: 0.5}]\n",
        ["line 6: formats[0].covrage: unknown key (did you mean 'coverage'?)"],
    ),
    "unknown key in split": (
        BASE + "split: {valdation: 0.1}\n",
        ["line 6: split.valdation: unknown key (did you mean 'validation'?)"],
    ),
    "unknown key in output": (
        BASE + "output: {dri: out}\n",
        ["line 6: output.dri: unknown key (did you mean 'dir'?)"],
    ),
    "unknown key with nothing close": (
        BASE + "zzz: 1\n",
        ["line 6: zzz: unknown key"],
    ),
    # ---------------------------------------------------------------- wrong types
    "wrong type names the list index (the issue's example)": (
        BASE + "  - {name: b, plugin: alpaca, path: a.jsonl}\n"
        "  - name: c\n    plugin: alpaca\n    path: a.jsonl\n    confidence: high\n",
        ["line 10: sources[2].confidence: expected a number, got 'high'"],
    ),
    "boolean is not a number": (
        BASE + "    confidence: true\n",
        ["line 6: sources[0].confidence: expected a number, got True"],
    ),
    "seed must be an integer": (
        BASE + "seed: abc\n",
        ["line 6: seed: expected an integer, got 'abc'"],
    ),
    "name must be a string": (
        "name: 3\n" + BASE.split("\n", 1)[1],
        ["line 1: name: expected a string, got 3"],
    ),
    "sources must be a list": (
        "name: t\nsources: {name: a}\n",
        ["line 2: sources: expected a list, got {'name': 'a'}"],
    ),
    "a source must be a mapping": (
        "name: t\nsources: [a]\n",
        ["line 2: sources[0]: expected a mapping, got 'a'"],
    ),
    "columns must be a mapping": (
        BASE + "    columns: [output]\n",
        ["line 6: sources[0].columns: expected a mapping, got ['output']"],
    ),
    "column names must be strings": (
        BASE + "    columns: {output: 3}\n",
        ["line 6: sources[0].columns.output: expected a string, got 3"],
    ),
    "formats must be a list": (
        BASE + "formats: chatml\n",
        ["line 6: formats: expected a list, got 'chatml'"],
    ),
    "dedup must be a mapping": (
        BASE + "dedup: instruction\n",
        ["line 6: dedup: expected a mapping, got 'instruction'"],
    ),
    "probability above 1": (
        BASE + "system_prompt: {probability: 2}\n",
        ["line 6: system_prompt.probability: expected a number <= 1, got 2"],
    ),
    # ---------------------------------------------------------------- literals
    "dedup.key with did-you-mean": (
        BASE + "dedup: {key: instructoin}\n",
        [
            "line 6: dedup.key: expected one of 'instruction', 'user_turns', 'conversation' or "
            "'none', got 'instructoin' (did you mean 'instruction'?)"
        ],
    ),
    "on_invalid with did-you-mean": (
        BASE + "    on_invalid: skp\n",
        [
            "line 6: sources[0].on_invalid: expected one of 'skip' or 'fail', got 'skp' "
            "(did you mean 'skip'?)"
        ],
    ),
    "render.turns": (
        BASE + "render: {turns: first}\n",
        ["line 6: render.turns: expected one of 'all' or 'last', got 'first'"],
    ),
    # ---------------------------------------------------------------- required keys
    "missing name": (
        BASE.split("\n", 1)[1],
        ["line 1: name: required key is missing"],
    ),
    "missing sources": (
        "name: t\nseed: 1\n",
        ["line 1: sources: required key is missing"],
    ),
    "missing source name": (
        "name: t\nsources:\n  - plugin: alpaca\n    path: a.jsonl\n",
        ["line 3: sources[0].name: required key is missing"],
    ),
    "empty sources": (
        "name: t\nsources: []\n",
        ["line 2: sources: needs at least one entry"],
    ),
    "empty formats": (
        BASE + "formats: []\n",
        ["line 6: formats: needs at least one entry"],
    ),
    # ---------------------------------------------------------------- sample
    "sample: a word": (
        BASE + "    sample: abc\n",
        [f"line 6: sources[0].sample: expected a number, 'Nx' or {SAMPLE_SHAPES}, got 'abc'"],
    ),
    "sample: x without a number": (
        BASE + "    sample: x\n",
        [f"line 6: sources[0].sample: expected a number, 'Nx' or {SAMPLE_SHAPES}, got 'x'"],
    ),
    "sample: a boolean": (
        BASE + "    sample: true\n",
        [f"line 6: sources[0].sample: expected a number or {SAMPLE_SHAPES}, got True"],
    ),
    "sample: a list": (
        BASE + "    sample: [1]\n",
        ["line 6: sources[0].sample: expected a mapping, got [1]"],
    ),
    "sample: two of count, fraction, factor": (
        BASE + "    sample: {count: 1, fraction: 0.5}\n",
        ["line 6: sources[0].sample: give exactly one of count, fraction, factor"],
    ),
    "sample: unknown key": (
        BASE + "    sample: {cnt: 3}\n",
        ["line 6: sources[0].sample.cnt: unknown key (did you mean 'count'?)"],
    ),
    # ---------------------------------------------------------------- split
    "split.validation negative": (
        BASE + "split: {validation: -1}\n",
        ["line 6: split.validation: expected a fraction in [0, 1) or a row count, got -1"],
    ),
    "split.validation 1.5": (
        BASE + "split: {validation: 1.5}\n",
        ["line 6: split.validation: expected a fraction in [0, 1) or a row count, got 1.5"],
    ),
    "split.validation 1.0 is not a fraction below 1": (
        BASE + "split: {validation: 1.0}\n",
        ["line 6: split.validation: expected a fraction in [0, 1) or a row count, got 1.0"],
    ),
    "split must be a mapping": (
        BASE + "split: 0.1\n",
        ["line 6: split: expected a mapping, got 0.1"],
    ),
    # ---------------------------------------------------------------- names and files
    "duplicate source names": (
        BASE + "  - name: a\n    plugin: alpaca\n    path: a.jsonl\n",
        ["line 6: sources[1].name: duplicate source name 'a'"],
    ),
    "path and hub both given": (
        BASE + "    hub: org/data\n",
        ["line 3: sources[0]: give either path or hub, not both"],
    ),
    "missing file": (
        BASE.replace("a.jsonl", "missing.jsonl"),
        ["line 5: sources[0].path: no such file: {dir}/missing.jsonl"],
    ),
    "missing file in a list of paths": (
        BASE.replace("a.jsonl", "[a.jsonl, b.jsonl]"),
        ["line 5: sources[0].path: no such file: {dir}/b.jsonl"],
    ),
    "glob that matches nothing": (
        BASE.replace("a.jsonl", "data/*.jsonl"),
        ["line 5: sources[0].path: no files match 'data/*.jsonl'"],
    ),
    "unsupported file suffix": (
        BASE.replace("a.jsonl", "manifest.yaml"),
        [f"line 5: sources[0].path: unsupported file type: {{dir}}/manifest.yaml {SUPPORTED}"],
    ),
    "no path and no default upstream": (
        "name: t\nsources:\n  - name: a\n    plugin: alpaca\n",
        ["line 3: sources[0]: plugin 'alpaca' has no default upstream: give path or hub"],
    ),
    # ---------------------------------------------------------------- plugins
    "unknown plugin with did-you-mean": (
        BASE.replace("plugin: alpaca", "plugin: alpca"),
        [
            "line 4: sources[0].plugin: unknown plugin 'alpca' (did you mean 'alpaca'?); "
            "`composer sources` lists them"
        ],
    ),
    "unknown plugin taken from the source name": (
        "name: t\nsources:\n  - name: sharegtp\n    path: a.jsonl\n",
        [
            "line 3: sources[0].name: unknown plugin 'sharegtp' (did you mean 'sharegpt'?); "
            "`composer sources` lists them"
        ],
    ),
    "unknown plugin option with did-you-mean": (
        BASE + "    options: {input_separatr: ' '}\n",
        [
            "line 6: sources[0].options.input_separatr: unknown option for plugin 'alpaca' "
            "(did you mean 'input_separator'?); options: input_separator"
        ],
    ),
    "option for a plugin that takes none": (
        BASE.replace("alpaca", "messages") + "    options: {shape: hh}\n",
        ["line 6: sources[0].options.shape: unknown option for plugin 'messages'; options: none"],
    ),
    # ---------------------------------------------------------------- formats
    "unknown format with did-you-mean": (
        BASE + "formats: [chatmll, alpaca]\n",
        [
            f"line 6: formats[0].name: unknown format 'chatmll' (did you mean 'chatml'?); "
            f"available: {FORMATS}"
        ],
    ),
    "unknown template with did-you-mean": (
        BASE + "formats: [{name: mine, template: lama2}]\n",
        [
            f"line 6: formats[0].template: unknown format 'lama2' (did you mean 'llama2'?); "
            f"available: {FORMATS}"
        ],
    ),
    "template file that does not exist": (
        BASE + "formats: [{name: mine, template: mine.jinja}]\n",
        ["line 6: formats[0].template: no such template file: {dir}/mine.jinja"],
    ),
    "duplicate format": (
        BASE + "formats: [chatml, chatml]\n",
        ["line 6: formats[1].name: duplicate format name 'chatml'"],
    ),
    "templates_dir that does not exist": (
        BASE + "templates_dir: my_templates\n",
        ["line 6: templates_dir: no such folder: {dir}/my_templates"],
    ),
    # ---------------------------------------------------------------- line numbers
    "line numbers count comments, blank lines and flow style": (
        """\
        # A comment on line 1
        name: t

        # sources follow
        sources:
          - {name: a, plugin: alpaca, path: a.jsonl}   # line 6

          - name: b
            plugin: alpaca
            path: a.jsonl
            confidence: [1]
        """,
        ["line 11: sources[1].confidence: expected a number, got [1]"],
    ),
}


@pytest.mark.parametrize(("text", "expected"), list(CASES.values()), ids=list(CASES))
def test_invalid_manifest(tmp_path, text, expected):
    path = write_manifest(tmp_path, text)
    expected = [line.replace("{dir}", str(tmp_path.resolve())) for line in expected]
    assert problems(path) == expected
    assert_user_error(invoke("validate", str(path)), manifest_error(path, expected))


def test_several_schema_problems_are_reported_at_once(tmp_path):
    path = write_manifest(
        tmp_path,
        """\
        name: t
        sorces: []
        sources:
          - name: a
            plugin: alpaca
            path: a.jsonl
            confidance: 2
          - name: b
            plugin: alpaca
            path: a.jsonl
            confidence: high
            sample: abc
        dedup: {key: instructoin}
        split: {validation: 1.5}
        """,
    )
    expected = [
        "line 2: sorces: unknown key (did you mean 'sources'?)",
        "line 7: sources[0].confidance: unknown key (did you mean 'confidence'?)",
        "line 11: sources[1].confidence: expected a number, got 'high'",
        f"line 12: sources[1].sample: expected a number, 'Nx' or {SAMPLE_SHAPES}, got 'abc'",
        "line 13: dedup.key: expected one of 'instruction', 'user_turns', 'conversation' or "
        "'none', got 'instructoin' (did you mean 'instruction'?)",
        "line 14: split.validation: expected a fraction in [0, 1) or a row count, got 1.5",
    ]
    assert problems(path) == expected  # every problem, in the order of the lines
    assert_user_error(invoke("validate", str(path)), manifest_error(path, expected))


def test_several_cross_key_problems_are_reported_at_once(tmp_path):
    (tmp_path / "notes.txt").write_text("not data")
    path = write_manifest(
        tmp_path,
        """\
        name: t
        sources:
          - name: a
            plugin: alpca
            path: a.jsonl
          - name: a
            plugin: alpaca
            path: missing.jsonl
          - name: c
            plugin: alpaca
            path: notes.txt
            options: {input_separatr: ' '}
          - name: d
            plugin: sharegpt
            path: a.jsonl
            hub: org/data
        formats: [chatmll]
        templates_dir: nope
        """,
    )
    d = tmp_path.resolve()
    expected = [
        "line 4: sources[0].plugin: unknown plugin 'alpca' (did you mean 'alpaca'?); "
        "`composer sources` lists them",
        "line 6: sources[1].name: duplicate source name 'a'",
        f"line 8: sources[1].path: no such file: {d}/missing.jsonl",
        f"line 11: sources[2].path: unsupported file type: {d}/notes.txt {SUPPORTED}",
        "line 12: sources[2].options.input_separatr: unknown option for plugin 'alpaca' "
        "(did you mean 'input_separator'?); options: input_separator",
        "line 13: sources[3]: give either path or hub, not both",
        f"line 17: formats[0].name: unknown format 'chatmll' (did you mean 'chatml'?); "
        f"available: {FORMATS}",
        f"line 18: templates_dir: no such folder: {d}/nope",
    ]
    assert problems(path) == expected
    assert_user_error(invoke("validate", str(path)), manifest_error(path, expected))


@pytest.mark.parametrize("value", ["-3", "-0.5"])
def test_negative_sample_is_an_error(tmp_path, value):
    path = write_manifest(tmp_path, BASE + f"    sample: {value}\n")
    expected = [f"line 6: sources[0].sample: expected a number >= 0, got {value}"]
    assert problems(path) == expected
    assert_user_error(invoke("validate", str(path)), manifest_error(path, expected))


@pytest.mark.parametrize("command", ["validate", "build", "preview"])
def test_every_command_validates_the_manifest_first(tmp_path, command):
    path = write_manifest(tmp_path, BASE + "    confidence: high\n")
    expected = ["line 6: sources[0].confidence: expected a number, got 'high'"]
    assert_user_error(invoke(command, str(path)), manifest_error(path, expected))
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- files that are no manifest


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("name: t\nsources:\n  - name: a: b\n", 3, "mapping values are not allowed here"),
        ("name: t\nsources: [a, b\nseed: 1\n", 3, "expected ',' or ']', but got ':'"),
        ('name: "t\n', 2, "found unexpected end of stream"),
    ],
    ids=["mapping in a scalar", "unclosed list", "unclosed quote"],
)
def test_invalid_yaml_names_the_line(tmp_path, text, line, problem):
    path = write_manifest(tmp_path, text)
    message = f"{path}:{line}: invalid YAML: {problem}"
    with pytest.raises(UserError) as info:
        load_manifest(path)
    assert str(info.value) == message
    assert_user_error(invoke("validate", str(path)), message)


@pytest.mark.parametrize(
    "text",
    ["- a\n- b\n", "just words\n", "", "# only a comment\n"],
    ids=["list", "scalar", "empty", "comment only"],
)
def test_manifest_that_is_not_a_mapping(tmp_path, text):
    path = write_manifest(tmp_path, text)
    expected = ["expected a mapping of manifest keys at the top level"]
    assert problems(path) == expected
    assert_user_error(invoke("validate", str(path)), manifest_error(path, expected))


def test_manifest_file_that_does_not_exist(tmp_path):
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(UserError, match=r"^.*nowhere\.yaml: no such manifest file$"):
        load_manifest(path)
    assert_user_error(invoke("validate", str(path)), f"{path}: no such manifest file")
    assert_user_error(invoke("build", str(path)), f"{path}: no such manifest file")


def test_manifest_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"latin1\.yaml: cannot read manifest: 'utf-8' codec"):
        load_manifest(path)
    result = invoke("validate", str(path))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {path}: cannot read manifest: ")


def test_manifest_path_that_is_a_folder(tmp_path):
    with pytest.raises(UserError, match="cannot read manifest"):
        load_manifest(tmp_path)
    result = invoke("validate", str(tmp_path))
    assert result.exit_code == 2
    assert "Error: Invalid value for 'MANIFEST'" in result.stderr
    assert "Traceback" not in result.output


# ---------------------------------------------------------------- manifests that load


def test_valid_manifest_loads_with_defaults(tmp_path):
    path = write_manifest(tmp_path, BASE)
    manifest = load_manifest(path)
    assert isinstance(manifest, Manifest)
    assert (manifest.name, manifest.seed, manifest.dedup.key) == ("t", 42, "instruction")
    assert [f.name for f in manifest.formats] == ["alpaca", "vicuna", "chatml", "llama2"]
    assert manifest.split.validation == 0
    assert manifest.path == str(path)
    assert manifest.base_dir == tmp_path.resolve()
    assert manifest.output_dir == tmp_path.resolve() / "out" / "t"
    [source] = manifest.sources
    assert (source.name, source.plugin_name, source.on_invalid) == ("a", "alpaca", "skip")
    assert source.sample is None and source.confidence is None
    result = invoke("validate", str(path))
    assert result.exit_code == 0
    assert result.stdout == f"{path}: ok (1 sources, 4 formats)\n"


def test_plugin_defaults_to_the_source_name(tmp_path):
    path = write_manifest(tmp_path, "name: t\nsources:\n  - name: alpaca\n    path: a.jsonl\n")
    assert load_manifest(path).sources[0].plugin_name == "alpaca"


def test_default_upstream_needs_no_path(tmp_path):
    path = write_manifest(tmp_path, "name: t\nsources:\n  - name: oasst\n")
    assert load_manifest(path).sources[0].plugin_name == "oasst"


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("0.5", {"count": None, "fraction": 0.5, "factor": None}),
        ("1.0", {"count": None, "fraction": 1.0, "factor": None}),
        ("1000", {"count": 1000, "fraction": None, "factor": None}),
        ("0", {"count": 0, "fraction": None, "factor": None}),
        ("2.5", {"count": None, "fraction": None, "factor": 2.5}),
        ("3x", {"count": None, "fraction": None, "factor": 3.0}),
        ("{factor: 2}", {"count": None, "fraction": None, "factor": 2.0}),
    ],
)
def test_sample_forms(tmp_path, value, parsed):
    path = write_manifest(tmp_path, BASE + f"    sample: {value}\n")
    assert load_manifest(path).sources[0].sample.model_dump() == parsed


@pytest.mark.parametrize("value", [0, 0.05, 0.999, 10])
def test_split_validation_fraction_or_count(tmp_path, value):
    path = write_manifest(tmp_path, BASE + f"split: {{validation: {value}}}\n")
    assert load_manifest(path).split.validation == value


def test_format_names_and_mappings_mix(tmp_path):
    templates = tmp_path / "my_templates"
    templates.mkdir()
    (templates / "plain.jinja").write_text("{% for m in messages %}{{ m.content }}{% endfor %}")
    path = write_manifest(
        tmp_path,
        BASE
        + (
            "templates_dir: my_templates\n"
            "formats: [chatml, {name: short, template: alpaca, coverage: 0.5}, plain]\n"
            "output: {dir: built, jsonl: true, json: true}\n"
        ),
    )
    manifest = load_manifest(path)
    assert [(f.name, f.template, f.coverage) for f in manifest.formats] == [
        ("chatml", None, 1.0),
        ("short", "alpaca", 0.5),
        ("plain", None, 1.0),
    ]
    assert manifest.template_dirs() == [templates.resolve()]
    assert (manifest.output.jsonl, manifest.output.json_list) == (True, True)
    assert manifest.output_dir == tmp_path.resolve() / "built"


def test_validate_reads_no_data(tmp_path):
    """`composer validate` checks that files exist, not what is in them."""
    path = write_manifest(tmp_path, BASE)
    (tmp_path / "a.jsonl").write_text("{not json at all\n")
    assert load_manifest(path).sources[0].path == "a.jsonl"
    assert invoke("validate", str(path)).exit_code == 0


# ---------------------------------------------------------------- keys pydantic finds awkward


def test_capitalised_key_gets_a_did_you_mean(tmp_path):
    """Regression: a key starting with a capital was taken for a pydantic model tag (crash)."""
    path = write_manifest(
        tmp_path, BASE.replace("name: t", "name: t\nSeed: 3") + "    Confidence: 2\n"
    )
    expected = [
        "line 2: Seed: unknown key (did you mean 'seed'?)",
        "line 7: sources[0].Confidence: unknown key (did you mean 'confidence'?)",
    ]
    assert problems(path) == expected
    assert_user_error(invoke("validate", str(path)), manifest_error(path, expected))


def test_empty_key_is_an_unknown_key(tmp_path):
    """Regression: an empty key crashed the error formatting (IndexError, exit 1)."""
    path = write_manifest(tmp_path, BASE + '"": 1\n')
    expected = ["line 6: '': unknown key"]
    assert problems(path) == expected
    assert_user_error(invoke("validate", str(path)), manifest_error(path, expected))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            BASE.replace("a.jsonl", "3"),
            "line 5: sources[0].path: expected a string or a list, got 3",
        ),
        (BASE + "templates_dir: 3\n", "line 6: templates_dir: expected a string or a list, got 3"),
        (
            BASE + "split: {validation: true}\n",
            "line 6: split.validation: expected a number, got True",
        ),
    ],
    ids=["path", "templates_dir", "split.validation"],
)
def test_wrong_type_for_a_union_key_is_one_line_on_the_key(tmp_path, text, expected):
    """Regression: union members' tags (`str`, `list[str]`) leaked into the key path."""
    path = write_manifest(tmp_path, text)
    assert problems(path) == [expected]
    assert_user_error(invoke("validate", str(path)), manifest_error(path, [expected]))


def test_duplicate_yaml_key_is_an_error(tmp_path):
    """Regression: YAML keeps the last of two equal keys, silently dropping the first."""
    path = write_manifest(
        tmp_path, BASE + "sources:\n  - name: b\n    plugin: alpaca\n    path: a.jsonl\n"
    )
    message = f"{path}:6: invalid YAML: key 'sources' is given twice (first on line 2)"
    with pytest.raises(UserError) as info:
        load_manifest(path)
    assert str(info.value) == message
    assert_user_error(invoke("validate", str(path)), message)


def test_duplicate_key_in_a_nested_mapping(tmp_path):
    path = write_manifest(tmp_path, BASE + "    confidence: 1\n    confidence: 2\n")
    message = f"{path}:7: invalid YAML: key 'confidence' is given twice (first on line 6)"
    assert_user_error(invoke("validate", str(path)), message)


# ---------------------------------------------------------------- known bugs


def test_non_string_key_names_its_line(tmp_path):
    path = write_manifest(tmp_path, BASE + "1: one\n")
    [problem] = problems(path)
    assert problem.startswith("line 6: 1: ")


def test_validate_reports_schema_and_cross_key_problems_at_once(tmp_path):
    """A wrong value and a missing file, an unknown plugin and format: all in one run."""
    (tmp_path / "a.jsonl").write_text('{"conversations": []}\n')
    (tmp_path / "manifest.yaml").write_text(
        "name: t\n"
        "sources:\n"
        "  - name: s\n"
        "    plugin: sharegpt\n"
        "    path: missing.jsonl\n"
        "    confidence: .nan\n"
        "  - name: b\n"
        "    plugin: nope\n"
        "    path: a.jsonl\n"
        "formats: [chatml, bogus]\n"
        "foo: 1\n"
    )
    result = invoke("validate", str(tmp_path / "manifest.yaml"))
    assert result.exit_code == 2
    lines = [line.split(":")[0] for line in result.stderr.splitlines()[1:]]
    assert lines == ["  line 5", "  line 6", "  line 8", "  line 10", "  line 11"]
    assert "sources[0].path: no such file" in result.stderr
    assert "sources[0].confidence: expected a finite number" in result.stderr
    assert "sources[1].plugin: unknown plugin 'nope'" in result.stderr
    assert "formats[1].name: unknown format 'bogus'" in result.stderr
    assert "foo: unknown key" in result.stderr
