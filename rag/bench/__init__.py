"""`rag bench`: what the service costs on this machine.

It measures embedding throughput against raw `model.encode`, index build, search latency
and recall, memory and disk per chunk, incremental adds, cold start and end-to-end `ask`,
at several corpus sizes (synthetic text, calibrated vectors), next to a peer (txtai) given
the same chunks. Every measurement runs in a fresh process; the report goes to bench.json,
bench.md and bench.png.
"""

from rag.bench.cli import add_bench_parser
from rag.bench.run import run_bench

__all__ = ["add_bench_parser", "run_bench"]
