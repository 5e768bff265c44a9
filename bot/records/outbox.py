"""The outbox: every message the bot means to post or rewrite, written in the transaction of the state it shows.

A row is leased before its Slack call and marked sent after it, so a crash between the two leaves a row whose
next attempt first looks in Slack for the message (its key travels in the message metadata) before posting.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

import psycopg
from psycopg.types.json import Json
from psycopg_pool import AsyncConnectionPool

from bot.records.base import pipelined_transaction

Op = Literal["post", "update", "delete"]
Role = Literal["message", "request", "escalate", "notice", "view", "notice_view", "returned", "home", "stream"]
"""What a row shows. `message` is a fixed message; the others are rendered from their request's record when
they are sent, so they always show its latest state (pending, decided, superseded). `home` is a person's App Home
(key `home_key(team, user)`), rendered from every open request when it is sent; see `arm_home`. `stream` is a
message streamed while it was written: `update` makes it the final answer, `delete` removes it (bot/flow/streams.py)."""


def home_key(team_id: str, user_id: str) -> str:
    """The outbox row of a person's App Home."""
    return f"home:{team_id}:{user_id}"


def parse_home_key(key: str) -> tuple[str, str]:
    """(team_id, user_id) of a `home_key`."""
    _, team_id, user_id = key.split(":", 2)
    return team_id, user_id


# Each arming of a home row counts up its version (in `message`): a send marks the row sent only if no decision
# armed it again meanwhile, else it renders and publishes once more.
_NEXT_VERSION = "json_build_object('v', coalesce((lgslack_outbox.message->>'v')::bigint, 0) + 1)"


@dataclass(frozen=True)
class Intent:
    key: str
    seq: int
    conversation_id: str | None
    op: Op
    role: Role
    channel_id: str | None
    thread_ts: str | None
    target_ts: str | None
    record_id: str | None
    message: dict[str, Any] | None
    attempts: int
    created_at: Any
    leased_at: float | None = None
    """When this process took the lease (`time.monotonic()`, read before the statement was sent)."""

    @property
    def tried_before(self) -> bool:
        """An earlier attempt may have reached Slack: look before posting again."""
        return self.attempts > 1

    def leased_within(self, seconds: float) -> bool:
        """Whether the lease was taken less than `seconds` ago: a call starting now ends before it runs out."""
        return self.leased_at is not None and time.monotonic() - self.leased_at < seconds


def _intent(row: dict[str, Any]) -> Intent:
    return Intent(
        key=row["key"],
        seq=row["seq"],
        conversation_id=row["conversation_id"],
        op=row["op"],
        role=row["role"],
        channel_id=row["channel_id"],
        thread_ts=row["thread_ts"],
        target_ts=row["target_ts"],
        record_id=str(row["record_id"]) if row["record_id"] else None,
        message=row["message"],
        attempts=row["attempts"],
        created_at=row["created_at"],
    )


Conn = psycopg.AsyncConnection[Any]

_TAKE_DUE = """
    WITH due AS (
        SELECT key FROM lgslack_outbox WHERE state = 'pending'
          AND (%(conversation)s::text IS NULL OR conversation_id = %(conversation)s)
          AND (%(keys)s::text[] IS NULL OR key = ANY(%(keys)s))
          AND (leased_until IS NULL OR leased_until < now())
        FOR UPDATE SKIP LOCKED
    )
    UPDATE lgslack_outbox o SET attempts = o.attempts + 1, leased_until = now() + make_interval(secs => %(seconds)s)
    FROM due WHERE o.key = due.key
    RETURNING o.*
"""
"""Lease every row still to send (for one conversation, or by key) that no other attempt holds: one statement."""


def _taken(rows: list[dict[str, Any]], leased_at: float) -> list[Intent]:
    return sorted((replace(_intent(r), leased_at=leased_at) for r in rows), key=lambda i: i.seq)


_MARK_SENT = (
    "UPDATE lgslack_outbox SET state = 'sent', ts = %s, sent_at = now(), leased_until = NULL"
    " WHERE key = %s AND attempts = %s"
)
"""A row sent, under the lease it was sent with: a rewrite queued again meanwhile (`add` resets its attempts) stays
due, and the next attempt shows the newer state instead of this one hiding it."""


