"""PostgreSQL for the benchmark: which server, the databases it makes there (always dropped), and what it reads.

The server is DATABASE_URL, else TEST_DATABASE_URL, else an embedded PostgreSQL (pgserver, as `bot.db` starts one)
in a temporary folder, stopped at the end. Each database is named ``lgslack_bench_<pid>_<label>_<hex>``; one left by
a benchmark that was killed (its pid gone) is dropped by the next run.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import uuid
from collections.abc import Iterator
from urllib.parse import urlparse, urlunparse

import psycopg

from bot.db import process_alive

PREFIX = "lgslack_bench_"
_OURS = re.compile(rf"^{PREFIX}(\d+)_")


@contextlib.contextmanager
def server() -> Iterator[tuple[str, str]]:
    """The server's URL and where it came from."""
    for name in ("DATABASE_URL", "TEST_DATABASE_URL"):
        url = os.environ.get(name, "").strip()
        if url:
            yield url, name
            return
    import pgserver

    with tempfile.TemporaryDirectory(prefix="lgslack-bench-pg-") as folder:
        embedded = pgserver.get_server(folder, cleanup_mode="stop")
        try:
            yield str(embedded.get_uri()), "embedded (pgserver)"
        finally:
            embedded.cleanup()


def with_database(url: str, name: str) -> str:
    return urlunparse(urlparse(url)._replace(path="/" + name))


class Databases:
    """Creates databases on `url`'s server and drops every one of them in `drop_all`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.created: list[str] = []

    def _admin(self, statement: str) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(statement.encode())

    def create(self, label: str) -> str:
        name = f"{PREFIX}{os.getpid()}_{label}_{uuid.uuid4().hex[:6]}"
        self._admin(f"CREATE DATABASE {name}")
        self.created.append(name)
        return with_database(self.url, name)

    def drop_url(self, url: str) -> None:
        self.drop(urlparse(url).path.lstrip("/"))

    def drop(self, name: str) -> None:
        self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        if name in self.created:
            self.created.remove(name)

    def drop_all(self) -> list[str]:
        """Drop what we made; returns what could not be dropped (with the error)."""
        failed = []
        for name in list(self.created):
            try:
                self.drop(name)
            except psycopg.Error as exc:
                failed.append(f"{name}: {exc}")
        return failed

    def drop_stale(self) -> list[str]:
        """Drop the databases of benchmarks that are no longer running."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (PREFIX + "%",)).fetchall()
        stale = []
        for (name,) in rows:
            found = _OURS.match(name)
            if found and not process_alive(int(found.group(1))):
                self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                stale.append(name)
        return stale


def version(url: str) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"
