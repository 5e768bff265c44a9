"""The conversation engine: a turn or a resume, run under the conversation's lock, and what it shows in Slack."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import render
from bot.renderers import Answer, Registry, SlackMessage, render_decided, render_superseded
from bot.runner import Outcome, Runners
from bot.store import Conversation, InterruptRecord, Store

log = logging.getLogger(__name__)

WORKING_REACTION = "hourglass_flowing_sand"


class Deferrer(Protocol):
    """Queues the durable jobs; implemented by bot.jobs on procrastinate."""

    async def defer_turn(self, conversation_id: str, *, team_id: str, channel_id: str, ts: str) -> None: ...

    async def defer_resume(self, conversation_id: str, *, record_id: str) -> None: ...


@dataclass
class Engine:
    store: Store
    client: AsyncWebClient
    runners: Runners
    registry: Registry
    jobs: Deferrer

    # Slack side

    async def post(self, conversation: Conversation, message: SlackMessage) -> str:
        response = await self.client.chat_postMessage(
            channel=conversation.channel_id,
            thread_ts=conversation.thread_ts,
            text=message.text,
            blocks=message.blocks,
            unfurl_links=False,
            unfurl_media=False,
        )
        return str(response["ts"])

    async def update(self, channel_id: str, ts: str, message: SlackMessage) -> None:
        await self.client.chat_update(channel=channel_id, ts=ts, text=message.text, blocks=message.blocks)

    @asynccontextmanager
    async def working(self, channel_id: str, ts: str | None) -> AsyncIterator[None]:
        """Show that the agent is working with a reaction on the message that started the work."""
        if ts is None:
            yield
            return
        try:
            await self.client.reactions_add(channel=channel_id, timestamp=ts, name=WORKING_REACTION)
        except SlackApiError as exc:
            log.debug("could not add the working reaction: %s", exc.response.get("error"))
        try:
            yield
        finally:
            try:
                await self.client.reactions_remove(channel=channel_id, timestamp=ts, name=WORKING_REACTION)
            except SlackApiError as exc:
                log.debug("could not remove the working reaction: %s", exc.response.get("error"))

    # deciding

    async def decide(self, record: InterruptRecord, *, user_id: str, answer: Answer) -> InterruptRecord | None:
        """Claim a pending interrupt for this answer and show the decision; None if someone was first."""
        claimed = await self.store.claim_interrupt(
            record.id, user_id=user_id, answer_text=answer.text, resume_value=answer.value
        )
        if claimed is None:
            return None
        await self.show_decided(claimed)
        return claimed

    async def show_decided(self, record: InterruptRecord) -> None:
        if record.channel_id is None or record.message_ts is None or record.decided_at is None:
            return
        renderer = self.registry.by_kind(record.kind)
        message = render_decided(
            renderer,
            record.payload,
            user_id=record.decided_by or "",
            answer_text=record.answer_text or "",
            decided_at=record.decided_at,
        )
        await self.update(record.channel_id, record.message_ts, message)

    async def decide_and_queue(
        self, record: InterruptRecord, *, user_id: str, answer: Answer
    ) -> InterruptRecord | None:
        """From a click or modal: claim, show, and queue the resume; undo the claim if it can't be queued."""
        claimed = await self.decide(record, user_id=user_id, answer=answer)
        if claimed is None:
            return None
        try:
            await self.jobs.defer_resume(claimed.conversation_id, record_id=claimed.id)
        except Exception:
            await self.store.undo_claim(claimed.id)
            await self.show_pending(record)
            raise
        return claimed

    async def show_pending(self, record: InterruptRecord) -> None:
        if record.channel_id and record.message_ts:
            renderer = self.registry.by_kind(record.kind)
            await self.update(record.channel_id, record.message_ts, renderer.render(record.id, record.payload))

    # jobs

    async def handle_turn(self, *, team_id: str, channel_id: str, ts: str) -> None:
        inbound = await self.store.get_inbound(team_id=team_id, channel_id=channel_id, ts=ts)
        if inbound is None or inbound.status == "done":
            return
        conversation = await self.store.get_conversation(inbound.conversation_id)
        async with self.working(channel_id, ts):
            try:
                await self._turn(conversation, inbound.user_id, inbound.text)
            finally:
                await self.store.set_inbound_status(team_id=team_id, channel_id=channel_id, ts=ts, status="done")

    async def _turn(self, conversation: Conversation, user_id: str, text: str) -> None:
        pending = await self.store.pending_interrupts(conversation.id)
        if pending:
            await self._answer_by_reply(conversation, pending, user_id, text)
            return
        if not text:
            await self.post(conversation, render.render_notice("Hi! Write your message after the mention."))
            return
        await self._run(conversation, self.runners.get(conversation.graph).start(conversation.thread_id, text))

    async def _answer_by_reply(
        self, conversation: Conversation, pending: list[InterruptRecord], user_id: str, text: str
    ) -> None:
        answerable: list[tuple[InterruptRecord, Answer]] = []
        for record in pending:
            answer = self.registry.by_kind(record.kind).parse_reply(record.payload, text)
            if answer is not None:
                answerable.append((record, answer))
        if len(answerable) != 1:
            notice = (
                "Several questions are waiting above: answer the one you mean with its button."
                if answerable
                else "I'm waiting for a decision on the message above before I can go on."
            )
            await self.post(conversation, render.render_notice(notice))
            return
        record, answer = answerable[0]
        claimed = await self.decide(record, user_id=user_id, answer=answer)
        if claimed is not None:
            await self._resume(conversation, claimed)

    async def handle_resume(self, *, record_id: str) -> None:
        record = await self.store.get_interrupt(record_id)
        if record is None or record.state != "decided" or record.resumed_at is not None:
            return
        conversation = await self.store.get_conversation(record.conversation_id)
        async with self.working(record.channel_id or conversation.channel_id, record.message_ts):
            await self._resume(conversation, record)

    async def _resume(self, conversation: Conversation, record: InterruptRecord) -> None:
        if not await self.store.mark_resumed(record.id):
            return
        await self._run(
            conversation,
            self.runners.get(conversation.graph).resume(
                conversation.thread_id, record.interrupt_id, record.resume_value
            ),
        )

    async def _run(self, conversation: Conversation, run: Any) -> None:
        try:
            outcome: Outcome = await run
        except Exception as exc:
            log.exception("the graph failed in conversation %s", conversation.id)
            await self.post(conversation, render.render_failure(exc))
            return
        await self.present(conversation, outcome)

    async def present(self, conversation: Conversation, outcome: Outcome) -> None:
        """Post the new replies, the result of a finished non-chat graph, and each new pending interrupt."""
        for reply in outcome.replies:
            for message in render.render_reply(reply):
                await self.post(conversation, message)
        if outcome.finished and not self.runners.get(conversation.graph).rule.conversational:
            for message in render.render_result(outcome.result):
                await self.post(conversation, message)
        for pending in outcome.interrupts:
            renderer = self.registry.for_payload(pending.value)
            record, new = await self.store.save_interrupt(
                conversation_id=conversation.id,
                interrupt_id=pending.interrupt_id,
                payload=pending.value,
                kind=renderer.kind,
            )
            if record.pending and (new or record.message_ts is None):
                ts = await self.post(conversation, renderer.render(record.id, pending.value))
                await self.store.set_interrupt_message(record.id, channel_id=conversation.channel_id, message_ts=ts)
        live = [p.interrupt_id for p in outcome.interrupts]
        for gone in await self.store.supersede_missing(conversation.id, live):
            if gone.channel_id and gone.message_ts:
                renderer = self.registry.by_kind(gone.kind)
                await self.update(gone.channel_id, gone.message_ts, render_superseded(renderer, gone.payload))
