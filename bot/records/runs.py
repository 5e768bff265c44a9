"""Runs: a graph run a job started, with the checkpoint it started from, so a retried job knows where it is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from psycopg_pool import AsyncConnectionPool

RunState = Literal["running", "retrying", "ran", "failed"]
Conn = psycopg.AsyncConnection[Any]


@dataclass(frozen=True)
class Run:
    key: str
    conversation_id: str
    kind: str
    state: RunState
    before: str | None
    requester: str | None
    error: str | None


def _run(row: dict[str, Any]) -> Run:
    return Run(
        key=row["key"],
        conversation_id=row["conversation_id"],
        kind=row["kind"],
        state=row["state"],
        before=row["before"],
        requester=row["requester"],
        error=row["error"],
    )


def run_columns(alias: str) -> str:
    """The columns of the run `alias` beside another table's, prefixed `alias_` (read back by `run_from`)."""
    return ", ".join(f"{alias}.{name} AS {alias}_{name}" for name in Run.__dataclass_fields__)


R_COLUMNS = run_columns("r")
"""A run's columns beside another table's, prefixed (read back by `prefixed_run`; all NULL: no run)."""


def prefixed_run(row: dict[str, Any]) -> Run | None:
    return run_from(row, "r_")


def run_from(row: dict[str, Any], prefix: str) -> Run | None:
    """The run whose columns are in `row` with `prefix` (None when they are NULL: no run)."""
    if row[f"{prefix}key"] is None:
        return None
    return _run({name: row[f"{prefix}{name}"] for name in Run.__dataclass_fields__})


class Runs:
    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self.pool = pool

    async def get(self, key: str) -> Run | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT * FROM lgslack_runs WHERE key = %s", (key,))
            row = await cur.fetchone()
        return _run(row) if row else None

    async def begin(
        self, conn: Conn, key: str, *, conversation_id: str, kind: str, before: str | None, requester: str | None
    ) -> Run | None:
        """Record that a run starts from checkpoint `before`; None if it was begun already."""
        cur = await conn.execute(
            """
            INSERT INTO lgslack_runs (key, conversation_id, kind, before, requester) VALUES (%s, %s, %s, %s, %s)
            ON CONFLICT (key) DO NOTHING RETURNING *
            """,
            (key, conversation_id, kind, before, requester),
        )
        row = await cur.fetchone()
        return _run(row) if row else None

    async def finish(self, conn: Conn, key: str, *, state: RunState, error: str | None = None) -> None:
        await conn.execute(
            "UPDATE lgslack_runs SET state = %s, error = %s, updated_at = now() WHERE key = %s",
            (state, error, key),
        )

    async def retry(self, conn: Conn, key: str) -> Run | None:
        """A failed run is due again (its Retry button); None unless it had failed."""
        cur = await conn.execute(
            "UPDATE lgslack_runs SET state = 'retrying', error = NULL, updated_at = now()"
            " WHERE key = %s AND state = 'failed' RETURNING *",
            (key,),
        )
        row = await cur.fetchone()
        return _run(row) if row else None

    async def stale(self, *, kind: str, older_than: float) -> list[Run]:
        """Runs still marked running a while after they began: their job may be gone."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT * FROM lgslack_runs WHERE state IN ('running', 'retrying') AND kind = %s"
                " AND updated_at < now() - make_interval(secs => %s)",
                (kind, older_than),
            )
            return [_run(r) for r in await cur.fetchall()]
