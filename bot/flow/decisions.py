"""Decisions: a click, a modal or a reply decides a request. The claim, its audit, the views that show it and the
resume job commit in one transaction; Slack hears about it afterwards, from the outbox."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from bot import text as t
from bot.flow import inbox
from bot.interrupts import escalation as esc
from bot.interrupts import long
from bot.interrupts.base import Renderer
from bot.interrupts.registry import Registry
from bot.records.conversations import Conversation
from bot.records.interrupts import InterruptRecord
from bot.records.outbox import Outbox, home_key
from bot.rules.policy import Policy
from bot.slack.gateway import Gateway
from bot.slack.web import SlackRefused, SlackUnavailable
from bot.store import Store
from bot.types import Accepted, Answer, Conn, Deferrer, InvalidAction, OpenModal, Refused, Step, Where

log = logging.getLogger(__name__)


def explain_closed(record: InterruptRecord | None) -> Refused:
    if record is None:
        return Refused("This request is no longer known to the agent.", "This request is no longer known.")
    if record.state == "decided":
        return Refused(
            f"Already answered by <@{record.decided_by}> — nothing was changed.",
            "Someone answered this first — your answer was not sent. Copy it if you need it.",
        )
    return Refused("The agent no longer needs this answer.", "The agent no longer needs this answer.")


NOT_HERE = Refused(
    "That button doesn't belong to this request's message, so nothing was changed.",
    "This form doesn't belong to this request, so nothing was changed.",
)


NOT_IN_HOME = Refused(
    "That request isn't one your App Home offers you, so nothing was changed.",
    "This request isn't in your App Home, so nothing was changed.",
)
NOT_YOURS = Refused(
    "Only the person who asked can cancel a request, so nothing was changed.",
    "Only the person who asked can cancel a request.",
)


@dataclass(frozen=True)
class FromHome(Where):
    """A button in the App Home tab of `user_id` (Slack signs who clicked, in which view). It stands when the
    request is in that person's inbox (`inbox.standing`: to decide, or theirs waiting); the policy applies as ever."""

    user_id: str = ""


@dataclass(frozen=True)
class FromCommand(Where):
    """`/agent cancel` (its list's buttons, or a link to a thread): only the asker's own requests."""

    user_id: str = ""


GROUP_LOOKUP_SECONDS = 1.5
GROUPS_UNKNOWN = Refused(
    "I couldn't check the approvers' user group with Slack just now, so nothing was changed: try again in a moment.",
    "Slack didn't say who is in the approvers' group just now: try again in a moment.",
)


def view_keys(record: InterruptRecord) -> tuple[str, ...]:
    keys = [f"view:{record.id}"]
    if record.route is not None:
        keys += [f"notice_view:{record.id}", f"returned:{record.id}"]
    return tuple(keys)


def home_keys(record: InterruptRecord, conversation: Conversation, user_id: str) -> list[str]:
    """The App Homes a decision changes: the decider's, the asker's and the conversation starter's."""
    people = dict.fromkeys(u for u in (user_id, record.requested_by, conversation.started_by) if inbox.is_person(u))
    return [home_key(conversation.team_id, person) for person in people if person]


