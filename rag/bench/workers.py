"""Benchmark workers: each runs in its own process so peak memory and imports don't mix.

Run as `python -m rag.bench.workers NAME ARGS_JSON`; the last stdout line is
`BENCH_RESULT <json>`. `rag.bench.run` starts them and assembles the report. The workers
themselves live in ours.py (our pipeline, real model), peers.py (txtai, ONNX) and
scale.py (index cost at corpus sizes).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from rag.bench.measure import RESULT_PREFIX
from rag.bench.ours import w_cold, w_ours, w_prepare
from rag.bench.peers import w_onnx, w_txtai
from rag.bench.pgscale import w_pg_scale
from rag.bench.scale import w_open, w_scale

WORKERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "prepare": w_prepare, "ours": w_ours, "txtai": w_txtai, "onnx": w_onnx, "cold": w_cold,
    "scale": w_scale, "open": w_open, "pg_scale": w_pg_scale,
}


def main(argv: Sequence[str]) -> int:
    """Run one worker and print its result line."""
    from rag.embedding import _offline

    _offline()
    name, payload = argv[0], json.loads(argv[1])
    result = WORKERS[name](payload)
    sys.stdout.flush()
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main(sys.argv[1:]))
