"""One connection pool, our append-only migrations, the job queue's schema and the LangGraph checkpointer."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from bot import migrations
from bot.checkpoints import Checkpoints
from bot.errors import DatabaseError

log = logging.getLogger(__name__)

# The index of a statement is its version; only ever append.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE lgslack_conversations (
        id text PRIMARY KEY,
        team_id text NOT NULL,
        channel_id text NOT NULL,
        thread_ts text NOT NULL,
        thread_id text NOT NULL UNIQUE,
        graph text NOT NULL,
        started_by text,
        created_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (team_id, channel_id, thread_ts)
    );
    CREATE TABLE lgslack_inbound (
        team_id text NOT NULL,
        channel_id text NOT NULL,
        ts text NOT NULL,
        conversation_id text NOT NULL REFERENCES lgslack_conversations (id),
        user_id text NOT NULL,
        text text NOT NULL,
        status text NOT NULL DEFAULT 'queued',
        received_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (team_id, channel_id, ts)
    );
    CREATE TABLE lgslack_interrupts (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        conversation_id text NOT NULL REFERENCES lgslack_conversations (id),
        interrupt_id text NOT NULL,
        payload jsonb,
        kind text NOT NULL,
        channel_id text,
        message_ts text,
        state text NOT NULL DEFAULT 'pending'
            CHECK (state IN ('pending', 'decided', 'superseded')),
        decided_by text,
        decided_at timestamptz,
        answer_text text,
        resume_value jsonb,
        resumed_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (conversation_id, interrupt_id)
    );
    CREATE INDEX lgslack_interrupts_pending ON lgslack_interrupts (conversation_id) WHERE state = 'pending';
    """,
    """
    CREATE TABLE lgslack_channel_graphs (
        team_id text NOT NULL,
        channel_id text NOT NULL,
        graph text NOT NULL,
        PRIMARY KEY (team_id, channel_id)
    );
    """,
    """
    ALTER TABLE lgslack_interrupts
        ADD COLUMN response_schema jsonb,
        ADD COLUMN progress jsonb NOT NULL DEFAULT '{}'::jsonb,
        ADD COLUMN requested_by text;
    CREATE TABLE lgslack_decisions (
        id bigserial PRIMARY KEY,
        record_id uuid NOT NULL REFERENCES lgslack_interrupts (id),
        conversation_id text NOT NULL REFERENCES lgslack_conversations (id),
        graph text NOT NULL,
        kind text NOT NULL,
        user_id text NOT NULL,
        decision text NOT NULL,
        action text,
        edited_args jsonb,
        reason text,
        request jsonb,
        requested_at timestamptz NOT NULL,
        decided_at timestamptz NOT NULL DEFAULT now(),
        latency_ms bigint NOT NULL
    );
    CREATE INDEX lgslack_decisions_by_time ON lgslack_decisions (decided_at);
    CREATE INDEX lgslack_decisions_by_conversation ON lgslack_decisions (conversation_id, decided_at);
    """,
    """
    ALTER TABLE lgslack_interrupts
        ADD COLUMN source text,
        ADD COLUMN route jsonb,
        ADD COLUMN notice_ts text,
        ADD COLUMN timer_jobs bigint[] NOT NULL DEFAULT '{}';
    CREATE INDEX lgslack_interrupts_posted ON lgslack_interrupts (channel_id, message_ts);
    ALTER TABLE lgslack_inbound ADD COLUMN record_id uuid REFERENCES lgslack_interrupts (id);
    """,
    # json, not jsonb: the order of a payload's arguments and of a schema's fields is what people see.
    """
    ALTER TABLE lgslack_interrupts
        ALTER COLUMN payload TYPE json USING payload::json,
        ALTER COLUMN response_schema TYPE json USING response_schema::json;
    """,
    # Durable first: runs remember the checkpoint they started from; the outbox holds every message the bot
    # means to show, written in the same transaction as the state change it shows.
    """
    CREATE TABLE lgslack_runs (
        key text PRIMARY KEY,
        conversation_id text NOT NULL REFERENCES lgslack_conversations (id),
        kind text NOT NULL,
        state text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'retrying', 'ran', 'failed')),
        before text,
        requester text,
        error text,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX lgslack_runs_running ON lgslack_runs (updated_at) WHERE state IN ('running', 'retrying');
    CREATE TABLE lgslack_outbox (
        key text PRIMARY KEY,
        seq bigserial NOT NULL,
        conversation_id text REFERENCES lgslack_conversations (id),
        op text NOT NULL CHECK (op IN ('post', 'update')),
        role text NOT NULL DEFAULT 'message',
        channel_id text,
        thread_ts text,
        target_ts text,
        record_id uuid REFERENCES lgslack_interrupts (id),
        message json,
        state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'dropped')),
        ts text,
        attempts integer NOT NULL DEFAULT 0,
        leased_until timestamptz,
        error text,
        created_at timestamptz NOT NULL DEFAULT now(),
        sent_at timestamptz
    );
    CREATE INDEX lgslack_outbox_pending ON lgslack_outbox (conversation_id, seq) WHERE state = 'pending';
    CREATE INDEX lgslack_inbound_queued ON lgslack_inbound (received_at) WHERE status <> 'done';
    CREATE INDEX lgslack_interrupts_unresumed ON lgslack_interrupts (decided_at)
        WHERE state = 'decided' AND resumed_at IS NULL;
    """,
    # The files shared with a message, kept with it (their text content too, once read) so a retried turn gives
    # the graph the same input.
    """
    ALTER TABLE lgslack_inbound ADD COLUMN files jsonb NOT NULL DEFAULT '[]'::jsonb;
    """,
    # Streamed answers: a row per message shown while it is written, stored before Slack is asked to start it, so
    # a stream cut by a crash is found and finished or removed (bot/flow/streams.py); the outbox can delete.
    """
    CREATE TABLE lgslack_streams (
        key text PRIMARY KEY,
        run_key text NOT NULL,
        conversation_id text NOT NULL REFERENCES lgslack_conversations (id),
        message_id text NOT NULL,
        channel_id text NOT NULL,
        thread_ts text NOT NULL,
        mode text NOT NULL DEFAULT 'stream' CHECK (mode IN ('stream', 'post')),
        ts text,
        state text NOT NULL DEFAULT 'starting' CHECK (state IN ('starting', 'open', 'stopped')),
        settled_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX lgslack_streams_by_run ON lgslack_streams (run_key) WHERE settled_at IS NULL;
    CREATE INDEX lgslack_streams_by_conversation ON lgslack_streams (conversation_id, created_at);
    ALTER TABLE lgslack_outbox DROP CONSTRAINT lgslack_outbox_op_check;
    ALTER TABLE lgslack_outbox ADD CONSTRAINT lgslack_outbox_op_check CHECK (op IN ('post', 'update', 'delete'));
    """,
    # A job that ends lets the next job of its lock (its conversation) start at once: procrastinate wakes its
    # workers when a job is queued, not when a lock is let go, so a job queued behind a running one waited for the
    # next poll (a second). The job queue's tables exist before this step runs (see `migrate`).
    """
    CREATE FUNCTION lgslack_wake_next_of_lock() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        waiting procrastinate_jobs;
        payload text;
    BEGIN
        SELECT * INTO waiting FROM procrastinate_jobs
        WHERE lock = OLD.lock AND status = 'todo' AND (scheduled_at IS NULL OR scheduled_at <= now())
        ORDER BY priority DESC, id LIMIT 1;
        IF FOUND THEN
            payload := json_build_object('type', 'job_inserted', 'job_id', waiting.id)::text;
            PERFORM pg_notify('procrastinate_queue_v1#' || waiting.queue_name, payload);
            PERFORM pg_notify('procrastinate_any_queue_v1', payload);
        END IF;
        RETURN NULL;
    END;
    $$;
    CREATE TRIGGER lgslack_wake_next_of_lock_deleted AFTER DELETE ON procrastinate_jobs
        FOR EACH ROW WHEN (OLD.status = 'doing' AND OLD.lock IS NOT NULL)
        EXECUTE FUNCTION lgslack_wake_next_of_lock();
    CREATE TRIGGER lgslack_wake_next_of_lock_ended AFTER UPDATE OF status ON procrastinate_jobs
        FOR EACH ROW WHEN (OLD.status = 'doing' AND NEW.status <> 'doing' AND OLD.lock IS NOT NULL)
        EXECUTE FUNCTION lgslack_wake_next_of_lock();
    """,
    # Many workspaces (OAuth): each team's installation (its bot token, rotated in place) and the one-time OAuth
    # states, shared by every process (bot/slack/installations.py).
    """
    CREATE TABLE lgslack_installations (
        enterprise_id text NOT NULL DEFAULT '',
        team_id text NOT NULL DEFAULT '',
        installation jsonb NOT NULL,
        bot jsonb,
        installed_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (enterprise_id, team_id)
    );
    CREATE TABLE lgslack_oauth_states (
        state text PRIMARY KEY,
        expires_at timestamptz NOT NULL
    );
    """,
    # Retention (bot/retention.py) finds a conversation's rows, and the rows done with, without reading whole tables.
    """
    CREATE INDEX lgslack_inbound_by_conversation ON lgslack_inbound (conversation_id);
    CREATE INDEX lgslack_runs_by_conversation ON lgslack_runs (conversation_id);
    CREATE INDEX lgslack_outbox_by_conversation ON lgslack_outbox (conversation_id);
    CREATE INDEX lgslack_outbox_done ON lgslack_outbox (coalesce(sent_at, created_at))
        WHERE state <> 'pending' AND role <> 'home';
    CREATE INDEX lgslack_streams_settled ON lgslack_streams (settled_at) WHERE settled_at IS NOT NULL;
    """,
    # A job queued while the job holding its lock ends: the waker above looked for waiting jobs in its own snapshot,
    # so a job whose insert committed between that look and the end's commit was woken by neither (its own
    # notification came while the lock was still held) and waited for the next poll. Now both sides take the lock's
    # transaction-scoped advisory lock first: the end looks once the insert has committed, or the insert commits
    # (and notifies) once the end has.
    """
    CREATE OR REPLACE FUNCTION lgslack_wake_next_of_lock() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        waiting procrastinate_jobs;
        payload text;
    BEGIN
        PERFORM pg_advisory_xact_lock(hashtextextended('lgslack-lock:' || OLD.lock, 0));
        SELECT * INTO waiting FROM procrastinate_jobs
        WHERE lock = OLD.lock AND status = 'todo' AND (scheduled_at IS NULL OR scheduled_at <= now())
        ORDER BY priority DESC, id LIMIT 1;
        IF FOUND THEN
            payload := json_build_object('type', 'job_inserted', 'job_id', waiting.id)::text;
            PERFORM pg_notify('procrastinate_queue_v1#' || waiting.queue_name, payload);
            PERFORM pg_notify('procrastinate_any_queue_v1', payload);
        END IF;
        RETURN NULL;
    END;
    $$;
    CREATE FUNCTION lgslack_queue_behind_lock() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_advisory_xact_lock(hashtextextended('lgslack-lock:' || NEW.lock, 0));
        RETURN NULL;
    END;
    $$;
    CREATE TRIGGER lgslack_queue_behind_lock AFTER INSERT ON procrastinate_jobs
        FOR EACH ROW WHEN (NEW.lock IS NOT NULL AND NEW.status = 'todo')
        EXECUTE FUNCTION lgslack_queue_behind_lock();
    """,
    # A queued job's wake-up, which the intake sends after its commit (issue 11). PostgreSQL serializes the commits
    # of transactions that NOTIFY (a database-wide lock, held until the commit is on disk), so with the
    # notification inside it every intake statement waited for the others' disk flushes, one after another. This
    # trigger notifies as procrastinate's own did (which it replaces), except in a transaction that said it will
    # wake the workers itself once committed (`lgslack.wake` = 'after', transaction-local: bot/records/wake.py).
    """
    CREATE FUNCTION lgslack_notify_job_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        payload text;
    BEGIN
        IF current_setting('lgslack.wake', true) = 'after' THEN
            RETURN NULL;
        END IF;
        payload := json_build_object('type', 'job_inserted', 'job_id', NEW.id)::text;
        PERFORM pg_notify('procrastinate_queue_v1#' || NEW.queue_name, payload);
        PERFORM pg_notify('procrastinate_any_queue_v1', payload);
        RETURN NULL;
    END;
    $$;
    CREATE TRIGGER lgslack_notify_job_inserted AFTER INSERT ON procrastinate_jobs
        FOR EACH ROW WHEN (NEW.status = 'todo')
        EXECUTE FUNCTION lgslack_notify_job_inserted();
    ALTER TABLE procrastinate_jobs DISABLE TRIGGER procrastinate_jobs_notify_queue_job_inserted_v1;
    """,
    # The jobs of a lock (a conversation), looked up by the queue's fetch (is a job of its lock running or ahead of
    # it?), by the waker above and by the intake's claim: procrastinate's own index leads with the id, so each lookup
    # read every queued job's entry (issue 11; procrastinate issues #393, #1242). See also `QUEUE_BY_INDEX`.
    """
    CREATE INDEX lgslack_jobs_by_lock ON procrastinate_jobs (lock, id) WHERE status IN ('todo', 'doing');
    """,
]