class Outbox:
    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self.pool = pool

    async def add(
        self,
        conn: Conn,
        key: str,
        *,
        op: Op = "post",
        role: Role = "message",
        conversation_id: str | None,
        channel_id: str | None = None,
        thread_ts: str | None = None,
        target_ts: str | None = None,
        record_id: str | None = None,
        message: dict[str, Any] | None = None,
    ) -> None:
        """Record the intent to show something; a key seen before is kept, except a view, which is due again."""
        again = "DO UPDATE SET state = 'pending', attempts = 0, leased_until = NULL" if op == "update" else "DO NOTHING"
        await conn.execute(
            f"""
            INSERT INTO lgslack_outbox
                (key, conversation_id, op, role, channel_id, thread_ts, target_ts, record_id, message)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (key) {again}
            """,
            (
                key,
                conversation_id,
                op,
                role,
                channel_id,
                thread_ts,
                target_ts,
                record_id,
                Json(message) if message is not None else None,
            ),
        )

    async def rewrite(self, conn: Conn, role: Role, *, record_id: str, conversation_id: str) -> None:
        """Queue a rewrite of a request's message (`view`) or of its notice (`notice_view`) to its current state."""
        await self.add(
            conn, f"{role}:{record_id}", op="update", role=role, conversation_id=conversation_id, record_id=record_id
        )

    async def escalate(self, conn: Conn, *, record_id: str, conversation_id: str, channel: str) -> None:
        """Queue the experts' copy of a request in `channel`."""
        await self.add(
            conn,
            f"escalate:{record_id}:{channel}",
            role="escalate",
            conversation_id=conversation_id,
            channel_id=channel,
            record_id=record_id,
        )

    async def arm_home(self, conn: Conn, key: str) -> None:
        """A person opened their App Home: publish it (again). The row stays once sent: decisions re-arm it."""
        await conn.execute(
            f"""
            INSERT INTO lgslack_outbox (key, conversation_id, op, role, message)
            VALUES (%s, NULL, 'update', 'home', '{{"v": 1}}')
            ON CONFLICT (key) DO UPDATE SET state = 'pending', attempts = 0, error = NULL, message = {_NEXT_VERSION}
            """,
            (key,),
        )

    async def rearm_homes(self, conn: Conn, keys: list[str], *, conversation_id: str) -> None:
        """In a decision's transaction: the App Homes of these people (those who ever opened theirs) are due again.
        The conversation is noted so the reconciler re-sends them with it after a failure."""
        await conn.execute(
            f"""
            UPDATE lgslack_outbox SET state = 'pending', attempts = 0, error = NULL, conversation_id = %s,
                message = {_NEXT_VERSION}
            WHERE key = ANY(%s) AND role = 'home'
            """,
            (conversation_id, keys),
        )

    async def rearm_team_homes(self, conn: Conn, team_id: str, *, conversation_id: str) -> None:
        """In a run's transaction: every App Home of the team (of those who ever opened theirs) is due again, for a
        new request whose deciders can't be told without asking Slack (a user group is named)."""
        await conn.execute(
            f"""
            UPDATE lgslack_outbox SET state = 'pending', attempts = 0, error = NULL, conversation_id = %s,
                message = {_NEXT_VERSION}
            WHERE role = 'home' AND key LIKE %s
            """,
            (conversation_id, home_key(team_id, "%").replace("_", "\\_")),
        )

    async def home_sent(self, intent: Intent, version: int) -> int | None:
        """Mark a home row sent as of `version`; the newer version when a decision armed it again meanwhile (the
        caller publishes once more), None when done."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                """
                UPDATE lgslack_outbox SET state = 'sent', sent_at = now(), leased_until = NULL
                WHERE key = %s AND coalesce((message->>'v')::bigint, 0) = %s RETURNING key
                """,
                (intent.key, version),
            )
            if await cur.fetchone() is not None:
                return None
            cur = await conn.execute(
                "SELECT coalesce((message->>'v')::bigint, 0) AS v FROM lgslack_outbox"
                " WHERE key = %s AND state = 'pending'",
                (intent.key,),
            )
            row = await cur.fetchone()
        return int(row["v"]) if row is not None else None

    async def take_due(
        self, seconds: float, *, conversation_id: str | None = None, keys: list[str] | None = None
    ) -> list[Intent]:
        """Lease, in one statement, every row still to send (for one conversation or by key) that no other attempt
        holds; oldest intent first. Rows held by another attempt, or being changed by an open transaction, are
        left to it. Each post renews its row's lease unless it was taken a moment ago (`Intent.leased_within`)."""
        leased_at = time.monotonic()
        async with self.pool.connection() as conn:
            cur = await conn.execute(_TAKE_DUE, {"conversation": conversation_id, "keys": keys, "seconds": seconds})
            rows = await cur.fetchall()
        return _taken(rows, leased_at)

    async def take_due_in(
        self, conn: Conn, seconds: float, *, conversation_id: str
    ) -> Callable[[], Awaitable[list[Intent]]]:
        """`take_due` for one conversation as the last statement of the caller's pipelined transaction: the rows it
        queued are leased as they commit, in its round trip. Returns what reads the rows taken, to await once the
        transaction has committed (a rollback takes nothing). The caller sends them next, with no Slack call in
        between: a process killed before sending holds them until the lease runs out, as after `take_due`."""
        leased_at = time.monotonic()  # no later than the lease's start: its freshness is never overstated
        cur = await conn.execute(_TAKE_DUE, {"conversation": conversation_id, "keys": None, "seconds": seconds})

        async def taken() -> list[Intent]:
            return _taken(await cur.fetchall(), leased_at)

        return taken

    async def give_back(self, intents: list[Intent]) -> None:
        """Rows leased by `take_due` and never tried (an earlier one failed): free again, as if never taken."""
        if not intents:
            return
        async with self.pool.connection() as conn:
            await conn.execute(
                """
                UPDATE lgslack_outbox o SET attempts = o.attempts - 1, leased_until = NULL
                FROM unnest(%s::text[], %s::int[]) AS mine(key, attempts)
                WHERE o.key = mine.key AND o.attempts = mine.attempts AND o.state = 'pending'
                """,
                ([i.key for i in intents], [i.attempts for i in intents]),
            )

    async def renew(self, intent: Intent, seconds: float) -> bool:
        """Hold the row for one more call; False when its lease ran out and another attempt has taken it."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                """
                UPDATE lgslack_outbox SET leased_until = now() + make_interval(secs => %s)
                WHERE key = %s AND attempts = %s AND state = 'pending' RETURNING key
                """,
                (seconds, intent.key, intent.attempts),
            )
            return await cur.fetchone() is not None

    async def sent(self, intent: Intent, *, ts: str | None, channel_id: str | None = None) -> None:
        """Mark a row sent; a request's message or notice is remembered on its record in the same transaction."""
        if intent.record_id is None:
            # Nothing else to change: one statement, no transaction (the common case: a reply).
            async with self.pool.connection() as conn:
                await conn.execute(_MARK_SENT, (ts, intent.key, intent.attempts))
            return
        async with self.pool.connection() as conn, pipelined_transaction(conn):
            if intent.op == "update" and ts is None and intent.role in ("view", "notice_view"):
                # Nothing to rewrite yet. If the request's message became known meanwhile (its post confirmed by
                # another process), stay due instead: marking this sent would lose the rewrite.
                column = "message_ts" if intent.role == "view" else "notice_ts"
                cur = await conn.execute(
                    f"""
                    UPDATE lgslack_outbox SET state = CASE WHEN i.{column} IS NULL THEN 'sent' ELSE 'pending' END,
                        sent_at = now(), leased_until = NULL
                    FROM lgslack_interrupts i WHERE key = %s AND attempts = %s AND i.id = %s
                    """,  # `column` is one of two constants
                    (intent.key, intent.attempts, intent.record_id),
                )
                return
            await conn.execute(_MARK_SENT, (ts, intent.key, intent.attempts))
            if intent.op != "post" or ts is None:
                return
            if intent.role in ("request", "escalate"):
                cur = await conn.execute(
                    "UPDATE lgslack_interrupts SET channel_id = %s, message_ts = %s WHERE id = %s RETURNING state",
                    (channel_id or intent.channel_id, ts, intent.record_id),
                )
                view = f"view:{intent.record_id}"
            elif intent.role == "notice":
                cur = await conn.execute(
                    "UPDATE lgslack_interrupts SET notice_ts = %s WHERE id = %s RETURNING state", (ts, intent.record_id)
                )
                view = f"notice_view:{intent.record_id}"
            else:
                return
            row = await cur.fetchone()
            if row is not None and row["state"] != "pending":
                # Decided (or superseded) while the post was in flight: its rewrite found no message to rewrite and
                # was marked sent. Now the message is known, rewrite it again.
                await conn.execute(
                    "UPDATE lgslack_outbox SET state = 'pending', attempts = 0, leased_until = NULL WHERE key = %s",
                    (view,),
                )

    async def release(self, key: str, *, error: str, backoff: float) -> None:
        """A transient failure: the row waits `backoff` seconds before anyone tries it again."""
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE lgslack_outbox SET error = %s, leased_until = now() + make_interval(secs => %s)"
                " WHERE key = %s AND state = 'pending'",
                (error, backoff, key),
            )

    async def drop(self, key: str, *, error: str) -> None:
        """Slack refused the row for good (the channel is gone, the message was deleted): stop trying."""
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE lgslack_outbox SET state = 'dropped', error = %s, leased_until = NULL WHERE key = %s",
                (error, key),
            )

    async def stale_conversations(self, *, older_than: float) -> list[str]:
        """Conversations with rows nobody is sending (a crash, an outage): the reconciler sends them."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                """
                SELECT DISTINCT conversation_id FROM lgslack_outbox
                WHERE state = 'pending' AND conversation_id IS NOT NULL
                  AND created_at < now() - make_interval(secs => %s)
                  AND (leased_until IS NULL OR leased_until < now())
                """,
                (older_than,),
            )
            return [r["conversation_id"] for r in await cur.fetchall()]
