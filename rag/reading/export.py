"""Trained torch weights → one int8 ONNX file (+ tokenizer) that ships inside `rag`.

The span model is exported with dynamic batch and sequence axes, then its MatMul weights
are quantised to int8 (onnxruntime dynamic quantisation): 4× smaller and faster on CPU,
at a held-out F1 cost the training report measures (`heldout_int8` vs `heldout_torch`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from rag.reading.encoders import DEFAULT, encoder_dir
from rag.reading.model import MODEL_FILE
from rag.reading.train import SpanModel

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OUTPUTS = ("start_logits", "end_logits")


def export(weights: Path, out_dir: Path, encoder: str = DEFAULT) -> Path:
    """Write `MODEL_FILE` and `tokenizer.json` into `out_dir`; returns the model path."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out_dir.mkdir(parents=True, exist_ok=True)
    model = SpanModel.from_encoder(encoder_dir(encoder))
    model.load_state_dict(torch.load(weights, weights_only=True))
    model.eval()
    dummy = tuple(torch.ones(2, 16, dtype=torch.int64) for _ in INPUTS)
    fp32 = out_dir / "span_reader.fp32.onnx"
    axes = {name: {0: "batch", 1: "tokens"} for name in (*INPUTS, *OUTPUTS)}
    torch.onnx.export(model, dummy, str(fp32), input_names=list(INPUTS),
                      output_names=list(OUTPUTS), dynamic_axes=axes, opset_version=17,
                      dynamo=False)
    target = out_dir / MODEL_FILE
    # Per-channel scales: one scale per output column keeps the held-out F1 loss of int8
    # within 0.01 (a single scale per tensor lost 0.02 answerable F1).
    quantize_dynamic(str(fp32), str(target), weight_type=QuantType.QInt8, per_channel=True)
    fp32.unlink()
    shutil.copyfile(encoder_dir(encoder) / "tokenizer.json", out_dir / "tokenizer.json")
    return target
