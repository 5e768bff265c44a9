"""Our records: conversations (Slack thread ↔ graph thread), inbound messages, and interrupts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

_THREAD_NAMESPACE = uuid.UUID("0f6d9a52-3c1e-4b8e-9a57-5a1c2d7e8b10")


def conversation_key(team_id: str, channel_id: str, thread_ts: str) -> str:
    return f"{team_id}:{channel_id}:{thread_ts}"


def derive_thread_id(team_id: str, channel_id: str, thread_ts: str) -> str:
    """The graph thread_id of a Slack thread: the same thread always maps to the same id."""
    return str(uuid.uuid5(_THREAD_NAMESPACE, conversation_key(team_id, channel_id, thread_ts)))


@dataclass(frozen=True)
class Conversation:
    id: str
    team_id: str
    channel_id: str
    thread_ts: str
    thread_id: str
    graph: str
    started_by: str | None


@dataclass(frozen=True)
class Inbound:
    team_id: str
    channel_id: str
    ts: str
    conversation_id: str
    user_id: str
    text: str
    status: str


@dataclass(frozen=True)
class InterruptRecord:
    id: str
    conversation_id: str
    interrupt_id: str
    payload: Any
    kind: str
    channel_id: str | None
    message_ts: str | None
    state: str
    decided_by: str | None
    decided_at: datetime | None
    answer_text: str | None
    resume_value: Any
    resumed_at: datetime | None
    created_at: datetime

    @property
    def pending(self) -> bool:
        return self.state == "pending"


def _conversation(row: dict[str, Any]) -> Conversation:
    return Conversation(
        id=row["id"],
        team_id=row["team_id"],
        channel_id=row["channel_id"],
        thread_ts=row["thread_ts"],
        thread_id=row["thread_id"],
        graph=row["graph"],
        started_by=row["started_by"],
    )


def _interrupt(row: dict[str, Any]) -> InterruptRecord:
    return InterruptRecord(
        id=str(row["id"]),
        conversation_id=row["conversation_id"],
        interrupt_id=row["interrupt_id"],
        payload=row["payload"],
        kind=row["kind"],
        channel_id=row["channel_id"],
        message_ts=row["message_ts"],
        state=row["state"],
        decided_by=row["decided_by"],
        decided_at=row["decided_at"],
        answer_text=row["answer_text"],
        resume_value=row["resume_value"],
        resumed_at=row["resumed_at"],
        created_at=row["created_at"],
    )


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


class Store:
    """SQL over the shared pool. Every state change that races is one atomic statement."""

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self.pool = pool

    async def _one(self, sql: str, params: tuple[Any, ...]) -> dict[str, Any] | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(sql, params)
            return await cur.fetchone()  # type: ignore[no-any-return]

    async def _all(self, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(sql, params)
            return await cur.fetchall()

    # conversations

    async def find_conversation(self, *, team_id: str, channel_id: str, thread_ts: str) -> Conversation | None:
        row = await self._one(
            "SELECT * FROM lgslack_conversations WHERE id = %s",
            (conversation_key(team_id, channel_id, thread_ts),),
        )
        return _conversation(row) if row else None

    async def get_conversation(self, conversation_id: str) -> Conversation:
        row = await self._one("SELECT * FROM lgslack_conversations WHERE id = %s", (conversation_id,))
        if row is None:
            raise LookupError(f"no conversation {conversation_id}")
        return _conversation(row)

    async def save_conversation(
        self, *, team_id: str, channel_id: str, thread_ts: str, graph: str, started_by: str | None
    ) -> Conversation:
        """Create the conversation of a Slack thread, or return the one that exists."""
        key = conversation_key(team_id, channel_id, thread_ts)
        await self._one(
            """
            INSERT INTO lgslack_conversations (id, team_id, channel_id, thread_ts, thread_id, graph, started_by)
            VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING RETURNING id
            """,
            (key, team_id, channel_id, thread_ts, derive_thread_id(team_id, channel_id, thread_ts), graph, started_by),
        )
        return await self.get_conversation(key)

    async def channel_graph(self, *, team_id: str, channel_id: str) -> str | None:
        """The graph new conversations in this channel use, when one was chosen for it."""
        row = await self._one(
            "SELECT graph FROM lgslack_channel_graphs WHERE team_id = %s AND channel_id = %s", (team_id, channel_id)
        )
        return str(row["graph"]) if row else None

    async def set_channel_graph(self, *, team_id: str, channel_id: str, graph: str | None) -> None:
        if graph is None:
            await self._one(
                "DELETE FROM lgslack_channel_graphs WHERE team_id = %s AND channel_id = %s RETURNING graph",
                (team_id, channel_id),
            )
            return
        await self._one(
            """
            INSERT INTO lgslack_channel_graphs (team_id, channel_id, graph) VALUES (%s, %s, %s)
            ON CONFLICT (team_id, channel_id) DO UPDATE SET graph = EXCLUDED.graph RETURNING graph
            """,
            (team_id, channel_id, graph),
        )

    # inbound messages

    async def record_inbound(
        self, *, conversation: Conversation, channel_id: str, ts: str, user_id: str, text: str
    ) -> bool:
        """Record a delivered message once; False when Slack delivered it before (retry or double delivery)."""
        row = await self._one(
            """
            INSERT INTO lgslack_inbound (team_id, channel_id, ts, conversation_id, user_id, text)
            VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING ts
            """,
            (conversation.team_id, channel_id, ts, conversation.id, user_id, text),
        )
        return row is not None

    async def forget_inbound(self, *, team_id: str, channel_id: str, ts: str) -> None:
        await self._one(
            "DELETE FROM lgslack_inbound WHERE team_id = %s AND channel_id = %s AND ts = %s RETURNING ts",
            (team_id, channel_id, ts),
        )

    async def get_inbound(self, *, team_id: str, channel_id: str, ts: str) -> Inbound | None:
        row = await self._one(
            "SELECT * FROM lgslack_inbound WHERE team_id = %s AND channel_id = %s AND ts = %s",
            (team_id, channel_id, ts),
        )
        if row is None:
            return None
        return Inbound(**{k: row[k] for k in Inbound.__dataclass_fields__})

    async def set_inbound_status(self, *, team_id: str, channel_id: str, ts: str, status: str) -> None:
        await self._one(
            "UPDATE lgslack_inbound SET status = %s WHERE team_id = %s AND channel_id = %s AND ts = %s RETURNING ts",
            (status, team_id, channel_id, ts),
        )

    # interrupts

    async def save_interrupt(
        self, *, conversation_id: str, interrupt_id: str, payload: Any, kind: str
    ) -> tuple[InterruptRecord, bool]:
        """Insert the record of a pending interrupt; return it and whether it is new."""
        row = await self._one(
            """
            INSERT INTO lgslack_interrupts (conversation_id, interrupt_id, payload, kind)
            VALUES (%s, %s, %s, %s) ON CONFLICT (conversation_id, interrupt_id) DO NOTHING RETURNING *
            """,
            (conversation_id, interrupt_id, Jsonb(payload), kind),
        )
        if row is not None:
            return _interrupt(row), True
        row = await self._one(
            "SELECT * FROM lgslack_interrupts WHERE conversation_id = %s AND interrupt_id = %s",
            (conversation_id, interrupt_id),
        )
        assert row is not None
        return _interrupt(row), False

    async def set_interrupt_message(self, record_id: str, *, channel_id: str, message_ts: str) -> None:
        await self._one(
            "UPDATE lgslack_interrupts SET channel_id = %s, message_ts = %s WHERE id = %s RETURNING id",
            (channel_id, message_ts, record_id),
        )

    async def get_interrupt(self, record_id: str) -> InterruptRecord | None:
        if not _is_uuid(record_id):
            return None
        row = await self._one("SELECT * FROM lgslack_interrupts WHERE id = %s", (record_id,))
        return _interrupt(row) if row else None

    async def pending_interrupts(self, conversation_id: str) -> list[InterruptRecord]:
        rows = await self._all(
            "SELECT * FROM lgslack_interrupts WHERE conversation_id = %s AND state = 'pending' ORDER BY created_at",
            (conversation_id,),
        )
        return [_interrupt(r) for r in rows]

    async def claim_interrupt(
        self, record_id: str, *, user_id: str, answer_text: str, resume_value: Any
    ) -> InterruptRecord | None:
        """Decide a pending interrupt in one statement; None when someone else decided it first."""
        row = await self._one(
            """
            UPDATE lgslack_interrupts
            SET state = 'decided', decided_by = %s, decided_at = now(), answer_text = %s, resume_value = %s
            WHERE id = %s AND state = 'pending' RETURNING *
            """,
            (user_id, answer_text, Jsonb(resume_value), record_id),
        )
        return _interrupt(row) if row else None

    async def undo_claim(self, record_id: str) -> None:
        await self._one(
            "UPDATE lgslack_interrupts SET state = 'pending', decided_by = NULL, decided_at = NULL,"
            " answer_text = NULL, resume_value = NULL WHERE id = %s AND resumed_at IS NULL RETURNING id",
            (record_id,),
        )

    async def mark_resumed(self, record_id: str) -> bool:
        row = await self._one(
            "UPDATE lgslack_interrupts SET resumed_at = now() WHERE id = %s AND resumed_at IS NULL RETURNING id",
            (record_id,),
        )
        return row is not None

    async def supersede_missing(self, conversation_id: str, live_ids: list[str]) -> list[InterruptRecord]:
        """Pending records whose interrupt the graph no longer has become superseded; return them."""
        rows = await self._all(
            """
            UPDATE lgslack_interrupts SET state = 'superseded'
            WHERE conversation_id = %s AND state = 'pending' AND NOT (interrupt_id = ANY(%s)) RETURNING *
            """,
            (conversation_id, live_ids),
        )
        return [_interrupt(r) for r in rows]
