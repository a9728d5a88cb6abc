"""axolotl's dataset loading (what `axolotl preprocess` runs) on a composer build, with the
build's axolotl/*.yaml snippets.

Run by bench/trainers/run.py in axolotl's own virtualenv: OUT MODEL WORK. Each snippet's
`datasets:` and `test_datasets:` (paths made absolute: they are relative to OUT) go into a
config for the tiny model; `load_datasets` (SFT, Alpaca) or `load_preference_datasets`
(DPO) reads them. Prints the rows of each split, the roles the chat template rendered, and
the first training row as the model sees it.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

import yaml
from axolotl.cli.args import PreprocessCliArgs
from axolotl.cli.config import load_cfg
from axolotl.common.datasets import load_datasets, load_preference_datasets

SNIPPETS = ("sft", "alpaca", "dpo")
ROLE = re.compile(r"<\|im_start\|>\s*(\w+)")


def config(out: Path, model: str, work: Path, name: str) -> Path:
    snippet = yaml.safe_load((out / "axolotl" / f"{name}.yaml").read_text(encoding="utf-8"))
    for key in ("datasets", "test_datasets"):
        for entry in snippet.get(key, []):
            entry["path"] = str(out / entry["path"])
    cfg = {
        "base_model": model,
        "chat_template": "tokenizer_default",
        "sequence_len": 1024,
        "micro_batch_size": 1,
        "gradient_accumulation_steps": 1,
        "num_epochs": 1,
        "learning_rate": 1e-5,
        "optimizer": "adamw_torch",
        "output_dir": str(work / name / "run"),
        "dataset_prepared_path": str(work / name / "prepared"),
        "dataset_num_proc": 1,
        **snippet,
    }
    path = work / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


def main(out: str, model: str, work: str) -> int:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    for name in SNIPPETS:
        cfg = load_cfg(str(config(Path(out), model, Path(work), name)))
        load = load_preference_datasets if cfg.rl else load_datasets
        meta = load(cfg=cfg, cli_args=PreprocessCliArgs())
        train, evaluation = meta.train_dataset, meta.eval_dataset
        print(f"--- {name}: axolotl/{name}.yaml")
        print(f"rows: train {len(train)}, validation {len(evaluation) if evaluation else 0}")
        if cfg.rl:
            texts = [r["prompt"] + r["chosen"] for r in train]
            example = {k: train[0][k] for k in ("prompt", "chosen", "rejected")}
        else:
            texts = [tokenizer.decode(r["input_ids"]) for r in train]
            example = texts[0]
        roles = Counter(role for text in texts for role in ROLE.findall(text))
        print(f"roles (train): {dict(roles) or 'none (no chat template: Alpaca prompt)'}")
        print("example:", repr(example))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
