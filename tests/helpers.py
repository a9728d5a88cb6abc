"""Helpers the test modules share: the CLI driver, writers of data files and manifests,
and readers of what a build writes.

Import them with `from tests.helpers import ...`; tests/__init__.py makes `tests` a package.
"""

from __future__ import annotations

import json
import textwrap
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import yaml
from click.testing import CliRunner, Result

from composer.cli import cli

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "manifests" / "demo.yaml"


# ---------------------------------------------------------------- the command line


def invoke(*args: str) -> Result:
    """Run `composer ARGS...` in-process; an exception that is not click's propagates."""
    return CliRunner().invoke(cli, list(args), prog_name="composer", catch_exceptions=False)


def assert_user_error(result: Result, message: str) -> None:
    """Exit code 2, exactly `Error: <message>` on stderr, nothing on stdout, no traceback."""
    assert "Traceback" not in result.output
    assert result.exit_code == 2, result.output
    assert result.stderr == f"Error: {message}\n"
    assert result.stdout == ""


# ---------------------------------------------------------------- writers


def write_jsonl(path: Path, rows: list[dict | str]) -> str:
    """One JSON line per row; a str row is written as it is (to break a line on purpose).

    Returns the file's name, for a manifest's `path:` beside it.
    """
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path.name


def write_manifest(
    folder: Path, sources: list[dict], filename: str = "manifest.yaml", **manifest
) -> Path:
    """folder/filename, dumped from `sources` and top-level keys.

    The manifest is named `t`, with seed 42 and formats [chatml], unless `manifest` says
    otherwise; relative `path`s in `sources` resolve beside it.
    """
    data = {"name": "t", "seed": 42, "sources": sources, "formats": ["chatml"], **manifest}
    path = folder / filename
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def write_manifest_text(folder: Path, text: str, filename: str = "manifest.yaml") -> Path:
    """folder/filename holding `text`, dedented (so it can be written indented in a test)."""
    path = folder / filename
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# ---------------------------------------------------------------- readers


def read_parquet(path: Path) -> list[dict]:
    """Every row of a parquet file, as dicts."""
    return pq.read_table(path).to_pylist()


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder`, by relative (POSIX) path, with its bytes."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def assert_accounted(outdir: Path) -> dict:
    """Every row of every source is accounted for in outdir's report.json, and rejected.jsonl
    matches the funnel: read = kept + filtered + duplicates + near_duplicates + contaminated +
    rejected (+ the rows a message tree joined into other rows' records, `linked`, and the
    rows a plugin takes nothing from by design, `left_out`).

    Every record is accounted for too: records = filtered + duplicates + near_duplicates +
    contaminated + kept (after_dedup - contaminated), and each total is the sum of the
    sources'. A text source's chunking makes several records of one row: it is checked from
    its records on. Returns the report.
    """
    from composer.report import STAGES

    report = json.loads((outdir / "report.json").read_text(encoding="utf-8"))
    totals = report["totals"]
    for k in (*STAGES, "linked", "left_out", "packed"):
        assert totals[k] == sum(f[k] for f in report["sources"]), k
    lines = (outdir / "rejected.jsonl").read_text(encoding="utf-8").splitlines()
    rejected = [json.loads(line) for line in lines]
    for f in report["sources"]:
        kept = f["after_dedup"] - f["contaminated"]
        assert kept >= 0, f
        made = kept + f["filtered"] + f["duplicates"] + f["near_duplicates"] + f["contaminated"]
        assert made == f["records"], f
        assert sum(f["lost_to"].values()) == f["duplicates"], f
        assert sum(f["near_lost_to"].values()) == f["near_duplicates"], f
        if f["kind"] != "text":
            assert f["rows_read"] == made + f["rejected"] + f["linked"] + f["left_out"], f
        mine = [r for r in rejected if r["source"] == f["name"]]
        assert len(mine) == f["rejected"], (f["name"], len(mine), f["rejected"])
        reasons: dict[str, int] = {}
        for r in mine:
            reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
            assert r["where"] and r["detail"], r
        assert reasons == f["rejected_by_reason"], (reasons, f["rejected_by_reason"])
    return report


def uuid5(text: str) -> str:
    """uuid5 of `text` in the OID namespace, computed here without `composer`."""
    return str(uuid.uuid5(uuid.NAMESPACE_OID, text))


def convert_upstream(tmp_path: Path, plugin: str, rows: list[dict], **kwargs):
    """Run a plugin the way the build does, on `rows` written in the upstream schema to a
    file in tmp_path (see `composer.testing.convert_rows`: suffix, inputs, seed, and source
    keys such as options, columns or opt_in). Returns a `Converted`: `.records` (a pyarrow
    table) and `.rejections`."""
    from composer.testing import convert_rows

    return convert_rows(plugin, rows, folder=tmp_path, **kwargs)


def read_rendered(out: Path, kind: str, split: str = "train") -> list[dict]:
    """Every format's rendered rows of one kind and split (OUT/formats/<format>/<kind>/),
    each with its `format` added, formats in name order."""
    rows = []
    for path in sorted((out / "formats").glob(f"*/{kind}/{split}.parquet")):
        fmt = path.parent.parent.name
        rows += [{**r, "format": fmt} for r in read_parquet(path)]
    return rows


CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def chat_tokenizer(folder: Path, template: str = CHATML) -> Path:
    """The packaged MiniLM's tokenizer made a chat model's: ChatML's markers as tokens, the
    end token `<|im_end|>`, a chat template, no BERT [CLS]/[SEP] around every text; saved
    to `folder` (a tokenizer a format can name, and one a tiny model trains with)."""
    from transformers import AutoTokenizer

    from composer.embeddings import DEFAULT_MODEL, model_path

    tokenizer = AutoTokenizer.from_pretrained(model_path(DEFAULT_MODEL))
    tokenizer.add_special_tokens(
        {"additional_special_tokens": ["<|im_start|>", "<|im_end|>"], "eos_token": "<|im_end|>"}
    )
    tokenizer.chat_template = template
    tokenizer.save_pretrained(folder)
    path = folder / "tokenizer.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["post_processor"] = None
    path.write_text(json.dumps(config), encoding="utf-8")
    path = folder / "tokenizer_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"  # tokenizer.json as it is
    path.write_text(json.dumps(config), encoding="utf-8")
    return folder


def tiny_llama(tokenizer):
    """A 2-layer Llama with hidden size 32 for `tokenizer`, built from a config (seeded)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return LlamaForCausalLM(config)