QUEUE_BY_INDEX = ("procrastinate_fetch_job", "lgslack_wake_next_of_lock")
"""Functions whose queries on the queue read it by its indexes, whatever PostgreSQL's statistics say of its size
(`enable_seqscan = off`, a setting of each function). The queue is nearly empty most of the time, and its
statistics say so: planned then, the fetch read the whole queue once for each job in it, and a function's plan is
kept for the connection's life. With 1,000 jobs waiting after a burst, a fetch took 196 ms instead of 0.5 ms, on
every worker's connection, when the workers are busiest (issue 11). By its indexes, a fetch reads the first waiting
job and its lock's jobs, at any size. Set again at every start (bot/migrations.py): a newer procrastinate replaces
its functions, and their settings with them."""


@dataclass
class Database:
    """The open pool and the checkpointer that shares it."""

    pool: AsyncConnectionPool[Any]
    checkpointer: AsyncPostgresSaver
    url: str

    async def close(self) -> None:
        await self.pool.close()

    async def healthy(self) -> bool:
        try:
            async with self.pool.connection(timeout=2) as conn:
                await conn.execute("SELECT 1")
        except Exception:
            return False
        return True


def start_embedded(data_dir: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL under data_dir and return its URL.

    It is stopped (its data kept) when the last process using it exits, or by `stop_embedded`; its own
    output goes to the `pgserver` logger and its server log to data_dir/postgres/log. pgserver is the `dev`
    extra: without it (a production install) this is a DatabaseError saying to set DATABASE_URL.
    """
    pgserver = _pgserver()
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = (data_dir / "postgres").resolve()
    _forget_dead_users(pgdata / ".handle_pids.json")
    server = pgserver.get_server(str(pgdata), cleanup_mode="stop")
    return str(server.get_uri())


def _pgserver() -> Any:
    """The pgserver module, or the DatabaseError that says what to do without it."""
    try:
        import pgserver
    except ImportError:
        raise DatabaseError(
            "DATABASE_URL",
            "is not set and the embedded PostgreSQL isn't installed",
            "set DATABASE_URL, or pip install 'slack-langgraph-door[dev]'",
        ) from None
    return pgserver


def _forget_dead_users(handles: Path) -> None:
    """pgserver stops the server when the last process in this list exits; a process killed with SIGKILL stays
    in it for ever, and the server would then never be stopped again: forget the processes that are gone."""
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and process_alive(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_embedded() -> None:
    """Stop the embedded PostgreSQL this process started (if it is the last one using it); the data stays."""
    if sys.modules.get("pgserver") is None:  # never imported, or not installed
        return
    from pgserver.postgres_server import PostgresServer

    for server in list(PostgresServer._instances.values()):
        server.cleanup()  # pgserver's name; with cleanup_mode="stop" it stops the server and keeps the data


async def resolve_url(database_url: str | None, data_dir: Path) -> str:
    if database_url:
        return database_url
    _pgserver()
    log.info("DATABASE_URL is not set: starting the embedded PostgreSQL under %s", data_dir)
    return await asyncio.to_thread(start_embedded, data_dir)


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.set_autocommit(True)


PREPARE_THRESHOLD = 5
"""A statement run this many times on a connection is prepared there (psycopg's default): PostgreSQL then neither
parses nor plans it again, which was a third of its CPU per turn (issue 11). BOT_PREPARED_STATEMENTS=0 turns this
off for a pooler in transaction mode that doesn't keep them (PgBouncer before 1.21)."""

STALE_PLAN = "cached plan must not change result type"


WAIT_WAKEUP = 5.0
"""Seconds a connection waiting on its socket sleeps before waking to look again (psycopg's `interval`, 0.1 s by
default, there so that a blocking wait notices Ctrl-C). In asyncio the wait is cancelled like any other, and the
socket wakes it as soon as there is something to read; but a worker's connection that listens for new jobs waits
all the time, and woke ten times a second for nothing: 3.7 ms of CPU a second per idle `worker`, 1.3–1.7 with this
(issue 11)."""


class Connection(psycopg.AsyncConnection[Any]):
    """A pool connection that remembers when one of its prepared statements went stale: a newer version of the
    bot, starting while this one still runs, added a column to a table a `SELECT *` reads. PostgreSQL refuses such
    a statement until it is prepared again, so the pool discards the connection when it comes back (`Pool`)
    and the statement's next run, on a new connection, works. The failed request itself is retried: Slack delivers
    again, a job is retried. It also waits on its socket `WAIT_WAKEUP` seconds between looks, not psycopg's 0.1."""

    stale = False

    async def wait(self, gen: Any, *args: Any, **kwargs: Any) -> Any:
        if not args and "interval" not in kwargs:
            kwargs["interval"] = WAIT_WAKEUP
        try:
            return await super().wait(gen, *args, **kwargs)
        except psycopg.errors.FeatureNotSupported as exc:
            if STALE_PLAN in str(exc):
                self.stale = True
            raise


CHECK_IDLE_AFTER = 2.0
"""A connection back in the pool for longer than this is checked (one empty query) before it is lent again."""
_returned: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], float] = weakref.WeakKeyDictionary()


