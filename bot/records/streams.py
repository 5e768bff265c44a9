"""Streams: the messages shown in Slack while the model writes them, one row per AI message of a run.

A row is stored (`starting`) before Slack is asked to start the message and gets its ts (`open`) right after, so
whatever a crash cuts short is known: the run's outcome settles every row of the run in its own transaction,
turning it into the final answer (an outbox update of that ts) or into a removal (an outbox delete).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import psycopg
from psycopg_pool import AsyncConnectionPool

Mode = Literal["stream", "post"]
"""`stream`: chat.startStream/appendStream/stopStream; `post`: where streaming is refused, a message posted (with
the row's key in its metadata) and updated."""
State = Literal["starting", "open", "stopped"]
Conn = psycopg.AsyncConnection[Any]


def stream_key(run_key: str, message_id: str) -> str:
    return f"stream:{run_key}:{message_id}"


@dataclass(frozen=True)
class StreamRow:
    key: str
    run_key: str
    conversation_id: str
    message_id: str
    channel_id: str
    thread_ts: str
    mode: Mode
    ts: str | None
    state: State
    settled: bool
    created_at: datetime
    age: float = 0.0
    """Seconds since the row was stored, by the database's clock (read by `get`)."""


def _row(row: dict[str, Any]) -> StreamRow:
    return StreamRow(
        key=row["key"],
        run_key=row["run_key"],
        conversation_id=row["conversation_id"],
        message_id=row["message_id"],
        channel_id=row["channel_id"],
        thread_ts=row["thread_ts"],
        mode=row["mode"],
        ts=row["ts"],
        state=row["state"],
        settled=row["settled_at"] is not None,
        created_at=row["created_at"],
        age=float(row.get("age") or 0.0),
    )


class Streams:
    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self.pool = pool

    async def begin(
        self,
        key: str,
        *,
        run_key: str,
        conversation_id: str,
        message_id: str,
        channel_id: str,
        thread_ts: str,
        mode: Mode,
    ) -> bool:
        """Record a message about to be started; False if this key was recorded before (don't start it again)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                """
                INSERT INTO lgslack_streams (key, run_key, conversation_id, message_id, channel_id, thread_ts, mode)
                VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (key) DO NOTHING RETURNING key
                """,
                (key, run_key, conversation_id, message_id, channel_id, thread_ts, mode),
            )
            return await cur.fetchone() is not None

    async def restart_as_post(self, key: str) -> None:
        """Slack refused to start the stream (nothing was created): the same row becomes a posted message."""
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE lgslack_streams SET mode = 'post', created_at = now() WHERE key = %s AND state = 'starting'",
                (key,),
            )

    async def opened(self, key: str, ts: str) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE lgslack_streams SET ts = %s, state = 'open' WHERE key = %s AND state = 'starting'", (ts, key)
            )

    async def stopped(self, key: str) -> None:
        async with self.pool.connection() as conn:
            await conn.execute("UPDATE lgslack_streams SET state = 'stopped' WHERE key = %s AND ts IS NOT NULL", (key,))

    async def forget(self, key: str) -> None:
        """Slack refused the message outright: nothing to finish or remove."""
        async with self.pool.connection() as conn:
            await conn.execute("DELETE FROM lgslack_streams WHERE key = %s AND state = 'starting'", (key,))

    async def get(self, key: str) -> StreamRow | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT *, extract(epoch FROM now() - created_at)::float8 AS age FROM lgslack_streams WHERE key = %s",
                (key,),
            )
            row = await cur.fetchone()
        return _row(row) if row else None

    async def unsettled(self, conn: Conn, run_key: str) -> list[StreamRow]:
        """The rows of a run its outcome has not taken over yet, oldest first, locked for that transaction."""
        cur = await conn.execute(
            "SELECT * FROM lgslack_streams WHERE run_key = %s AND settled_at IS NULL ORDER BY created_at, key"
            " FOR UPDATE",
            (run_key,),
        )
        return [_row(r) for r in await cur.fetchall()]

    async def settle(self, conn: Conn, keys: list[str]) -> None:
        """The outcome's outbox rows now finish or remove these messages."""
        await conn.execute("UPDATE lgslack_streams SET settled_at = now() WHERE key = ANY(%s)", (keys,))

    async def starting_elsewhere(self, row: StreamRow, *, within: float) -> bool:
        """Another message of the conversation is being started right now (its start call may still be going)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                """
                SELECT 1 FROM lgslack_streams WHERE conversation_id = %s AND key <> %s AND state = 'starting'
                  AND settled_at IS NULL AND created_at > now() - make_interval(secs => %s)
                """,
                (row.conversation_id, row.key, within),
            )
            return await cur.fetchone() is not None

    async def known_ts(self, conversation_id: str) -> set[str]:
        """Every message of the conversation our records know: streams, the outbox's posts, requests, notices."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                """
                SELECT ts FROM lgslack_streams WHERE conversation_id = %(c)s AND ts IS NOT NULL
                UNION SELECT ts FROM lgslack_outbox WHERE conversation_id = %(c)s AND ts IS NOT NULL
                UNION SELECT message_ts FROM lgslack_interrupts WHERE conversation_id = %(c)s AND message_ts IS NOT NULL
                UNION SELECT notice_ts FROM lgslack_interrupts WHERE conversation_id = %(c)s AND notice_ts IS NOT NULL
                """,
                {"c": conversation_id},
            )
            return {str(r["ts"]) for r in await cur.fetchall()}
