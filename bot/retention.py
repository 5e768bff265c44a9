"""Retention: what a finished conversation leaves behind is pruned once it has been idle for `days`.

A conversation is *finished* when nothing can carry it on: no request pending, none decided and not resumed yet,
no message whose turn has not finished, no run going (or due again), no outbox row to send, no streamed message
unsettled, no job of its lock waiting or running, and nothing of it newer than the retention age. Its checkpoints
(the graph's thread), its messages (`lgslack_inbound`), its runs, its outbox rows and its streamed messages are then
deleted. What stays is the audit trail and what it refers to: the conversation row (a few ids), every request
record (decided or superseded) and every decision (`lgslack_decisions`). A person writing in that thread again
starts a fresh graph thread (the same thread id, with no checkpoint).

A conversation is pruned in one transaction that first locks its row and every row it deletes, without waiting
(`NOWAIT`): a message arriving meanwhile is recorded against the conversation row, so it waits for the prune to
commit and then starts afresh, or the prune finds the row taken and leaves the conversation for its next pass.
The finished test is made again under those locks. The prune never waits on a lock, so it can't deadlock with a
turn.

Besides, in every conversation: outbox rows sent (or dropped) and streamed messages settled before the retention
age are deleted (App Home rows stay: they remember who opened their Home), and so are the job queue's finished
jobs (procrastinate's `remove_old_jobs`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import procrastinate
import psycopg
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from procrastinate import builtin_tasks
from psycopg_pool import AsyncConnectionPool

from bot.types import Conn

log = logging.getLogger(__name__)

# `c` is the conversation; %(cutoff)s the moment before which it must have been idle.
FINISHED = """
    c.created_at < %(cutoff)s
    AND NOT EXISTS (SELECT 1 FROM lgslack_interrupts x WHERE x.conversation_id = c.id
        AND (x.state = 'pending' OR (x.state = 'decided' AND x.resumed_at IS NULL)
             OR greatest(x.created_at, x.decided_at, x.resumed_at) >= %(cutoff)s))
    AND NOT EXISTS (SELECT 1 FROM lgslack_inbound x WHERE x.conversation_id = c.id
        AND (x.status <> 'done' OR x.received_at >= %(cutoff)s))
    AND NOT EXISTS (SELECT 1 FROM lgslack_runs x WHERE x.conversation_id = c.id
        AND (x.state IN ('running', 'retrying') OR x.updated_at >= %(cutoff)s))
    AND NOT EXISTS (SELECT 1 FROM lgslack_outbox x WHERE x.conversation_id = c.id AND x.role <> 'home'
        AND (x.state = 'pending' OR greatest(x.created_at, x.sent_at) >= %(cutoff)s))
    AND NOT EXISTS (SELECT 1 FROM lgslack_streams x WHERE x.conversation_id = c.id
        AND (x.settled_at IS NULL OR x.created_at >= %(cutoff)s))
    AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs j WHERE j.lock = c.id AND j.status IN ('todo', 'doing'))
"""
# Something is left to prune (a pruned conversation isn't looked at again until it is used again).
LEFT = """
    (EXISTS (SELECT 1 FROM lgslack_inbound x WHERE x.conversation_id = c.id)
     OR EXISTS (SELECT 1 FROM lgslack_runs x WHERE x.conversation_id = c.id)
     OR EXISTS (SELECT 1 FROM checkpoints k WHERE k.thread_id = c.thread_id))