async def _check(conn: psycopg.AsyncConnection[Any]) -> None:
    """The pool's check before lending a connection, for what a database outage leaves behind: a connection
    that was just used and given back worked a moment ago, and one that fails in use is discarded when it comes
    back, so only a connection idle for a while (it may have lost its server meanwhile) costs a round trip. The
    check on every checkout was a quarter of the statements of a turn (issue 11)."""
    if conn.broken or conn.closed:
        raise psycopg.OperationalError("the connection is closed")
    given_back = _returned.get(conn)
    if given_back is not None and time.monotonic() - given_back < CHECK_IDLE_AFTER:
        return
    await AsyncConnectionPool.check_connection(conn)


class Pool(AsyncConnectionPool[Any]):
    """psycopg_pool's pool, lending the connection given back last (as SQLAlchemy's `pool_use_lifo`) where psycopg's
    lends the one idle longest. A server process that has just answered answers the next statement sooner than one
    idle for a while on a machine that is not busy (issue 11: the intake's wake-up after its record took 1.4 ms on
    the longest-idle connection, 0.7 ms on the one the record used), and the connections a burst opened stay idle
    until the pool closes them (`max_idle`).

    A connection comes back into the pool as it is given back: a stale one (`Connection.stale`) is discarded, and
    the time is noted for `_check`. (A `reset` function would do the same in a task of its own, so the connection
    given back last was often not back yet when the next one was lent.)"""

    async def _get_ready_connection(self, timeout: float | None) -> Any:  # noqa: ASYNC109 (psycopg_pool's signature)
        # psycopg_pool 3.3 lends from the left of its deque and gives back to the right: the last one given back
        # goes first. Its shrinking closes from the left, now the connection idle longest.
        self._pool.rotate(1)
        return await super()._get_ready_connection(timeout)

    async def _return_connection(self, conn: Any, from_getconn: bool) -> None:
        if getattr(conn, "stale", False):
            log.warning("discarding a connection: a prepared statement of it is stale (the schema changed)")
            # Closed, it is discarded and replaced, as any closed connection given back.
            await conn.close()
        else:
            _returned[conn] = time.monotonic()
        await super()._return_connection(conn, from_getconn)


