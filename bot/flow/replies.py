"""Replies in a thread that are not a new run: an answer to an open request (here or in the experts' channel),
a reply racing an answer already given, or a message that can't start a run. Each is one transaction: the
decision or the note, with the message marked done."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot import render
from bot import text as t
from bot.flow.decisions import Decisions, explain_closed
from bot.flow.threads import mark_inbound, post_in_thread, turn_key
from bot.interrupts.registry import Registry
from bot.records.conversations import Conversation, Inbound
from bot.records.interrupts import InterruptRecord
from bot.records.outbox import Outbox
from bot.slack.files import with_sections
from bot.slack.gateway import Gateway
from bot.slack.web import SlackUnavailable
from bot.store import Store
from bot.types import DATABASE_ERRORS, Answer, Refused, SlackMessage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Handled:
    """A reply dealt with without a run of its own."""

    decided: str | None = None
    """The request it answered: its resume is due (its job queued with the decision)."""
    views: tuple[str, ...] = ()
    """The outbox rows that show that decision (its request's message, App Homes)."""


@dataclass
class Replies:
    store: Store
    outbox: Outbox
    registry: Registry
    decisions: Decisions
    gateway: Gateway

    async def handle(self, conversation: Conversation, inbound: Inbound, *, was_open: bool = True) -> Handled | None:
        """`_handled_without_run`, but a message it can't handle is answered with the error and marked done, so
        the job is not retried (and re-driven by the reconciler) for ever. `was_open=False`: the job's first read
        found no request open when the message came (none opens while the job holds the conversation)."""
        try:
            return await self._handled_without_run(conversation, inbound, was_open)
        except (*DATABASE_ERRORS, SlackUnavailable):
            raise
        except Exception as exc:
            log.exception("could not handle message %s in conversation %s", inbound.ts, conversation.id)
            await self._reply_only(conversation, inbound, render.render_failure(exc), suffix="failed")
            return Handled()

    async def _handled_without_run(
        self, conversation: Conversation, inbound: Inbound, was_open: bool
    ) -> Handled | None:
        """A reply that answers a request, or that can't start a run: what became of it; None: a run's message."""
        if inbound.record_id:
            return await self._answer_escalated(conversation, inbound)
        open_requests = (
            await self.store.open_interrupts(conversation.id, received_at=inbound.received_at) if was_open else []
        )
        if open_requests:
            return await self._answer_by_reply(conversation, inbound, open_requests)
        if not inbound.text and not inbound.files:
            await self._reply_only(
                conversation, inbound, render.render_notice("Hi! Write your message after the mention.")
            )
            return Handled()
        return None

    async def _text(self, inbound: Inbound) -> str:
        """The reply as an answer: its text, with the files shared with it as sections (their contents read once
        and kept with the message, as for a turn)."""
        if not inbound.files:
            return inbound.text
        files = await self.gateway.read_files(inbound.files)
        await self.store.save_inbound_files(inbound, files)
        return with_sections(inbound.text, files)

    async def _reply_only(
        self, conversation: Conversation, inbound: Inbound, message: SlackMessage, *, suffix: str = "note"
    ) -> None:
        async with self.store.transaction() as conn:
            key = f"{turn_key(conversation.team_id, inbound.channel_id, inbound.ts)}:{suffix}"
            await post_in_thread(self.outbox, conn, conversation, key, message)
            await mark_inbound(self.store, conn, inbound, "done")

    async def _answer_escalated(self, conversation: Conversation, inbound: Inbound) -> Handled:
        """A reply in the thread of an escalated request, in the experts' channel; the request, if it decided it."""
        record = await self.store.get_interrupt(inbound.record_id or "")
        refusal: Refused | None = None
        if record is None or not record.pending:
            refusal = explain_closed(record)
        else:
            answer = self.registry.by_kind(record.kind).reply(record.request, await self._text(inbound))
            if answer is None:
                refusal = Refused("This request needs its buttons: a reply can't decide it.", "")
            else:
                decided = await self._decide_by_reply(record, inbound, answer, conversation)
                if isinstance(decided, Handled):
                    return decided
                refusal = decided
        if refusal is not None:
            async with self.store.transaction() as conn:
                await mark_inbound(self.store, conn, inbound, "done")
            thread_ts = record.message_ts if record else None
            await self.gateway.ephemeral(
                channel=inbound.channel_id, user=inbound.user_id, text=refusal.text, thread_ts=thread_ts
            )
        return Handled()

    async def _decide_by_reply(
        self, record: InterruptRecord, inbound: Inbound, answer: Answer, conversation: Conversation
    ) -> Handled | Refused:
        """The request decided by the reply (its resume queued), or why not."""
        own = conversation if conversation.id == record.conversation_id else None
        async with self.store.transaction() as conn:
            claimed = await self.decisions.decide(
                conn, record, user_id=inbound.user_id, answer=answer, conversation=own
            )
            if claimed is not None:
                await mark_inbound(self.store, conn, inbound, "done")
        if claimed is None:
            return explain_closed(await self.store.get_interrupt(record.id))
        shown = await self.decisions.settle(claimed, own)
        return Handled(claimed.id, shown.keys)

    async def _answer_by_reply(
        self, conversation: Conversation, inbound: Inbound, requests: list[InterruptRecord]
    ) -> Handled:
        """A reply in a thread with requests open."""
        decided = [r for r in requests if not r.pending]
        if decided:
            who = ", ".join(sorted({f"<@{r.decided_by}>" for r in decided if r.decided_by}))
            note = f"That question was just answered by {who} — I'm carrying on with that answer, not this reply."
            await self._reply_only(conversation, inbound, render.render_notice(note))
            return Handled()
        escalated = [r for r in requests if r.route is not None]
        local = [r for r in requests if r.route is None]
        if not local:
            channels = ", ".join(sorted({f"<#{(r.route or {}).get('channel')}>" for r in escalated}))
            note = (
                f"I asked the experts in {channels} and I'm waiting for their answer. "
                "You can cancel the request with its button."
            )
            await self._reply_only(conversation, inbound, render.render_notice(note))
            return Handled()
        answerable: list[tuple[InterruptRecord, Answer]] = []
        text = await self._text(inbound)
        for record in local:
            answer = self.registry.by_kind(record.kind).reply(record.request, text)
            if answer is not None:
                answerable.append((record, answer))
        if len(answerable) != 1:
            await self._reply_only(conversation, inbound, self._which_one(local, bool(answerable)))
            return Handled()
        record, answer = answerable[0]
        outcome = await self._decide_by_reply(record, inbound, answer, conversation)
        if isinstance(outcome, Handled):
            return outcome
        await self._reply_only(conversation, inbound, render.render_notice(outcome.text))
        return Handled()

    def _which_one(self, pending: list[InterruptRecord], several: bool) -> SlackMessage:
        lines = [f"• {t.escape(self.registry.by_kind(r.kind).summary(r.request))}" for r in pending]
        if several:
            head = (
                "Several questions are waiting, so I can't tell which one your reply answers. "
                "Use the *Answer* button on the one you mean:"
            )
        else:
            head = "I'm waiting for a decision before I can go on. Use the buttons on the request:"
        return render.render_notice(head + "\n" + "\n".join(lines))
