"""LLaMA-Factory's `get_dataset` on a composer build, with the build's dataset_info.json.

Run by bench/trainers/run.py in LLaMA-Factory's own virtualenv: OUT MODEL WORK. For each
entry pair (`sft`, `alpaca`, `dpo`: train and validation), prints the rows each split
loaded, the roles LLaMA-Factory aligned them to, and the first training row as the model
sees it.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
from llamafactory.hparams import get_train_args
from llamafactory.model import load_tokenizer

ENTRIES = (("sft", "sft"), ("alpaca", "sft"), ("dpo", "dpo"))


def roles(model_args, data_args, training_args, stage: str) -> Counter:
    """The roles of the aligned rows (system counted where a row has one)."""
    from llamafactory.data.loader import _get_merged_dataset

    aligned = _get_merged_dataset(data_args.dataset, model_args, data_args, training_args, stage)
    found = Counter()
    for row in aligned:
        found.update(m["role"] for m in row["_prompt"] + row["_response"])
        found["system"] += bool(row["_system"])
    return found


def main(out: str, model: str, work: str) -> int:
    info = json.loads(Path(out, "dataset_info.json").read_text(encoding="utf-8"))
    for name, stage in ENTRIES:
        args = {
            "stage": stage,
            "model_name_or_path": model,
            "dataset_dir": out,
            "dataset": f"{name}_train",
            "eval_dataset": f"{name}_validation",
            "template": "chatml",
            "cutoff_len": 1024,
            "output_dir": f"{work}/{name}",
            "overwrite_cache": True,
            "do_train": True,
            "report_to": "none",
            "use_cpu": True,
        }
        model_args, data_args, training_args, _, _ = get_train_args(args)
        tokenizer_module = load_tokenizer(model_args)
        tokenizer = tokenizer_module["tokenizer"]
        template = get_template_and_fix_tokenizer(tokenizer, data_args)
        # LLaMA-Factory's DPO workflow reads pairs as its reward-model stage does
        data_stage = "rm" if stage == "dpo" else stage
        module = get_dataset(
            template, model_args, data_args, training_args, data_stage, **tokenizer_module
        )
        train, evaluation = module["train_dataset"], module["eval_dataset"]
        key = "input_ids" if stage == "sft" else "chosen_input_ids"
        print(f"--- {name}: {info[f'{name}_train']['file_name']} (stage {stage})")
        print(f"rows: train {train.num_rows}, validation {evaluation.num_rows}")
        print(f"roles (train): {dict(roles(model_args, data_args, training_args, data_stage))}")
        print("example:", repr(tokenizer.decode(train[0][key])))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
