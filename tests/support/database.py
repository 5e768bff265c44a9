"""A throwaway PostgreSQL database per test, cloned from a migrated template made once per session."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlparse, urlunparse

import psycopg


def server_url() -> Iterator[str]:
    """TEST_DATABASE_URL when set, else an embedded PostgreSQL (pgserver) for the session."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    import pgserver

    with tempfile.TemporaryDirectory(prefix="lgslack-pg-") as folder:
        server = pgserver.get_server(folder, cleanup_mode="stop")
        try:
            yield str(server.get_uri())
        finally:
            server.cleanup()


def with_database(url: str, name: str) -> str:
    parsed = urlparse(url)
    return urlunparse(parsed._replace(path="/" + name))


def admin(url: str, statement: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement)  # type: ignore[arg-type]


@contextmanager
def database(url: str, *, template: str | None = None) -> Iterator[str]:
    """Create a database (from a template if given), yield its URL, drop it afterwards."""
    name = f"lgslack_test_{uuid.uuid4().hex[:12]}"
    clause = f" TEMPLATE {template}" if template else ""
    admin(url, f"CREATE DATABASE {name}{clause}")
    try:
        yield with_database(url, name)
    finally:
        admin(url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def free_port() -> int:
    """A TCP port nothing listens on now, for a server a test starts as a subprocess."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
