"""Escalation timers: a reminder in the experts' thread, a move to the fallback channel, the final timeout.

Each timer is a procrastinate job scheduled when the request was recorded. A timer that fires after the request
was answered finds it decided and does nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.flow.decisions import Decisions
from bot.flow.threads import post_in_thread
from bot.interrupts import escalation as esc
from bot.interrupts.registry import Registry
from bot.records.interrupts import InterruptRecord
from bot.records.outbox import Outbox
from bot.rules.routing import APPROVAL_KINDS, Route
from bot.store import Store


@dataclass
class Escalations:
    store: Store
    outbox: Outbox
    registry: Registry
    decisions: Decisions

    async def handle_timer(self, *, record_id: str, stage: str) -> list[str]:
        """Queue what the timer shows; returns the conversations whose outbox to send."""
        record = await self.store.get_interrupt(record_id)
        if record is None or not record.pending or record.route is None:
            return []
        route = Route.from_dict(record.route)
        if stage == "remind" and record.channel_id and record.message_ts:
            age = (datetime.now(UTC) - record.created_at).total_seconds()
            reminder = esc.render_reminder(age, route.mention)
            async with self.store.transaction() as conn:
                await self.outbox.add(
                    conn,
                    f"remind:{record.id}:{record.message_ts}",
                    conversation_id=record.conversation_id,
                    channel_id=record.channel_id,
                    thread_ts=record.message_ts,
                    message=reminder.as_dict(),
                )
        elif stage == "fallback" and route.fallback_channel:
            await self._fall_back(record, route)
        elif stage == "timeout":
            await self._time_out(record, route)
        return [record.conversation_id]

    async def _fall_back(self, record: InterruptRecord, route: Route) -> None:
        channel = route.fallback_channel or ""
        moved_route = dataclasses.replace(route, channel=channel, fallback_channel=None)
        async with self.store.transaction() as conn:
            moved = await self.store.move_interrupt(record.id, route=moved_route.as_dict(), conn=conn)
            if moved is None:
                return
            if record.channel_id and record.message_ts:
                note = esc.render_moved(channel)
                await self.outbox.add(
                    conn,
                    f"moved:{record.id}:{record.channel_id}",
                    op="update",
                    conversation_id=record.conversation_id,
                    channel_id=record.channel_id,
                    target_ts=record.message_ts,
                    message=note.as_dict(),
                )
            await self.outbox.escalate(
                conn, record_id=record.id, conversation_id=record.conversation_id, channel=channel
            )
            await self.outbox.rewrite(conn, "notice_view", record_id=record.id, conversation_id=record.conversation_id)

    async def _time_out(self, record: InterruptRecord, route: Route) -> None:
        renderer = self.registry.by_kind(record.kind)
        waited = esc.describe_duration(route.timeout_after or 0)
        if renderer.kind in APPROVAL_KINDS:
            answer = renderer.decline(record.request, f"No decision within {waited}: the request timed out.")
        elif route.timeout_answer is not None:
            answer = renderer.decline(record.request, route.timeout_answer)
        else:
            answer = None
        if answer is not None:
            await self.decisions.decide_now(record, user_id="timeout", answer=answer)
            return
        conversation = await self.store.get_conversation(record.conversation_id)
        note = esc.render_unanswered(record.channel_id or route.channel, route.timeout_after or 0)
        async with self.store.transaction() as conn:
            await post_in_thread(self.outbox, conn, conversation, f"unanswered:{record.id}", note)
