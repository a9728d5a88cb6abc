"""The demo build's files, read by TRL's real trainers as they are: no renaming, no filtering.

A tiny Llama (2 layers, hidden size 32) built from a config, and a tokenizer made from the
packaged MiniLM's with a ChatML chat template, train one step on CPU from each file set a
user would hand to TRL: the SFT conversations (`messages`), one format's rendered rows
(`prompt`/`completion`), and the preference pairs (`prompt`/`chosen`/`rejected`).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

import composer
from tests.helpers import DEMO, chat_tokenizer, tiny_llama

pytest.importorskip("trl")


@pytest.fixture(scope="module")
def demo_build(tmp_path_factory):
    return composer.build(DEMO, output_dir=tmp_path_factory.mktemp("demo") / "out").output_dir


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(model factory, tokenizer): a fresh 2-layer Llama for each trainer."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(chat_tokenizer(tmp_path_factory.mktemp("tok")))
    return partial(tiny_llama, tokenizer), tokenizer


def parquet(out: Path, folder: str):
    """A file set as `datasets` loads it, train and validation apart."""
    from datasets import load_dataset

    files = {s: str(out / folder / f"{s}.parquet") for s in ("train", "validation")}
    return load_dataset("parquet", data_files=files)


def one_step(trainer) -> dict:
    result = trainer.train()
    assert result.global_step == 1
    return trainer.evaluate()


def common(tmp_path: Path) -> dict:
    return {
        "output_dir": str(tmp_path / "run"),
        "max_steps": 1,
        "per_device_train_batch_size": 4,
        "per_device_eval_batch_size": 4,
        "report_to": "none",
        "save_strategy": "no",
        "use_cpu": True,
        "dataloader_num_workers": 0,
    }


def sft_trainer(out: Path, folder: str, tiny, tmp_path: Path):
    """TRL's SFTTrainer on a file set's train and validation files, as they are."""
    from trl import SFTConfig, SFTTrainer

    model, tokenizer = tiny
    data = parquet(out, folder)
    trainer = SFTTrainer(
        model=model(),
        args=SFTConfig(**common(tmp_path), max_length=256),
        train_dataset=data["train"],
        eval_dataset=data["validation"],
        processing_class=tokenizer,
    )
    return trainer, data, tokenizer


def test_sft_trainer_reads_the_conversations(demo_build, tiny, tmp_path):
    trainer, _, tokenizer = sft_trainer(demo_build, "sft/messages", tiny, tmp_path)
    # The chat template saw system/user/assistant roles, never ShareGPT's human/gpt.
    first = tokenizer.decode(trainer.train_dataset[0]["input_ids"])
    assert "<|im_start|> user" in first and "<|im_start|> assistant" in first
    assert "human" not in first.split("<|im_start|>")[1][:8]
    metrics = one_step(trainer)
    assert metrics["eval_loss"] > 0


def test_sft_trainer_reads_one_formats_prompt_completion_rows(demo_build, tiny, tmp_path):
    trainer, data, tokenizer = sft_trainer(demo_build, "formats/vicuna/sft", tiny, tmp_path)
    assert not any(c.endswith("</s>") for c in data["train"]["completion"])
    row = trainer.train_dataset[0]
    ids = row["input_ids"]
    # One end token: the tokenizer's, not the template's </s> before it.
    assert ids[-1] == tokenizer.eos_token_id and ids.count(tokenizer.eos_token_id) == 1
    # The loss is on the completion only: the prompt's labels are masked.
    assert row["labels"][0] == -100 and row["labels"][-1] == tokenizer.eos_token_id
    one_step(trainer)


def test_dpo_trainer_reads_the_pairs_once_each(demo_build, tiny, tmp_path):
    from trl import DPOConfig, DPOTrainer

    model, tokenizer = tiny
    data = parquet(demo_build, "dpo/pairs")
    ids = data["train"]["id"]
    assert len(ids) == len(set(ids))  # once per pair, not once per format
    trainer = DPOTrainer(
        model=model(),
        ref_model=model(),  # a model built in code has no path TRL could copy it from
        args=DPOConfig(**common(tmp_path), max_length=256),
        train_dataset=data["train"],
        eval_dataset=data["validation"],
        processing_class=tokenizer,
    )
    assert trainer.train_dataset.num_rows == len(ids)
    metrics = one_step(trainer)
    assert "eval_rewards/chosen" in metrics
