"""Waiting for the bot to have nothing left to do: the condition tests wait on instead of a fixed sleep."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg

BUSY_SQL = """
SELECT
  (SELECT count(*) FROM procrastinate_jobs
    WHERE status IN ('todo', 'doing') AND task_name <> 'lgslack.reconcile'
      AND (scheduled_at IS NULL OR scheduled_at <= now())) AS jobs,
  (SELECT count(*) FROM lgslack_outbox WHERE state = 'pending') AS outbox,
  (SELECT count(*) FROM lgslack_inbound WHERE status <> 'done') AS inbound
"""


async def busy(database_url: str) -> dict[str, int]:
    """What is still to do: jobs due or running (not timers set for later), unsent outbox rows, unfinished turns."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        cur = await conn.execute(BUSY_SQL)
        row = await cur.fetchone()
    assert row is not None
    return {"jobs": int(row[0]), "outbox": int(row[1]), "inbound": int(row[2])}


async def wait_drained(database_url: str, slack: Any, timeout: float = 30.0) -> None:  # noqa: ASYNC109
    """Until the queue is drained, the outbox sent, every turn finished and the sandbox idle — twice in a row, so
    an event the sandbox delivered in between (which may queue a job) is counted too."""
    deadline = time.monotonic() + timeout
    quiet = 0
    last: dict[str, int] = {}
    while quiet < 2:
        await slack.idle(timeout=max(0.1, deadline - time.monotonic()))
        last = await busy(database_url)
        quiet = quiet + 1 if not any(last.values()) else 0
        if time.monotonic() > deadline:
            raise TimeoutError(f"the bot still had work after {timeout} s: {last}")
        if quiet < 2:
            await asyncio.sleep(0.05)
