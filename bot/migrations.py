"""Every schema the bot uses, brought up to date at start-up by whichever process gets there first.

Three sets of migrations, in this order: the job queue's (procrastinate's own SQL files, shipped in its package:
a step of ours may refer to its tables), ours (`bot.db.MIGRATIONS`, append-only, the index is the version) and
the LangGraph checkpointer's (`AsyncPostgresSaver.setup`).

Each step runs in its own transaction, which first takes one advisory lock (`pg_try_advisory_xact_lock`) and then
checks the step is still to do: processes that start together apply each step once, in order, and the lock goes
with the transaction, so a process killed half-way leaves none behind (the checkpointer's step, which can't run
in a transaction, holds it for the session). A process waits for the lock by asking again, outside any
transaction: the checkpointer's `CREATE INDEX CONCURRENTLY` waits for every transaction open when it starts, and
one blocked on the lock would wait for it in turn. procrastinate keeps no record of its migrations;
`lgslack_queue_migrations` does, by file name:

- a new database gets procrastinate's current schema, and every migration file it ships is recorded as applied;
- a database the bot made before that table existed has the schema of procrastinate `QUEUE_BASELINE` (the version
  it pinned until then): the files up to that version are recorded as applied, the newer ones are applied;
- then, and after every upgrade of procrastinate, each file not yet recorded is applied, in version order (its
  `pre` migrations before its `post` ones: the serial numbers sort them).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from procrastinate.schema import SchemaManager
from psycopg_pool import AsyncConnectionPool

from bot.types import Conn

log = logging.getLogger(__name__)

LOCK = 7_345_118_002
"""The advisory lock every migration step takes (the one `bot.db` always used)."""
QUEUE_BASELINE = (3, 10, 0)
"""The procrastinate version of every database made before its migrations were recorded (pinned until then)."""
QUEUE_RECORD = """
    CREATE TABLE IF NOT EXISTS lgslack_queue_migrations
        (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())
"""
_FILE = re.compile(r"^(\d+)\.(\d+)\.(\d+)_(\d+)_\w*\.sql$")


@dataclass(frozen=True, order=True)
class QueueMigration:
    """One of procrastinate's migration files: `xx.yy.zz_ab_[pre|post_]what.sql`, applied in (version, ab) order."""

    version: tuple[int, int, int]
    serial: int
    name: str
    path: Path

    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")


def queue_migrations(folder: Path | None = None) -> list[QueueMigration]:
    """The migration files the installed procrastinate ships, oldest first."""
    folder = folder or Path(SchemaManager.get_migrations_path())
    found = []
    for path in folder.glob("*.sql"):
        match = _FILE.match(path.name)
        if match is None:
            raise RuntimeError(f"procrastinate ships a migration whose name can't be ordered: {path.name}")
        major, minor, patch, serial = (int(part) for part in match.groups())
        found.append(QueueMigration((major, minor, patch), serial, path.name, path))
    return sorted(found)


async def migrate(
    pool: AsyncConnectionPool[Any],
    checkpointer: AsyncPostgresSaver,
    steps: Sequence[str],
    *,
    by_index: Sequence[str] = (),
) -> None:
    """Apply what is newer than the database: the job queue's migrations, then `steps`, then the checkpointer's.
    The functions whose names begin with one of `by_index` read their tables by their indexes (`read_by_index`)."""
    async with pool.connection() as conn:
        async with _locked(conn):
            await conn.execute("CREATE TABLE IF NOT EXISTS lgslack_migrations (v integer PRIMARY KEY)")
            await conn.execute(QUEUE_RECORD)
        await migrate_queue(conn)
        await _migrate_ours(conn, steps)
        await read_by_index(conn, by_index)
        # CREATE INDEX CONCURRENTLY can't run in a transaction: the checkpointer runs on a connection of its own
        # while this one holds the lock for the session, outside a transaction.
        await _lock_session(conn)
        try:
            await checkpointer.setup()
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK,))


BY_INDEX = "enable_seqscan=off"


