"""Trainer configs written beside a build's files, so that a user copies them and trains.

- `dataset_info.json` for LLaMA-Factory (`dataset_dir:` this folder): one entry per shape
  and split, each naming one file (a folder would merge train and validation): sharegpt
  entries with role/content tags for the conversations and the pairs (`ranking: true`),
  an alpaca entry with its columns;
- `axolotl/sft.yaml`, `axolotl/alpaca.yaml`, `axolotl/dpo.yaml`: `datasets:` and
  `test_datasets:` snippets for axolotl's config (paths relative to this folder: run
  axolotl from here, or prefix them).

Only files with rows are named: the loaders fail on an empty parquet file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from composer.shapes import FOLDER

TAGS = {
    "role_tag": "role",
    "content_tag": "content",
    "user_tag": "user",
    "assistant_tag": "assistant",
    "observation_tag": "tool",
    "system_tag": "system",
}
ALPACA_COLUMNS = {
    "prompt": "instruction",
    "query": "input",
    "response": "output",
    "system": "system",
}
MESSAGE_FIELDS = {"role": "role", "content": "content"}


def _files(outputs: dict[str, int], shape: str) -> dict[str, str]:
    """split -> path of a shape's files that have rows."""
    prefix = FOLDER[shape] + "/"
    return {
        path[len(prefix) :].removesuffix(".parquet"): path
        for path, rows in outputs.items()
        if rows and path.startswith(prefix) and path.endswith(".parquet")
    }


def dataset_info(outputs: dict[str, int]) -> dict[str, dict[str, Any]]:
    """LLaMA-Factory's dataset_info.json: `sft_<split>`, `alpaca_<split>`, `dpo_<split>`."""
    info: dict[str, dict[str, Any]] = {}
    for split, path in _files(outputs, "messages").items():
        info[f"sft_{split}"] = {
            "file_name": path,
            "formatting": "sharegpt",
            "columns": {"messages": "messages"},
            "tags": TAGS,
        }
    for split, path in _files(outputs, "alpaca").items():
        info[f"alpaca_{split}"] = {"file_name": path, "columns": ALPACA_COLUMNS}
    for split, path in _files(outputs, "pairs").items():
        info[f"dpo_{split}"] = {
            "file_name": path,
            "formatting": "sharegpt",
            "ranking": True,
            "columns": {
                "messages": "prompt",
                "chosen": "chosen_message",
                "rejected": "rejected_message",
            },
            "tags": TAGS,
        }
    return info


def _axolotl_entry(path: str, shape: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"path": path, "ds_type": "parquet", "split": "train"}
    if shape == "messages":
        entry.update(
            type="chat_template",
            field_messages="messages",
            message_property_mappings=dict(MESSAGE_FIELDS),
            roles_to_train=["assistant"],
        )
    elif shape == "alpaca":
        entry["type"] = "alpaca"
    else:
        entry.update(
            type="chat_template.default",
            field_messages="prompt",
            field_chosen="chosen",
            field_rejected="rejected",
            message_property_mappings=dict(MESSAGE_FIELDS),
        )
    return entry


def axolotl_configs(outputs: dict[str, int]) -> dict[str, dict[str, Any]]:
    """File name -> axolotl config snippet: train files as `datasets`, validation as
    `test_datasets` (axolotl then takes no val_set_size split of the training data)."""
    configs = {}
    for name, shape in (("sft", "messages"), ("alpaca", "alpaca"), ("dpo", "pairs")):
        files = _files(outputs, shape)
        if "train" not in files:
            continue
        config: dict[str, Any] = {}
        if shape == "pairs":
            config["rl"] = "dpo"
        config["datasets"] = [_axolotl_entry(files["train"], shape)]
        if "validation" in files:
            config["test_datasets"] = [_axolotl_entry(files["validation"], shape)]
        configs[f"{name}.yaml"] = config
    return configs


def write_trainer_configs(folder: Path, outputs: dict[str, int]) -> None:
    """dataset_info.json and axolotl/*.yaml into a build's output folder."""
    info = dataset_info(outputs)
    if info:
        (folder / "dataset_info.json").write_text(
            json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    configs = axolotl_configs(outputs)
    if configs:
        (folder / "axolotl").mkdir(exist_ok=True)
    for name, config in configs.items():
        header = (
            f"# axolotl: {name.removesuffix('.yaml')} data of this build. Paths are relative "
            "to the build's folder: run axolotl from there, or prefix them.\n"
        )
        text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=1000)
        (folder / "axolotl" / name).write_text(header + text, encoding="utf-8")
