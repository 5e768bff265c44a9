"""Migrations against real PostgreSQL: a database made with an older job queue schema, or by an earlier version of
the bot, reaches the schema of a new database; processes starting together migrate once; jobs work after."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import procrastinate
import psycopg
import psycopg.waiting
import pytest
from procrastinate.schema import SchemaManager
from psycopg.rows import dict_row

from bot.db import MIGRATIONS, WAIT_WAKEUP, Database, open_database
from bot.migrations import QUEUE_BASELINE, QUEUE_RECORD, QueueMigration, migrate_queue, queue_migrations
from bot.records.base import generic_plan, pipelined_transaction
from tests.support import database as pgdb

SCHEMA = {
    "columns": """
        SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns
        WHERE table_schema = 'public' ORDER BY 1, 2""",
    "functions": """
        SELECT p.proname, pg_get_function_identity_arguments(p.oid), pg_get_function_result(p.oid), md5(p.prosrc)
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public' ORDER BY 1, 2""",
    "triggers": "SELECT tgname, tgrelid::regclass::text, pg_get_triggerdef(oid) FROM pg_trigger"
    " WHERE NOT tgisinternal ORDER BY 1, 2",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2",
    "constraints": """
        SELECT conname, conrelid::regclass::text, pg_get_constraintdef(c.oid) FROM pg_constraint c
        JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = 'public' ORDER BY 1, 2""",
    # Values added later sit at fractional positions: compare their order, not the positions.
    "enums": """
        SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_type t
        JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY 1 ORDER BY 1""",
}
OPEN = """
import asyncio, sys, time
from pathlib import Path
from bot.db import open_database

async def main():
    print("ready", flush=True)
    while not Path(sys.argv[2]).exists():
        time.sleep(0.005)
    db = await open_database(sys.argv[1], Path(".data"), max_size=2)
    await db.close()

asyncio.run(main())
"""