async def read_by_index(conn: Conn, prefixes: Sequence[str]) -> list[str]:
    """Make the functions named `prefix…` read their tables by index wherever one serves (`enable_seqscan = off`,
    a setting of each function, `ALTER FUNCTION … SET`), where they do not have it yet; the functions changed."""
    if not prefixes:
        return []
    find = (
        "SELECT p.oid::regprocedure::text AS function FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE n.nspname = current_schema() AND p.proname LIKE ANY(%s)"
        " AND NOT coalesce(%s = ANY(p.proconfig), false)"
    )
    patterns = [prefix.replace("_", r"\_") + "%" for prefix in prefixes]
    changed: list[str] = []
    async with _locked(conn):
        cur = await conn.execute(find, (patterns, BY_INDEX))
        for row in await cur.fetchall():
            function = row["function"]
            alter = f"ALTER FUNCTION {function} SET enable_seqscan = off"
            try:
                async with conn.transaction():
                    await conn.execute(alter)
            except psycopg.errors.InsufficientPrivilege:
                # Made by another role (the bot's role only uses the database): the bot works, slower under load.
                log.warning("%s is not the bot's to change: have its owner run `%s;` (issue 11)", function, alter)
                continue
            changed.append(function)
    return changed


async def migrate_queue(conn: Conn, available: Sequence[QueueMigration] | None = None) -> list[str]:
    """Bring procrastinate's schema up to date; the names of the files applied."""
    files = list(queue_migrations() if available is None else available)
    async with _locked(conn):
        if not await _exists(conn, "procrastinate_jobs"):
            await conn.execute(SchemaManager.get_schema())
            await _record(conn, [m.name for m in files])
            log.info("created the job queue's schema (procrastinate %s)", _version())
            return []
        cur = await conn.execute("SELECT 1 FROM lgslack_queue_migrations LIMIT 1")
        if await cur.fetchone() is None:
            await _record(conn, [m.name for m in files if m.version <= QUEUE_BASELINE])
        applied = await _applied(conn)
    done = []
    for migration in files:
        if migration.name in applied:
            continue
        async with _locked(conn):
            if migration.name in await _applied(conn):
                continue
            await conn.execute(migration.sql())
            await _record(conn, [migration.name])
        log.info("applied the job queue's migration %s", migration.name)
        done.append(migration.name)
    return done


async def _migrate_ours(conn: Conn, steps: Sequence[str]) -> None:
    cur = await conn.execute("SELECT coalesce(max(v), -1) AS v FROM lgslack_migrations")
    row = await cur.fetchone()
    current = row["v"] if row else -1
    for version, statement in enumerate(steps):
        if version <= current:
            continue
        async with _locked(conn):
            cur = await conn.execute("SELECT 1 FROM lgslack_migrations WHERE v = %s", (version,))
            if await cur.fetchone() is not None:
                continue
            await conn.execute(statement)
            await conn.execute("INSERT INTO lgslack_migrations (v) VALUES (%s)", (version,))


@asynccontextmanager
async def _locked(conn: Conn) -> AsyncIterator[None]:
    """A transaction that holds the migration lock."""
    pause = 0.02
    while True:
        async with conn.transaction():
            cur = await conn.execute("SELECT pg_try_advisory_xact_lock(%s) AS ok", (LOCK,))
            row = await cur.fetchone()
            if row is not None and row["ok"]:
                yield
                return
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.5)


async def _lock_session(conn: Conn) -> None:
    """Take the migration lock until `pg_advisory_unlock` (or the end of the session)."""
    pause = 0.02
    while True:
        cur = await conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", (LOCK,))
        row = await cur.fetchone()
        if row is not None and row["ok"]:
            return
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.5)


async def _exists(conn: Conn, table: str) -> bool:
    cur = await conn.execute("SELECT to_regclass(%s) AS t", (table,))
    row = await cur.fetchone()
    return row is not None and row["t"] is not None


async def _applied(conn: Conn) -> set[str]:
    cur = await conn.execute("SELECT name FROM lgslack_queue_migrations")
    return {str(row["name"]) for row in await cur.fetchall()}


async def _record(conn: Conn, names: list[str]) -> None:
    await conn.execute(
        "INSERT INTO lgslack_queue_migrations (name) SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING", (names,)
    )


def _version() -> str:
    try:
        return metadata.version("procrastinate")
    except metadata.PackageNotFoundError:
        return "?"
