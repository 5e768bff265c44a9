"""The private PostgreSQL of fault tests: stopped, killed and started again, it keeps its port and its data."""

from __future__ import annotations

import socket
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from tests.support.private_pg import PrivatePostgres, PrivatePostgresError, private_postgres

pytestmark = pytest.mark.faults


def write(url: str, value: str) -> None:
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS notes (value text NOT NULL)")
        conn.execute("INSERT INTO notes (value) VALUES (%s)", (value,))


def read(url: str) -> list[str]:
    with psycopg.connect(url, connect_timeout=5) as conn:
        return [row[0] for row in conn.execute("SELECT value FROM notes ORDER BY value").fetchall()]


def test_stop_and_start_keeps_port_and_data() -> None:
    with private_postgres(database="bot") as pg:
        url, port = pg.url, pg.port
        assert url == f"postgresql://postgres@127.0.0.1:{port}/bot"
        write(url, "before the outage")

        pg.stop()
        assert not pg.running()
        began = time.monotonic()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url, connect_timeout=5)
        assert time.monotonic() - began < 2, "a stopped server should refuse connections at once"

        pg.start()
        assert pg.running()
        assert (pg.port, pg.url) == (port, url)
        assert read(url) == ["before the outage"]

        pg.close()
        pg.close()  # and once more on leaving the block
        assert not pg.running()


def test_kill_then_start_recovers_and_a_failed_start_shows_the_log() -> None:
    with private_postgres() as pg:
        write(pg.url, "committed")
        with psycopg.connect(pg.url, connect_timeout=5) as held:  # a backend that is killed along with it
            pg.kill()
            assert not pg.running()
            with pytest.raises(psycopg.OperationalError):
                held.execute("SELECT 1")
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(pg.url, connect_timeout=5)

        with socket.create_server(("127.0.0.1", pg.port)):  # something else took the port meanwhile
            with pytest.raises(PrivatePostgresError, match=r"(?s)exited.*could not bind"):
                pg.start()
            assert not pg.running()

        pg.start()
        assert read(pg.url) == ["committed"]
        write(pg.url, "after the crash")
        assert read(pg.url) == ["after the crash", "committed"]


def test_two_servers_at_once_get_their_own_ports() -> None:
    with private_postgres() as one, tempfile.TemporaryDirectory(prefix="lgslack-ppg-") as folder:
        two = PrivatePostgres(Path(folder))
        chosen = two.port
        try:
            with socket.create_server(("127.0.0.1", chosen)):  # taken before the first start: it picks another
                two.start()
            assert two.port not in (chosen, one.port)
            write(one.url, "one")
            write(two.url, "two")
            assert read(one.url) == ["one"]
            assert read(two.url) == ["two"]
        finally:
            two.close()