def schema_of(url: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(url) as conn:
        return {kind: conn.execute(query).fetchall() for kind, query in SCHEMA.items()}  # type: ignore[arg-type]


def recorded(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute("SELECT name FROM lgslack_queue_migrations ORDER BY name")]


@pytest.fixture
def empty_url(pg_server: str) -> Iterator[str]:
    with pgdb.database(pg_server) as url:
        yield url


def build_older(url: str, *, before: tuple[int, int, int]) -> list[str]:
    """The job queue's schema as procrastinate's migrations left it before version `before` (its first schema,
    then each migration in order), recorded as a bot that applied them would have; the files applied."""
    older = [m for m in queue_migrations() if m.version < before]
    with psycopg.connect(url, autocommit=True) as conn:
        for migration in older:
            conn.execute(migration.sql())  # type: ignore[arg-type]
        conn.execute(QUEUE_RECORD)
        conn.execute(
            "INSERT INTO lgslack_queue_migrations (name) SELECT unnest(%s::text[])", ([m.name for m in older],)
        )
    return [m.name for m in older]


async def run_jobs(db: Database) -> list[int]:
    """Queue three jobs (one with a lock, one with a queueing lock) on the database and run them; what ran."""
    ran: list[int] = []
    app = procrastinate.App(connector=procrastinate.PsycopgConnector())

    @app.task(name="test.note")
    async def note(n: int) -> None:
        ran.append(n)

    await app.open_async(db.pool)
    try:
        await note.defer_async(n=1)
        await app.configure_task("test.note", lock="conversation").defer_async(n=2)
        await app.configure_task("test.note", queueing_lock="once").defer_async(n=3)
        await app.run_worker_async(wait=False, install_signal_handlers=False, listen_notify=False, delete_jobs="always")
    finally:
        await app.close_async()
    return sorted(ran)


async def test_a_new_database_records_every_migration_of_the_queue(database_url: str) -> None:
    assert recorded(database_url) == sorted(m.name for m in queue_migrations())


@pytest.mark.parametrize("before", [(2, 0, 0), (3, 0, 0), (3, 3, 0)], ids=["1.x", "2.x", "3.2"])
async def test_an_older_queue_schema_is_upgraded_to_the_current_one(
    empty_url: str, database_url: str, before: tuple[int, int, int]
) -> None:
    older = build_older(empty_url, before=before)
    assert older and len(older) < len(queue_migrations())
    db = await open_database(empty_url, Path(".data"))
    try:
        assert schema_of(empty_url) == schema_of(database_url)
        assert recorded(empty_url) == recorded(database_url)
        assert await run_jobs(db) == [1, 2, 3]
    finally:
        await db.close()


async def test_a_database_made_before_migrations_were_recorded_keeps_its_queue(
    empty_url: str, database_url: str
) -> None:
    """An earlier version of the bot created procrastinate's schema (its pinned version) and recorded nothing."""
    with psycopg.connect(empty_url, autocommit=True) as conn:
        conn.execute(SchemaManager.get_schema())
        conn.execute("CREATE TABLE lgslack_migrations (v integer PRIMARY KEY)")
        for version, statement in enumerate(MIGRATIONS[:8]):  # what that version of the bot had
            conn.execute(statement)  # type: ignore[arg-type]
            conn.execute("INSERT INTO lgslack_migrations (v) VALUES (%s)", (version,))
    db = await open_database(empty_url, Path(".data"))
    try:
        assert schema_of(empty_url) == schema_of(database_url)
        assert recorded(empty_url) == sorted(m.name for m in queue_migrations() if m.version <= QUEUE_BASELINE)
        assert await run_jobs(db) == [1, 2, 3]
    finally:
        await db.close()


async def test_a_new_migration_of_the_queue_is_applied_once(database_url: str, tmp_path: Path) -> None:
    """As after an upgrade of procrastinate: a file it ships that the database has not had is applied, once."""
    path = tmp_path / "99.00.00_01_pre_add_note.sql"
    path.write_text("CREATE TABLE procrastinate_test_note (id int);\nINSERT INTO procrastinate_test_note VALUES (1);")
    shipped = [*queue_migrations(), QueueMigration((99, 0, 0), 1, path.name, path)]
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        assert await migrate_queue(conn, shipped) == [path.name]
        assert await migrate_queue(conn, shipped) == []
        cur = await conn.execute("SELECT count(*) AS n FROM procrastinate_test_note")
        assert (await cur.fetchone() or {})["n"] == 1
    assert path.name in recorded(database_url)


def test_the_queue_migrations_are_in_version_order() -> None:
    names = [m.name for m in queue_migrations()]
    assert names[0] == "00.00.00_01_initial.sql"
    pre = names.index("03.00.00_01_pre_cancel_notification.sql")
    assert (
        pre < names.index("03.00.00_50_post_cancel_notification.sql") < names.index("03.01.00_01_pre_add_heartbeat.sql")
    )
    assert len(names) == len(list(Path(SchemaManager.get_migrations_path()).glob("*.sql")))


@pytest.mark.parametrize("older", [False, True], ids=["new database", "older queue schema"])
async def test_processes_starting_together_migrate_once(
    empty_url: str, database_url: str, tmp_path: Path, older: bool
) -> None:
    if older:
        build_older(empty_url, before=(3, 0, 0))
    go = tmp_path / "go"
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            OPEN,
            empty_url,
            str(go),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(3)
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            assert await asyncio.wait_for(process.stdout.readline(), timeout=60) == b"ready\n"
        go.touch()  # all three open the database at once
        results = [await asyncio.wait_for(process.communicate(), timeout=60) for process in processes]
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert [process.returncode for process in processes] == [0, 0, 0], [err.decode()[-2000:] for _, err in results]
    assert schema_of(empty_url) == schema_of(database_url)
    assert recorded(empty_url) == recorded(database_url)
    with psycopg.connect(empty_url) as conn:
        versions = [row[0] for row in conn.execute("SELECT v FROM lgslack_migrations ORDER BY v")]
    assert versions == list(range(len(MIGRATIONS)))


async def test_a_column_added_by_a_newer_version_costs_a_statement_not_the_connection(
    database_url: str, tmp_path: Path
) -> None:
    """Statements run often are prepared on each connection (issue 11). A newer version of the bot that adds a
    column while this one runs makes a prepared `SELECT *` fail once on each connection that prepared it ("cached
    plan must not change result type"); the pool discards such a connection, and the statement works after."""
    db = await open_database(database_url, tmp_path, max_size=2)
    try:
        query = "SELECT * FROM lgslack_channel_graphs"

        async def run_on(conn: Any) -> Any:
            return await conn.execute(query)

        async with db.pool.connection() as a, db.pool.connection() as b:
            for _ in range(6):  # past psycopg's threshold: prepared on both connections
                await run_on(a)
                await run_on(b)
            cur = await a.execute("SELECT count(*) AS n FROM pg_prepared_statements")
            assert (await cur.fetchone())["n"] >= 1
            before = {a.pgconn.backend_pid, b.pgconn.backend_pid}
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as newer:
            await newer.execute("ALTER TABLE lgslack_channel_graphs ADD COLUMN added_later text")
        failed: list[int] = []
        for _ in range(12):
            pid = None
            try:
                async with db.pool.connection() as conn:
                    pid = conn.pgconn.backend_pid
                    cur = await run_on(conn)
                    assert "added_later" in [c.name for c in cur.description or ()]
            except psycopg.errors.FeatureNotSupported as exc:
                assert "cached plan" in str(exc)
                failed.append(pid)
        # A connection that had prepared it fails it once and is replaced; the statement works on the others.
        assert failed and len(set(failed)) == len(failed) and set(failed) <= before
        for _ in range(4):
            async with db.pool.connection() as conn:
                assert conn.pgconn.backend_pid not in failed
                await run_on(conn)
    finally:
        await db.close()


async def test_prepared_statements_can_be_turned_off(database_url: str, tmp_path: Path) -> None:
    """BOT_PREPARED_STATEMENTS=0, for a pooler in transaction mode that doesn't keep them: nothing is prepared."""
    db = await open_database(database_url, tmp_path, max_size=2, prepare=False)
    try:
        async with db.pool.connection() as conn:
            for _ in range(6):
                await conn.execute("SELECT * FROM lgslack_channel_graphs")
            cur = await conn.execute("SELECT count(*) AS n FROM pg_prepared_statements")
            assert (await cur.fetchone())["n"] == 0
    finally:
        await db.close()


async def test_the_pool_lends_the_connection_given_back_last(database_url: str, tmp_path: Path) -> None:
    """Issue 11: on a machine that is not busy, a server process that has just answered answers the next statement
    sooner than one idle for a while, so the pool lends the connection given back last (psycopg_pool's own lends the
    one idle longest)."""
    db = await open_database(database_url, tmp_path, max_size=3)
    try:
        async with db.pool.connection() as a, db.pool.connection() as b, db.pool.connection() as c:
            pids = [conn.pgconn.backend_pid for conn in (a, b, c)]
        # Given back c, b, then a.
        for _ in range(3):
            async with db.pool.connection() as conn:
                assert conn.pgconn.backend_pid == pids[0]
        async with db.pool.connection() as first, db.pool.connection() as second:
            assert [first.pgconn.backend_pid, second.pgconn.backend_pid] == pids[:2]
    finally:
        await db.close()


async def test_a_listening_connection_sleeps_until_its_socket_wakes_it(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11: psycopg wakes a connection waiting on its socket every 0.1 s to look again (there for Ctrl-C in
    blocking code), and a job worker's connection listens for new jobs all the time: an idle `worker` woke ten times a
    second for nothing. The pool's connections wait `WAIT_WAKEUP` between looks; a notification, or a cancellation,
    still ends the wait at once."""
    intervals: list[float] = []
    parked = asyncio.Event()
    real = psycopg.waiting.wait_async

    async def spy(gen: Any, fileno: int, interval: float = 0.0, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        intervals.append(interval)
        parked.set()
        return await real(gen, fileno, interval=interval, timeout=timeout)

    monkeypatch.setattr(psycopg.waiting, "wait_async", spy)
    db = await open_database(database_url, tmp_path, max_size=2)
    try:
        async with db.pool.connection() as listener, db.pool.connection() as sender:
            await listener.execute("LISTEN lgslack_wakeup_test")

            async def first_payload() -> str:
                async for notification in listener.notifies():
                    return notification.payload
                raise AssertionError("notifies() ended")

            heard = asyncio.create_task(first_payload())
            await sender.execute("SELECT pg_notify('lgslack_wakeup_test', 'job')")
            assert await asyncio.wait_for(heard, WAIT_WAKEUP / 2) == "job"

            parked.clear()
            waiting = asyncio.create_task(first_payload())
            await asyncio.wait_for(parked.wait(), WAIT_WAKEUP / 2)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(waiting, WAIT_WAKEUP / 2)
        assert intervals and set(intervals) == {WAIT_WAKEUP}
    finally:
        await db.close()


def _queue_rows_read_by_a_fetch(url: str, *, waiting: int) -> tuple[int, int]:
    """On one connection, as a worker's: jobs fetched and finished one at a time while the queue is nearly empty
    (as it mostly is, and as the statistics say), then `waiting` jobs queued at once; how many rows of the queue the
    next fetch read, and the job it fetched."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE procrastinate_jobs")
        worker = conn.execute("INSERT INTO procrastinate_workers DEFAULT VALUES RETURNING id").fetchone()
        assert worker is not None
        queue = (
            "INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args) SELECT 'turns', 'lgslack.turn',"
            " 'conversation-' || n, '{}' FROM generate_series(%s::int, %s::int) n RETURNING id"
        )
        for n in range(8):
            conn.execute(queue, (-n - 1, -n - 1))
            fetched = conn.execute("SELECT id FROM procrastinate_fetch_job_v2(NULL, %s)", worker).fetchone()
            assert fetched is not None
            conn.execute("SELECT procrastinate_finish_job_v1(%s, 'succeeded', true)", fetched)
        first = conn.execute(queue, (1, waiting)).fetchone()
        assert first is not None
        with conn.transaction():
            fetched = conn.execute("SELECT id FROM procrastinate_fetch_job_v2(NULL, %s)", worker).fetchone()
            row = conn.execute(
                "SELECT pg_stat_get_xact_tuples_returned(c.oid) + pg_stat_get_xact_tuples_fetched(c.oid)"
                " FROM pg_class c WHERE c.relname = 'procrastinate_jobs'"
            ).fetchone()
        assert fetched is not None and row is not None
        return int(row[0]), int(fetched[0]) - int(first[0])


async def test_a_burst_of_jobs_is_fetched_without_reading_the_queue_for_each(database_url: str, tmp_path: Path) -> None:
    """Issue 11: the fetch's plan, made on a worker's connection while the queue was nearly empty, was kept for the
    connection's life and read the whole queue once for each waiting job: after a burst of 1,000, 196 ms a fetch,
    when the workers are busiest. It now reads the queue by its indexes, a lock's jobs among them."""
    db = await open_database(database_url, tmp_path, max_size=2)
    await db.close()
    read, position = _queue_rows_read_by_a_fetch(database_url, waiting=400)
    assert position == 0, "the oldest waiting job comes first"
    assert read <= 2 * 400, f"one fetch read {read} rows of a queue of 400"


async def test_the_queue_functions_read_by_index_again_after_an_upgrade_replaced_them(
    database_url: str, tmp_path: Path
) -> None:
    """A newer procrastinate replaces its functions, with none of our settings: the next start sets them again."""
    functions = (
        "SELECT p.proname, coalesce(p.proconfig, '{}') AS config FROM pg_proc p"
        " WHERE p.proname LIKE 'procrastinate\\_fetch\\_job%%' OR p.proname = 'lgslack_wake_next_of_lock'"
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        found = conn.execute(functions).fetchall()
        assert found and all(config == ["enable_seqscan=off"] for _, config in found), found
        for name, _ in found:
            conn.execute(f"ALTER FUNCTION {name} RESET ALL")  # as CREATE OR REPLACE FUNCTION leaves it
    db = await open_database(database_url, tmp_path, max_size=2)
    await db.close()
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert all(config == ["enable_seqscan=off"] for _, config in conn.execute(functions).fetchall())


async def test_a_role_that_does_not_own_the_queue_starts_and_says_what_to_run(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The bot's role may use a database another role made: the settings it can't make are left to their owner,
    with the statement to run, and the bot starts."""
    role = f"lgslack_user_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ALTER FUNCTION lgslack_wake_next_of_lock() RESET ALL")
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"GRANT CREATE, USAGE ON SCHEMA public TO {role}")
        conn.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}")
        conn.execute(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}")
    try:
        url = psycopg.conninfo.make_conninfo(database_url, user=role)
        with caplog.at_level("WARNING", logger="bot.migrations"):
            db = await open_database(url, tmp_path, max_size=2)
        await db.close()
        assert "ALTER FUNCTION lgslack_wake_next_of_lock() SET enable_seqscan = off" in caplog.text
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


async def test_a_statement_sent_under_generic_plan_is_planned_once(database_url: str, tmp_path: Path) -> None:
    """Issue 11: the claimed resume's first read was planned anew on every run (about 1 ms of PostgreSQL's time, the
    same plan each time); sent under `generic_plan`, once prepared it is planned once per connection. The setting
    ends with the block."""
    db = await open_database(database_url, tmp_path, max_size=2)
    query = (
        "SELECT c.id FROM lgslack_conversations c LEFT JOIN lgslack_runs r ON r.conversation_id = c.id WHERE c.id = %s"
    )
    try:
        async with db.pool.connection() as conn:
            for _ in range(3):
                async with pipelined_transaction(conn):
                    async with generic_plan(conn):
                        await conn.execute(query, ("none",), prepare=True)
                    cur = await conn.execute("SELECT current_setting('plan_cache_mode') AS mode", prepare=False)
                assert (await cur.fetchone())["mode"] == "auto"
            cur = await conn.execute(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE %s",
                ("%lgslack_runs r ON r.conversation_id%",),
            )
            assert await cur.fetchall() == [{"generic_plans": 3, "custom_plans": 0}]
    finally:
        await db.close()
