"""Benchmark: the transformer re-score's cost per text on a CPU, by backend, on real text.

    python bench/bench_rescore.py [--data ../shared/data] [--windows 400] [--threads 1]

Texts like the ones decontamination re-scores: 96-word windows of real rows (two GSM8K train
problems with their answers, GPTeacher code tasks, HH-RLHF dialogues, as bench_e2e joins
them), GSM8K test questions reworded (decontamination_data.reword), and the benchmark items
(GSM8K test, HumanEval prompts). Each backend embeds all of them on `--threads` threads (a
build's worker runs one); the script prints the CPU milliseconds per text, and how far its
cosines are from sentence-transformers' torch fp32: over every window x item pair, and over
each window's nearest item (the pairs a build re-scores and decides on).

Backends: `torch` (sentence-transformers, fp32), `onnx` (the packaged model exported to ONNX
by composer.embeddings, fp32: what a build uses on a CPU), `onnx-int8` (that export through
onnxruntime.quantization.quantize_dynamic, per-channel int8 weights: measured, not used).

2026-12-04, 2 shared cores, 1 thread: torch 44-50 ms/text, onnx 26-27 ms/text (max |dcos|
7e-7), onnx-int8 11-12 ms/text (max |dcos| 0.08 over all pairs, 0.047 over the nearest:
enough to move decisions; the thresholds would need tuning again).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_e2e import load_jsonl, real_items
from decontamination_data import reword

from composer.decontaminate import windows
from composer.embeddings import DEFAULT_MODEL, OnnxModel, export_onnx, set_threads


def texts(data: Path, count: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """(windows, items): `count` windows of joined real rows and reworded test questions."""
    rng = random.Random(seed)
    sft, _ = real_items(data)
    test = [r["question"] for r in load_jsonl(data / "gsm8k_test.jsonl")]
    humaneval = [r["prompt"] for r in load_jsonl(data / "humaneval_test.jsonl.gz")]
    out = [reword(q, rng) for q in rng.sample(test, count // 4)]
    while len(out) < count:
        (q1, a1), (q2, a2) = rng.choice(sft), rng.choice(sft)
        out.append(rng.choice(windows(f"{q1}\n\n{a1}\n\n{q2}\n\n{a2}", 96, 48)))
    return out, rng.sample(test, 200) + humaneval[:100]


def timed(encode, texts: list[str]) -> tuple[np.ndarray, float]:
    encode(texts[:8])  # loaded and warm
    started = time.process_time()
    vectors = encode(texts)
    return vectors, 1000 * (time.process_time() - started) / len(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = Path(__file__).resolve().parent
    parser.add_argument("--data", default=str(here.parent.parent / "shared" / "data"))
    parser.add_argument("--windows", type=int, default=400)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    found, items = texts(Path(args.data), args.windows)
    everything = found + items
    print(f"{len(found)} windows, {len(items)} items; {args.threads} thread(s)")
    set_threads(args.threads)

    from sentence_transformers import SentenceTransformer

    from composer.embeddings import model_path

    torch_model = SentenceTransformer(model_path(DEFAULT_MODEL), device="cpu")
    reference, ms = timed(
        lambda t: torch_model.encode(t, batch_size=64, normalize_embeddings=True), everything
    )
    print(f"  torch      {ms:5.1f} ms/text")
    all_pairs = reference[: len(found)] @ reference[len(found) :].T
    nearest = all_pairs.argmax(1)

    def compare(name: str, vectors: np.ndarray, ms: float) -> None:
        cosines = vectors[: len(found)] @ vectors[len(found) :].T
        change = np.abs(cosines - all_pairs)
        rows = np.arange(len(found))
        print(
            f"  {name:<10} {ms:5.1f} ms/text; max |dcos| {change.max():.2g} over all pairs, "
            f"{change[rows, nearest].max():.2g} over each window's nearest item"
        )

    onnx = OnnxModel(DEFAULT_MODEL)
    compare("onnx", *timed(onnx.encode, everything))
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        quantized = Path(tmp) / "int8.onnx"
        quantize_dynamic(
            export_onnx(DEFAULT_MODEL), quantized, weight_type=QuantType.QInt8, per_channel=True
        )
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        onnx.session = ort.InferenceSession(str(quantized), options, ["CPUExecutionProvider"])
        compare("onnx-int8", *timed(onnx.encode, everything))


if __name__ == "__main__":
    main()
