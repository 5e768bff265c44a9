"""Waking the job workers after a commit, not inside it (issue 11).

procrastinate wakes its workers with a NOTIFY sent by a trigger when a job is inserted. PostgreSQL delivers a
transaction's notifications in commit order by holding a database-wide lock from just before its commit until the
commit is on disk, so transactions that notify commit one after another, each waiting for its own disk flush,
where others share a flush. A transaction that queues a job on the ack path (`take_in`) while others are being
taken in therefore says, with `QUIET`, that it will wake the workers itself (the trigger of bot/db.py then sends
nothing), and `wake` sends the same notification once it has committed: in a transaction of its own that does not
wait for the disk, since a lost wake-up costs only the workers' next poll, never the job. A message taken in alone
has no commit to wait for: its own commit notifies, which saves the turn a round trip (`Door._take_in`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

log = logging.getLogger(__name__)

QUIET = "set_config('lgslack.wake', 'after', true)"
"""SQL that makes the rest of its transaction queue jobs without notifying (transaction-local)."""

_WAKE = """
SELECT set_config('synchronous_commit', 'off', true),
    pg_notify('procrastinate_queue_v1#' || %(queue)s, payload), pg_notify('procrastinate_any_queue_v1', payload)
FROM unnest(%(payloads)s::text[]) AS payload
"""


async def wake(pool: AsyncConnectionPool[Any], queue: str, job_ids: Sequence[int]) -> None:
    """Notify the workers of jobs that were queued, committed, without a notification (`QUIET`): procrastinate's
    own "job inserted" payload on its queue's channel and the any-queue one. One statement, in autocommit."""
    if not job_ids:
        return
    payloads = [json.dumps({"type": "job_inserted", "job_id": job_id}) for job_id in job_ids]
    try:
        async with pool.connection() as conn:
            await conn.execute(_WAKE, {"queue": queue, "payloads": payloads})
    except (psycopg.Error, PoolTimeout) as exc:
        # The jobs are committed: a worker's poll finds them (procrastinate polls every few seconds).
        log.warning("waking the workers for jobs %s failed (%s); they are found by the next poll", job_ids, exc)