@dataclass
class Decisions:
    store: Store
    outbox: Outbox
    jobs: Deferrer
    registry: Registry
    gateway: Gateway
    policy: Policy

    async def _pending(self, record_id: str, where: Where | None) -> tuple[InterruptRecord, Conversation] | Refused:
        """The request, still pending, acted on from its own message (or the App Home or command it was offered in)."""
        found = await self.store.interrupt_in(record_id)
        if found is None or not found[0].pending:
            return explain_closed(found[0] if found else None)
        record, conversation, _, _ = found
        if where is not None:
            refused = await self._check_where(record, conversation, where)
            if refused is not None:
                return refused
        return record, conversation

    async def _check_where(self, record: InterruptRecord, conversation: Conversation, where: Where) -> Refused | None:
        if isinstance(where, FromHome):
            renderer = self.registry.by_kind(record.kind)
            try:
                stands = await inbox.standing(self.policy, renderer, record, conversation, where.user_id, self._members)
            except (TimeoutError, SlackUnavailable, SlackRefused):
                return GROUPS_UNKNOWN
            # Theirs or theirs to decide: the policy then says whether this action is theirs to take.
            return None if stands is not None else NOT_IN_HOME
        if isinstance(where, FromCommand):
            return None if inbox.owns(record, conversation, where.user_id) else NOT_YOURS
        return None if self._from_request(record, conversation, where) else NOT_HERE

    async def _open(
        self, record_id: str, user_id: str, action: str, where: Where | None
    ) -> tuple[InterruptRecord, Renderer, Conversation] | Refused:
        if isinstance(where, FromHome | FromCommand) and where.user_id != user_id:
            return NOT_HERE
        found = await self._pending(record_id, where)
        if isinstance(found, Refused):
            return found
        record, conversation = found
        renderer = self.registry.by_kind(record.kind)
        try:
            tools = renderer.tools(record.request, action)
        except InvalidAction:
            tools = []
        try:
            reason = await self.policy.refusal(
                user_id=user_id,
                graph=conversation.graph,
                tools=tools,
                requester=record.requested_by,
                members=self._members,
            )
        except (TimeoutError, SlackUnavailable, SlackRefused):
            return GROUPS_UNKNOWN
        if reason is not None:
            return Refused(reason, t.strip_mentions(reason))
        return record, renderer, conversation

    async def _members(self, group_id: str) -> set[str]:
        # Slack is asked who is in a user group before the ack: never for longer than Slack's 3 s allow.
        return await asyncio.wait_for(self.gateway.group_members(group_id), timeout=GROUP_LOOKUP_SECONDS)

    @staticmethod
    def _from_request(record: InterruptRecord, conversation: Conversation, where: Where) -> bool:
        """A click must come from the request's message (or, for Cancel, its notice in the asking thread)."""
        if record.message_ts is None:
            expected = (record.route or {}).get("channel") or conversation.channel_id
            return where.channel_id == expected
        if (where.channel_id, where.message_ts) == (record.channel_id, record.message_ts):
            return True
        return record.notice_ts is not None and (where.channel_id, where.message_ts) == (
            conversation.channel_id,
            record.notice_ts,
        )

    async def click(
        self, record_id: str, action: str, *, user_id: str, where: Where | None = None
    ) -> OpenModal | Accepted | Refused:
        """A button on a request: open its modal, or record the decision it stands for."""
        if long.is_show(action):
            return await self.reveal(record_id, action, where=where)
        if action == esc.CANCEL:
            return await self.cancel(record_id, user_id=user_id, where=where)
        opened = await self._open(record_id, user_id, action, where)
        if isinstance(opened, Refused):
            return opened
        record, renderer, conversation = opened
        try:
            outcome = renderer.click(record.id, record.request, action, record.progress)
        except InvalidAction:
            return Refused("That button is out of date: the request has changed.", "That button is out of date.")
        if isinstance(outcome, OpenModal):
            return outcome
        return await self.apply(record, renderer, outcome, user_id=user_id, conversation=conversation)

    async def submit(
        self, record_id: str, action: str, values: dict[str, Any], *, user_id: str, where: Where | None = None
    ) -> dict[str, str] | Accepted | Refused | OpenModal:
        """A modal submitted: the errors to show in it, or the decision recorded (or Show all's next page)."""
        if long.is_show(action):
            return await self.reveal(record_id, action, where=where)
        opened = await self._open(record_id, user_id, action, where)
        if isinstance(opened, Refused):
            return opened
        record, renderer, conversation = opened
        try:
            outcome = renderer.submit(record.request, action, values, record.progress)
        except InvalidAction:
            return Refused("This form is out of date: the request has changed.", "This form is out of date.")
        if isinstance(outcome, dict):
            return outcome
        return await self.apply(record, renderer, outcome, user_id=user_id, conversation=conversation)

    async def reveal(self, record_id: str, action: str, *, where: Where | None = None) -> OpenModal | Refused:
        """Show all: a page of a request's whole question or answer. Read-only: whatever the request's state,
        and whoever sees its message; no claim, no policy."""
        record = await self.store.get_interrupt(record_id)
        if record is None:
            return explain_closed(None)
        if where is not None and where.message_ts is not None:
            conversation = await self.store.get_conversation(record.conversation_id)
            if not self._from_request(record, conversation, where):
                return NOT_HERE
        renderer = self.registry.by_kind(record.kind)
        try:
            return long.show_all(renderer, record.id, record.request, action, record.answer_text or "")
        except InvalidAction:
            return Refused("That button is out of date.", "That button is out of date.")

    async def cancel(self, record_id: str, *, user_id: str, where: Where | None = None) -> Accepted | Refused:
        """The asker withdraws a request (an escalated one's notice, or `/agent cancel`); the agent goes on with a
        "cancelled" answer."""
        if isinstance(where, FromHome | FromCommand) and where.user_id != user_id:
            return NOT_HERE
        found = await self._pending(record_id, where)
        if isinstance(found, Refused):
            return found
        record, conversation = found
        if record.requested_by and user_id != record.requested_by:
            text = f"Only <@{record.requested_by}>, who asked, can cancel this request."
            return Refused(text, t.strip_mentions(text))
        renderer = self.registry.by_kind(record.kind)
        answer = renderer.decline(record.request, f"The person who asked cancelled this request (<@{user_id}>).")
        if answer is None:
            return Refused("This kind of request can't be cancelled: answer it instead.", "It can't be cancelled.")
        return await self.decide_now(record, user_id=user_id, answer=answer, conversation=conversation)

    async def apply(
        self,
        record: InterruptRecord,
        renderer: Renderer,
        outcome: Answer | Step,
        *,
        user_id: str,
        conversation: Conversation | None = None,
    ) -> Accepted | Refused:
        if isinstance(outcome, Step):
            entry = {
                "decision": outcome.decision,
                "text": outcome.text,
                "user": user_id,
                "verdict": outcome.verdict.as_dict(),
            }
            async with self.store.transaction() as conn:
                updated = await self.store.add_step(record.id, key=outcome.key, entry=entry, conn=conn)
                if updated is None:
                    return explain_closed(await self.store.get_interrupt(record.id, conn))
                if conversation is None:
                    conversation = await self.store.get_conversation(record.conversation_id, conn)
                await self.store.record_decisions(
                    updated, conversation, user_id=user_id, verdicts=[outcome.verdict], conn=conn
                )
                final = renderer.complete(updated.request, updated.progress)
                if final is None:
                    await self.show(conn, updated)
                    homes = home_keys(updated, conversation, user_id)
                    await self.outbox.rearm_homes(conn, homes, conversation_id=conversation.id)
                    return Accepted(keys=(f"view:{record.id}", *homes))
                claimed = await self.decide(conn, updated, user_id=user_id, answer=final, conversation=conversation)
            if claimed is None:
                return explain_closed(await self.store.get_interrupt(record.id))
            return await self.settle(claimed, conversation)
        return await self.decide_now(record, user_id=user_id, answer=outcome, conversation=conversation)

    async def decide_now(
        self, record: InterruptRecord, *, user_id: str, answer: Answer, conversation: Conversation | None = None
    ) -> Accepted | Refused:
        # Pipelined: the writes after the claim go in one round trip.
        async with self.store.transaction(pipelined=True) as conn:
            claimed = await self.decide(conn, record, user_id=user_id, answer=answer, conversation=conversation)
        if claimed is None:
            return explain_closed(await self.store.get_interrupt(record.id))
        return await self.settle(claimed, conversation)

    async def settle(self, claimed: InterruptRecord, conversation: Conversation | None = None) -> Accepted:
        """After the commit: stop the request's timers; the views to send now are in the answer."""
        if claimed.timer_jobs:
            try:
                await self.jobs.cancel(claimed.timer_jobs)
            except Exception:
                # A timer that fires anyway finds the request decided and does nothing.
                log.warning("could not cancel the timers of %s", claimed.id, exc_info=True)
        if conversation is None:
            conversation = await self.store.get_conversation(claimed.conversation_id)
        return Accepted(keys=(*view_keys(claimed), *home_keys(claimed, conversation, claimed.decided_by or "")))

    async def decide(
        self,
        conn: Conn,
        record: InterruptRecord,
        *,
        user_id: str,
        answer: Answer,
        conversation: Conversation | None = None,
    ) -> InterruptRecord | None:
        """In the caller's transaction: claim a pending request, audit it, queue its views and its resume.
        None if someone decided it first. `conversation`: the request's, when the caller has read it."""
        claimed = await self.store.claim_interrupt(
            record.id, user_id=user_id, answer_text=answer.text, resume_value=answer.value, conn=conn
        )
        if claimed is None:
            return None
        if conversation is None or conversation.id != claimed.conversation_id:
            conversation = await self.store.get_conversation(claimed.conversation_id, conn)
        if answer.verdicts:
            await self.store.record_decisions(
                claimed, conversation, user_id=user_id, verdicts=list(answer.verdicts), conn=conn
            )
        await self.show(conn, claimed)
        await self.outbox.rearm_homes(
            conn, home_keys(claimed, conversation, user_id), conversation_id=claimed.conversation_id
        )
        if claimed.route is not None:
            await self.outbox.rewrite(
                conn, "notice_view", record_id=claimed.id, conversation_id=claimed.conversation_id
            )
            if claimed.channel_id and claimed.message_ts:
                await self.outbox.add(
                    conn,
                    f"returned:{claimed.id}",
                    role="returned",
                    conversation_id=claimed.conversation_id,
                    channel_id=claimed.channel_id,
                    thread_ts=claimed.message_ts,
                    record_id=claimed.id,
                )
        await self.jobs.defer_resume(conn, claimed.conversation_id, record_id=claimed.id)
        return claimed

    async def show(self, conn: Conn, record: InterruptRecord) -> None:
        """Queue the rewrite of the request's message to its current state."""
        await self.outbox.rewrite(conn, "view", record_id=record.id, conversation_id=record.conversation_id)
