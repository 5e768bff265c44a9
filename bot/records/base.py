"""The base of the store's records: SQL over the shared pool, on a connection of its own or in the caller's
transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg_pool import AsyncConnectionPool

Conn = psycopg.AsyncConnection[Any]


class Records:
    """SQL over the shared pool. Every state change that races is one atomic statement."""

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self.pool = pool

    @asynccontextmanager
    async def transaction(self, *, pipelined: bool = False) -> AsyncIterator[Conn]:
        """One connection in one transaction: pass it to the methods that must commit together. `pipelined`
        sends statements without waiting for each one's answer (psycopg's pipeline mode): BEGIN and the writes
        whose results nobody reads go out together, up to the first result read, and so on up to COMMIT."""
        async with self.pool.connection() as conn:
            if not pipelined:
                async with conn.transaction():
                    yield conn
                return
            async with pipelined_transaction(conn):
                yield conn

    async def _one(
        self, sql: str, params: tuple[Any, ...] | dict[str, Any], conn: Conn | None = None, *, binary: bool = False
    ) -> dict[str, Any] | None:
        """The first row. `binary`: results in PostgreSQL's binary format (the same values; bytea, such as the
        checkpointer's blobs, half the size on the wire and nothing to decode)."""
        if conn is not None:
            cur = await conn.execute(sql, params, binary=binary)
            return await cur.fetchone()
        async with self.pool.connection() as own:
            cur = await own.execute(sql, params, binary=binary)
            return await cur.fetchone()

    async def _all(
        self, sql: str, params: tuple[Any, ...] | dict[str, Any], conn: Conn | None = None
    ) -> list[dict[str, Any]]:
        if conn is not None:
            cur = await conn.execute(sql, params)
            return await cur.fetchall()
        async with self.pool.connection() as own:
            cur = await own.execute(sql, params)
            return await cur.fetchall()


@asynccontextmanager
async def generic_plan(conn: Conn) -> AsyncIterator[None]:
    """The statements sent within, in the caller's transaction, are planned once for any values of their parameters
    (once prepared on the connection), not again on each run. For a large read of keyed lookups that PostgreSQL
    would otherwise plan anew each time (the claimed resume's first read: about 1 ms of planning a run here, issue
    11). In a pipeline, the two settings cost no round trip."""
    await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan", prepare=False)
    yield
    await conn.execute("SET LOCAL plan_cache_mode TO DEFAULT", prepare=False)


@asynccontextmanager
async def pipelined_transaction(conn: Conn) -> AsyncIterator[Conn]:
    """One transaction in psycopg's pipeline mode, sent with one Sync at its end: BEGIN, the caller's statements
    whose results are not read before then, and COMMIT go out together and come back in one round trip.
    (psycopg's own `transaction()` in a pipeline syncs at its COMMIT and again as the pipeline ends: two.) The
    pool's connections are in autocommit (bot/db.py), so the transaction is ours to begin and end; a failure rolls it
    back. A connection outside autocommit gets psycopg's `transaction()` instead."""
    if not conn.autocommit:
        async with conn.pipeline(), conn.transaction():
            yield conn
        return
    try:
        async with conn.pipeline():
            await conn.execute("BEGIN", prepare=False)
            yield conn
            await conn.execute("COMMIT", prepare=False)
    except BaseException:
        if not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
            with suppress(psycopg.Error):
                await conn.execute("ROLLBACK", prepare=False)
        raise
