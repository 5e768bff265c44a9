"""The conversation engine: turns, clicks, submissions and resumes, and what they show in Slack."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import render
from bot import text as t
from bot.policy import Policy
from bot.renderers import (
    Answer,
    InvalidAction,
    OpenModal,
    Registry,
    Renderer,
    Request,
    SlackMessage,
    Step,
    render_decided,
    render_superseded,
)
from bot.runner import Outcome, Runners
from bot.store import Conversation, InterruptRecord, Store

log = logging.getLogger(__name__)

WORKING_REACTION = "hourglass_flowing_sand"
GROUP_CACHE_SECONDS = 60.0


class Deferrer(Protocol):
    """Queues the durable jobs; implemented by bot.jobs on procrastinate."""

    async def defer_turn(self, conversation_id: str, *, team_id: str, channel_id: str, ts: str) -> None: ...

    async def defer_resume(self, conversation_id: str, *, record_id: str) -> None: ...


@dataclass(frozen=True)
class Refused:
    """The person's action did nothing; `text` (mrkdwn) is shown to them alone, `plain` inside a modal."""

    text: str
    plain: str


@dataclass(frozen=True)
class Accepted:
    """The action was taken: a step recorded, or the request decided and queued to resume."""

    decided: bool


def explain_closed(record: InterruptRecord | None) -> Refused:
    if record is None:
        return Refused("This request is no longer known to the agent.", "This request is no longer known.")
    if record.state == "decided":
        return Refused(
            f"Already answered by <@{record.decided_by}> — nothing was changed.",
            "Someone answered this first — your answer was not sent. Copy it if you need it.",
        )
    return Refused("The agent no longer needs this answer.", "The agent no longer needs this answer.")