"""
# The rows a prune deletes, locked first (the outbox's App Home rows stay).
OWNED = {
    "runs": "lgslack_runs WHERE conversation_id = %s",
    "inbound": "lgslack_inbound WHERE conversation_id = %s",
    "outbox": "lgslack_outbox WHERE conversation_id = %s AND role <> 'home'",
    "streams": "lgslack_streams WHERE conversation_id = %s",
}
BATCH = 200


@dataclass
class Retention:
    """Prunes finished conversations and old rows; `days` 0 keeps everything."""

    pool: AsyncConnectionPool[Any]
    days: int
    batch: int = BATCH

    @property
    def age(self) -> timedelta:
        return timedelta(days=self.days)

    async def cutoff(self) -> datetime:
        """The moment (by the database's clock) before which a conversation must have been idle."""
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT now() - %s::interval AS cutoff", (self.age,))
            row = await cur.fetchone()
        assert row is not None
        return cast(datetime, row["cutoff"])

    async def prune(self) -> dict[str, int]:
        """One pass; what it deleted, by kind."""
        counts = {"conversations": 0, "outbox": 0, "streams": 0}
        if self.days <= 0:
            return counts
        cutoff = await self.cutoff()
        after = ""
        while True:
            candidates = await self._candidates(cutoff, after)
            for conversation_id, thread_id in candidates:
                if await self.prune_conversation(conversation_id, thread_id, cutoff):
                    counts["conversations"] += 1
            if len(candidates) < self.batch:
                break
            after = candidates[-1][0]
        counts["outbox"] = await self._delete_old(
            "lgslack_outbox",
            "state <> 'pending' AND role <> 'home' AND coalesce(sent_at, created_at) < %(cutoff)s",
            cutoff,
        )
        counts["streams"] = await self._delete_old("lgslack_streams", "settled_at < %(cutoff)s", cutoff)
        if any(counts.values()):
            log.info("retention (%d days) pruned: %s", self.days, counts)
        return counts

    async def _candidates(self, cutoff: datetime, after: str) -> list[tuple[str, str]]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT c.id, c.thread_id FROM lgslack_conversations c WHERE c.id > %(after)s AND {FINISHED}"
                f" AND {LEFT} ORDER BY c.id LIMIT %(batch)s",
                {"cutoff": cutoff, "after": after, "batch": self.batch},
            )
            return [(str(r["id"]), str(r["thread_id"])) for r in await cur.fetchall()]

    async def prune_conversation(self, conversation_id: str, thread_id: str, cutoff: datetime) -> bool:
        """Prune one conversation if it is still finished; False when it isn't, or is in use right now."""
        try:
            async with self.pool.connection() as conn, conn.transaction():
                pruned = await self.prune_in(conn, conversation_id, thread_id, cutoff)
        except psycopg.errors.LockNotAvailable:
            log.debug("conversation %s is in use: pruning it next time", conversation_id)
            return False
        if pruned:
            log.debug("pruned conversation %s", conversation_id)
        return pruned

    async def prune_in(self, conn: Conn, conversation_id: str, thread_id: str, cutoff: datetime) -> bool:
        """In the caller's transaction: lock, check, delete. Raises LockNotAvailable when something holds a lock."""
        if not await self._claim(conn, conversation_id, cutoff):
            return False
        for where in OWNED.values():
            await conn.execute(f"DELETE FROM {where}", (conversation_id,))
        await AsyncPostgresSaver(conn).aprune([thread_id], strategy="delete")
        return True

    async def _claim(self, conn: Conn, conversation_id: str, cutoff: datetime) -> bool:
        """Lock the conversation and the rows a prune deletes (never waiting), then tell if it is finished."""
        await conn.execute("SET LOCAL lock_timeout = '2s'")
        cur = await conn.execute(
            "SELECT 1 FROM lgslack_conversations WHERE id = %s FOR UPDATE NOWAIT", (conversation_id,)
        )
        if await cur.fetchone() is None:
            return False
        for where in OWNED.values():
            await conn.execute(f"SELECT 1 FROM {where} FOR UPDATE NOWAIT", (conversation_id,))
        cur = await conn.execute(
            f"SELECT 1 FROM lgslack_conversations c WHERE c.id = %(id)s AND {FINISHED}",
            {"id": conversation_id, "cutoff": cutoff},
        )
        return await cur.fetchone() is not None

    async def _delete_old(self, table: str, condition: str, cutoff: datetime) -> int:
        """Delete the rows of `table` meeting `condition` a batch at a time (short transactions); how many."""
        total, batch = 0, self.batch * 10
        query = f"DELETE FROM {table} WHERE key IN (SELECT key FROM {table} WHERE {condition} LIMIT %(batch)s)"
        while True:
            async with self.pool.connection() as conn:
                cur = await conn.execute(query, {"cutoff": cutoff, "batch": batch})
            total += cur.rowcount
            if cur.rowcount < batch:
                return total


async def run_retention(context: procrastinate.JobContext, pool: AsyncConnectionPool[Any], days: int) -> None:
    """The periodic job: prune, then remove the job queue's jobs finished before the retention age."""
    if days <= 0:
        return
    await Retention(pool, days=days).prune()
    await builtin_tasks.remove_old_jobs(
        context, max_hours=days * 24, remove_failed=True, remove_cancelled=True, remove_aborted=True
    )
