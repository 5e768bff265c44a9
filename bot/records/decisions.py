"""The audit trail: one lgslack_decisions row per decision on a request, never deleted."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from bot.records.base import Conn, Records
from bot.records.conversations import Conversation
from bot.records.interrupts import InterruptRecord
from bot.types import Verdict


class DecisionRecords(Records):
    """The audit rows written with each decision, and the trail read back."""

    async def record_decisions(
        self, record: InterruptRecord, conversation: Conversation, *, user_id: str, verdicts: list[Verdict], conn: Conn
    ) -> None:
        """Append the audit rows of decisions on a request."""
        async with conn.cursor() as cur:
            await cur.executemany(
                """
                INSERT INTO lgslack_decisions (record_id, conversation_id, graph, kind, user_id, decision, action,
                    edited_args, reason, request, requested_at, latency_ms)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                        (extract(epoch FROM now() - %s::timestamptz) * 1000)::bigint)
                """,
                [
                    (
                        record.id,
                        conversation.id,
                        conversation.graph,
                        record.kind,
                        user_id,
                        v.decision,
                        v.action,
                        Jsonb(v.edited_args) if v.edited_args is not None else None,
                        v.reason,
                        Jsonb(record.payload),
                        record.created_at,
                        record.created_at,
                    )
                    for v in verdicts
                ],
            )

    async def decisions(
        self, *, conversation_id: str | None = None, since: datetime | None = None, until: datetime | None = None
    ) -> list[dict[str, Any]]:
        """The audit trail, oldest first, filtered by conversation and time."""
        return await self._all(
            """
            SELECT d.decided_at, d.user_id, d.decision, d.action, d.edited_args, d.reason, d.latency_ms,
                   d.kind, d.graph, d.conversation_id, c.channel_id, c.thread_ts, d.record_id, d.requested_at,
                   i.requested_by, d.request
            FROM lgslack_decisions d
            JOIN lgslack_conversations c ON c.id = d.conversation_id
            JOIN lgslack_interrupts i ON i.id = d.record_id
            WHERE (%(conversation)s::text IS NULL OR d.conversation_id = %(conversation)s)
              AND (%(since)s::timestamptz IS NULL OR d.decided_at >= %(since)s)
              AND (%(until)s::timestamptz IS NULL OR d.decided_at < %(until)s)
            ORDER BY d.decided_at, d.id
            """,
            {"conversation": conversation_id, "since": since, "until": until},
        )
