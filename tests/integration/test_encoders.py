"""The marco-l12 training encoder: dequantised from the packaged int8 cross-encoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.reading.encoders import dequantize, marco_onnx_dir

pytestmark = pytest.mark.integration

QUESTION = "How much will the new microelectronics institute cost?"
PASSAGES = [
    "The government will spend about HK$220 million on the microelectronics institute.",
    "The weather in Paris was sunny on Tuesday.",
    "Football results from the weekend's league matches.",
]


def test_dequantised_encoder_reads_pairs_like_the_packaged_cross_encoder(tmp_path: Path) -> None:
    import onnx
    import onnxruntime as ort
    import torch
    from onnx import numpy_helper
    from tokenizers import Tokenizer
    from transformers import AutoModel

    src = marco_onnx_dir()
    dequantize(src, tmp_path / "enc")
    model, info = AutoModel.from_pretrained(
        str(tmp_path / "enc"), add_pooling_layer=False, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    model.eval()
    # The cross-encoder's own pooler and classifier, read independently from the ONNX file.
    graph = onnx.load(str(src / "model.onnx")).graph
    init = {i.name: numpy_helper.to_array(i) for i in graph.initializer}

    def weight(base: str) -> np.ndarray:
        q = init[base + "_quantized"].astype(np.float32)
        return (q - init[base + "_zero_point"].astype(np.float32)) * init[base + "_scale"]

    session = ort.InferenceSession(str(src / "model.onnx"), providers=["CPUExecutionProvider"])
    tok = Tokenizer.from_file(str(tmp_path / "enc" / "tokenizer.json"))
    ours, packaged = [], []
    for passage in PASSAGES:
        enc = tok.encode(QUESTION, passage)
        feeds = {"input_ids": np.array([enc.ids]), "token_type_ids": np.array([enc.type_ids]),
                 "attention_mask": np.ones((1, len(enc.ids)), dtype=np.int64)}
        packaged.append(float(session.run(None, feeds)[0][0, 0]))
        with torch.no_grad():
            cls = model(**{k: torch.tensor(v) for k, v in feeds.items()}).last_hidden_state[0, 0]
        pooled = np.tanh(cls.numpy() @ weight("bert.pooler.dense.weight")
                         + init["bert.pooler.dense.bias"])
        ours.append(float((pooled @ weight("classifier.weight") + init["classifier.bias"])[0]))
    assert int(np.argmax(ours)) == int(np.argmax(packaged)) == 0
    # Only the int8 activation rounding of the ONNX graph separates the two.
    assert np.allclose(ours, packaged, atol=1.0), (ours, packaged)
