"""axolotl's and LLaMA-Factory's own dataset loaders on the demo build, with its configs.

The two pin versions that conflict with each other and with TRL, so each gets a virtualenv
of its own under bench/.venvs (made on the first run: torch==2.13.0 first, so that pip
takes the CPU build). The demo is built, a tiny model (2-layer Llama, MiniLM's tokenizer
with a ChatML template) saved beside it, and each loader reads the files the build's
configs name, train and validation apart: LLaMA-Factory's `get_dataset` with the build's
`dataset_info.json`, axolotl's `load_datasets` / `load_preference_datasets` (what
`axolotl preprocess` runs) with `axolotl/*.yaml`. Each prints rows, roles and a rendered
example per dataset.

    flock /work/bench.lock python bench/trainers/run.py
    python bench/trainers/run.py --only llamafactory

On 2 shared cores: the first run installs (LLaMA-Factory about 4 minutes, axolotl about 6,
torch included), then the loaders take under a minute each once imported (axolotl's first
import and preprocessing up to 3 minutes): too long for CI's 10-minute share.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
VENVS = ROOT / "bench" / ".venvs"
# Versions that install from PyPI beside torch 2.13.0 (CPU) on Python 3.11.
PINS = {
    "llamafactory": ["llamafactory==0.9.5"],
    "axolotl": ["axolotl==0.19.0"],
}
# axolotl's own requirements pull GPU kernels (xformers, triton, flash-linear-attention,
# bitsandbytes, liger) that a CPU machine cannot build: it goes in without them, and the
# packages its data path imports are installed at axolotl's pinned versions.
AXOLOTL_DATA_DEPS = [
    "transformers==5.16.1",
    "tokenizers==0.23.1",
    "datasets==4.8.4",
    "huggingface_hub==1.17.0",
    "accelerate==1.13.0",
    "peft==0.20.0",
    "trl==1.9.0",
    "pydantic==2.12.5",
    "packaging==26.0",
    "PyYAML==6.0.3",
    "typing-extensions==4.15.0",
    "addict",
    "fire",
    "einops",
    "colorama",
    "scipy",
    "requests",
    "sentencepiece",
    "fastcore",
    "art",
    "python-dotenv==1.0.1",
    "zstandard==0.22.0",
    "axolotl-contribs-lgpl==0.0.7",
    "axolotl-contribs-mit==0.0.6",
    "typer==0.25.1",
    "posthog==6.7.11",
    "pyarrow",
    "safetensors",
    "numba",
    "tensorboard",
    "wandb",
    "trackio==0.19.0",
    "optimum==1.16.2",
    "torchao==0.17.0",
    "kernels>=0.16.0,<0.17.0",
]


def venv_python(name: str) -> Path:
    return VENVS / name / "bin" / "python"


def pip(name: str, *args: str) -> None:
    subprocess.run([str(venv_python(name)), "-m", "pip", "install", "-q", *args], check=True)


def ensure_venv(name: str) -> None:
    """bench/.venvs/NAME with torch 2.13.0 (CPU) and the trainer, unless it is there."""
    marker = VENVS / name / ".composer-ready"
    if marker.exists():
        return
    subprocess.run([sys.executable, "-m", "venv", str(VENVS / name)], check=True)
    pip(name, "torch==2.13.0")
    if name == "axolotl":
        pip(name, "--no-deps", *PINS[name])
        pip(name, "torch==2.13.0", *AXOLOTL_DATA_DEPS)
    else:
        pip(name, "torch==2.13.0", *PINS[name])
        cpu_only_media(name)
    marker.write_text("ok\n", encoding="utf-8")


def cpu_only_media(name: str) -> None:
    """PyPI's torchvision and torchaudio are CUDA builds whose extensions CPU torch cannot
    load. transformers does without torchvision; LLaMA-Factory imports torchaudio at module
    level for audio models only, so an empty stand-in takes its place."""
    subprocess.run(
        [str(venv_python(name)), "-m", "pip", "uninstall", "-q", "-y", "torchvision", "torchaudio"],
        check=True,
    )
    site = subprocess.run(
        [str(venv_python(name)), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    stand_in = Path(site) / "torchaudio"
    stand_in.mkdir(exist_ok=True)
    (stand_in / "__init__.py").write_text(f'"""{cpu_only_media.__doc__.split(".")[0]}."""\n')


def prepare(work: Path) -> tuple[Path, Path]:
    """The demo build and a tiny model folder (config, weights, chat tokenizer)."""
    sys.path.insert(0, str(ROOT))
    from transformers import AutoTokenizer

    import composer
    from tests.helpers import DEMO, chat_tokenizer, tiny_llama

    out = composer.build(DEMO, output_dir=work / "demo", cache=False).output_dir
    model = work / "tiny"
    tiny_llama(AutoTokenizer.from_pretrained(chat_tokenizer(model))).save_pretrained(model)
    return out, model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(PINS), action="append")
    parser.add_argument("--work", type=Path, default=VENVS / "work")
    args = parser.parse_args()
    names = args.only or sorted(PINS)
    os.environ.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", WANDB_DISABLED="true")
    timings = {}
    for name in names:
        start = time.perf_counter()
        ensure_venv(name)
        timings[f"{name} install"] = time.perf_counter() - start
    start = time.perf_counter()
    shutil.rmtree(args.work, ignore_errors=True)  # no prepared datasets from an earlier run
    args.work.mkdir(parents=True)
    out, model = prepare(args.work)
    timings["demo build"] = time.perf_counter() - start
    failed = []
    for name in names:
        start = time.perf_counter()
        script = HERE / f"load_{name}.py"
        print(f"\n===== {name} ({script.name})", flush=True)
        done = subprocess.run(
            [str(venv_python(name)), str(script), str(out), str(model), str(args.work / name)]
        )
        timings[f"{name} load"] = time.perf_counter() - start
        if done.returncode:
            failed.append(name)
    print("\n===== timings (s): " + json.dumps({k: round(v, 1) for k, v in timings.items()}))
    if failed:
        print(f"FAILED: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