@dataclass
class Engine:
    store: Store
    client: AsyncWebClient
    runners: Runners
    registry: Registry
    jobs: Deferrer
    policy: Policy = field(default_factory=Policy)
    _groups: dict[str, tuple[float, set[str]]] = field(default_factory=dict)

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

    async def group_members(self, group_id: str) -> set[str]:
        cached = self._groups.get(group_id)
        if cached and time.monotonic() - cached[0] < GROUP_CACHE_SECONDS:
            return cached[1]
        response = await self.client.usergroups_users_list(usergroup=group_id)
        members = set(response.get("users") or [])
        self._groups[group_id] = (time.monotonic(), members)
        return members

    # people acting on a request

    async def _open(self, record_id: str, user_id: str, action: str) -> tuple[InterruptRecord, Renderer] | Refused:
        record = await self.store.get_interrupt(record_id)
        if record is None or not record.pending:
            return explain_closed(record)
        renderer = self.registry.by_kind(record.kind)
        conversation = await self.store.get_conversation(record.conversation_id)
        try:
            tools = renderer.tools(record.request, action)
        except InvalidAction:
            tools = []
        reason = await self.policy.refusal(
            user_id=user_id,
            graph=conversation.graph,
            tools=tools,
            requester=record.requested_by,
            members=self.group_members,
        )
        if reason is not None:
            return Refused(reason, t.strip_mentions(reason))
        return record, renderer

    async def click(self, record_id: str, action: str, *, user_id: str) -> OpenModal | Accepted | Refused:
        """A button on a request: open its modal, or record the decision it stands for."""
        opened = await self._open(record_id, user_id, action)
        if isinstance(opened, Refused):
            return opened
        record, renderer = opened
        try:
            outcome = renderer.click(record.id, record.request, action, record.progress)
        except InvalidAction:
            return Refused("That button is out of date: the request has changed.", "That button is out of date.")
        if isinstance(outcome, OpenModal):
            return outcome
        return await self.apply(record, renderer, outcome, user_id=user_id)

    async def submit(
        self, record_id: str, action: str, values: dict[str, Any], *, user_id: str
    ) -> dict[str, str] | Accepted | Refused:
        """A modal submitted: the errors to show in it, or the decision recorded."""
        opened = await self._open(record_id, user_id, action)
        if isinstance(opened, Refused):
            return opened
        record, renderer = opened
        try:
            outcome = renderer.submit(record.request, action, values, record.progress)
        except InvalidAction:
            return Refused("This form is out of date: the request has changed.", "This form is out of date.")
        if isinstance(outcome, dict):
            return outcome
        return await self.apply(record, renderer, outcome, user_id=user_id)

    async def apply(
        self, record: InterruptRecord, renderer: Renderer, outcome: Answer | Step, *, user_id: str
    ) -> Accepted | Refused:
        if isinstance(outcome, Step):
            entry = {
                "decision": outcome.decision,
                "text": outcome.text,
                "user": user_id,
                "verdict": outcome.verdict.as_dict(),
            }
            updated = await self.store.add_step(record.id, key=outcome.key, entry=entry)
            if updated is None:
                return explain_closed(await self.store.get_interrupt(record.id))
            conversation = await self.store.get_conversation(record.conversation_id)
            await self.store.record_decisions(updated, conversation, user_id=user_id, verdicts=[outcome.verdict])
            final = renderer.complete(updated.request, updated.progress)
            if final is None:
                await self.show_pending(updated)
                return Accepted(decided=False)
            record, outcome = updated, final
        claimed = await self.decide_and_queue(record, user_id=user_id, answer=outcome)
        if claimed is None:
            return explain_closed(await self.store.get_interrupt(record.id))
        return Accepted(decided=True)

    async def decide(self, record: InterruptRecord, *, user_id: str, answer: Answer) -> InterruptRecord | None:
        """Claim a pending request for this answer, audit it and show it; None if someone was first."""
        claimed = await self.store.claim_interrupt(
            record.id, user_id=user_id, answer_text=answer.text, resume_value=answer.value
        )
        if claimed is None:
            return None
        if answer.verdicts:
            conversation = await self.store.get_conversation(claimed.conversation_id)
            await self.store.record_decisions(claimed, conversation, user_id=user_id, verdicts=list(answer.verdicts))
        await self.show_decided(claimed)
        return claimed

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

    async def show_decided(self, record: InterruptRecord) -> None:
        if record.channel_id is None or record.message_ts is None or record.decided_at is None:
            return
        message = render_decided(
            self.registry.by_kind(record.kind),
            record.request,
            user_id=record.decided_by or "",
            answer_text=record.answer_text or "",
            decided_at=record.decided_at,
            progress=record.progress,
        )
        await self.update(record.channel_id, record.message_ts, message)

    async def show_pending(self, record: InterruptRecord) -> None:
        if record.channel_id and record.message_ts:
            renderer = self.registry.by_kind(record.kind)
            message = renderer.render(record.id, record.request, record.progress)
            await self.update(record.channel_id, record.message_ts, message)

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
        runner = self.runners.get(conversation.graph)
        await self._run(conversation, runner.start(conversation.thread_id, text), requester=user_id)

    async def _answer_by_reply(
        self, conversation: Conversation, pending: list[InterruptRecord], user_id: str, text: str
    ) -> None:
        answerable: list[tuple[InterruptRecord, Answer]] = []
        for record in pending:
            answer = self.registry.by_kind(record.kind).reply(record.request, text)
            if answer is not None:
                answerable.append((record, answer))
        if len(answerable) != 1:
            await self.post(conversation, self._which_one(pending, bool(answerable)))
            return
        record, answer = answerable[0]
        claimed = await self.decide(record, user_id=user_id, answer=answer)
        if claimed is not None:
            await self._resume(conversation, claimed)

    def _which_one(self, pending: list[InterruptRecord], several: bool) -> SlackMessage:
        lines = []
        for record in pending:
            summary = t.escape(self.registry.by_kind(record.kind).summary(record.request))
            lines.append(f"• {summary}")
        if several:
            head = (
                "Several questions are waiting, so I can't tell which one your reply answers. "
                "Use the *Answer* button on the one you mean:"
            )
        else:
            head = "I'm waiting for a decision before I can go on. Use the buttons on the request:"
        return render.render_notice(head + "\n" + "\n".join(lines))

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
        runner = self.runners.get(conversation.graph)
        run = runner.resume(conversation.thread_id, record.interrupt_id, record.resume_value)
        await self._run(conversation, run, requester=record.requested_by)

    async def _run(self, conversation: Conversation, run: Awaitable[Outcome], *, requester: str | None) -> None:
        try:
            outcome = await run
        except Exception as exc:
            log.exception("the graph failed in conversation %s", conversation.id)
            await self.post(conversation, render.render_failure(exc))
            return
        await self.present(conversation, outcome, requester=requester)

    async def present(self, conversation: Conversation, outcome: Outcome, *, requester: str | None = None) -> None:
        """Post the new replies, the result of a finished non-chat graph, and each new pending interrupt."""
        for reply in outcome.replies:
            for message in render.render_reply(reply):
                await self.post(conversation, message)
        if outcome.finished and not self.runners.get(conversation.graph).rule.conversational:
            for message in render.render_result(outcome.result):
                await self.post(conversation, message)
        for pending in outcome.interrupts:
            request = Request(pending.value, pending.schema)
            renderer = self.registry.for_request(request)
            record, new = await self.store.save_interrupt(
                conversation_id=conversation.id,
                interrupt_id=pending.interrupt_id,
                request=request,
                kind=renderer.kind,
                requested_by=requester,
            )
            if record.pending and (new or record.message_ts is None):
                ts = await self.post(conversation, renderer.render(record.id, request, record.progress))
                await self.store.set_interrupt_message(record.id, channel_id=conversation.channel_id, message_ts=ts)
        live = [p.interrupt_id for p in outcome.interrupts]
        for gone in await self.store.supersede_missing(conversation.id, live):
            if gone.channel_id and gone.message_ts:
                renderer = self.registry.by_kind(gone.kind)
                await self.update(gone.channel_id, gone.message_ts, render_superseded(renderer, gone.request))