async def open_database(
    database_url: str | None, data_dir: Path, *, max_size: int = 10, prepare: bool = True, wait: float = 15.0
) -> Database:
    """Open the pool, apply migrations, set up procrastinate and the checkpointer. With `prepare`, statements run
    often are prepared on each connection (`PREPARE_THRESHOLD`). A server that does not answer yet (still starting
    beside the bot) is waited for up to `wait` seconds (BOT_DATABASE_WAIT)."""
    url = await resolve_url(database_url, data_dir)
    pool: AsyncConnectionPool[Any] = Pool(
        url,
        min_size=1,
        max_size=max_size,
        open=False,
        connection_class=Connection,
        # autocommit is set in `configure`, not kwargs: procrastinate adds its own autocommit to these kwargs.
        kwargs={"prepare_threshold": PREPARE_THRESHOLD if prepare else None, "row_factory": dict_row},
        configure=_configure,
        check=_check,
        # After an outage: fail a request for a connection within seconds (Slack retries, jobs back off) and
        # keep trying to reconnect every few seconds, so the pool is back within a second of the database.
        timeout=5.0,
        reconnect_timeout=10.0,
    )
    try:
        await pool.open(wait=True, timeout=wait)
    except Exception as exc:
        await pool.close()
        raise DatabaseError(
            "DATABASE_URL",
            f"does not answer (waited {wait:g} s)",
            f"check the server is running and the URL is right, or wait longer with BOT_DATABASE_WAIT ({exc})",
        ) from None
    checkpointer = Checkpoints(pool)
    await migrate(pool, checkpointer)
    return Database(pool=pool, checkpointer=checkpointer, url=url)


async def migrate(pool: AsyncConnectionPool[Any], checkpointer: AsyncPostgresSaver) -> None:
    """Apply what is newer than the database: the job queue's own migrations first (a step of ours may refer to
    its tables), then ours, then the checkpointer's; each step once, under an advisory lock, so processes may
    start together (bot/migrations.py)."""
    await migrations.migrate(pool, checkpointer, MIGRATIONS, by_index=QUEUE_BY_INDEX)
