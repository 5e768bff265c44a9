"""The conversation engine: turns, clicks, submissions and resumes, and what they show in Slack."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import escalation as esc
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
from bot.routing import APPROVAL_KINDS, Route, Router
from bot.runner import Outcome, Runners
from bot.store import Conversation, InterruptRecord, Store

log = logging.getLogger(__name__)

WORKING_REACTION = "hourglass_flowing_sand"
GROUP_CACHE_SECONDS = 60.0


class Deferrer(Protocol):
    """Queues the durable jobs; implemented by bot.jobs on procrastinate."""

    async def defer_turn(self, conversation_id: str, *, team_id: str, channel_id: str, ts: str) -> None: ...

    async def defer_resume(self, conversation_id: str, *, record_id: str) -> None: ...

    async def defer_timer(self, *, record_id: str, stage: str, delay: float) -> int: ...

    async def cancel(self, job_ids: list[int]) -> None: ...


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
    router: Router = field(default_factory=Router)
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
        if action == esc.CANCEL:
            return await self.cancel(record_id, user_id=user_id)
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

    async def cancel(self, record_id: str, *, user_id: str) -> Accepted | Refused:
        """The asker withdraws an escalated request; the agent goes on with a "cancelled" answer."""
        record = await self.store.get_interrupt(record_id)
        if record is None or not record.pending:
            return explain_closed(record)
        if record.requested_by and user_id != record.requested_by:
            text = f"Only <@{record.requested_by}>, who asked, can cancel this request."
            return Refused(text, t.strip_mentions(text))
        renderer = self.registry.by_kind(record.kind)
        answer = renderer.decline(record.request, f"The person who asked cancelled this request (<@{user_id}>).")
        if answer is None:
            return Refused("This kind of request can't be cancelled: answer it instead.", "It can't be cancelled.")
        claimed = await self.decide_and_queue(record, user_id=user_id, answer=answer)
        return Accepted(decided=True) if claimed else explain_closed(await self.store.get_interrupt(record_id))

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
        conversation = await self.store.get_conversation(claimed.conversation_id)
        if answer.verdicts:
            await self.store.record_decisions(claimed, conversation, user_id=user_id, verdicts=list(answer.verdicts))
        await self.show_decided(claimed)
        if claimed.route is not None:
            await self.close_escalation(conversation, claimed)
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
        if not await self.store.start_inbound(team_id=team_id, channel_id=channel_id, ts=ts):
            await self._recover_turn(conversation, inbound)
            await self.store.set_inbound_status(team_id=team_id, channel_id=channel_id, ts=ts, status="done")
            return
        async with self.working(channel_id, ts):
            try:
                if inbound.record_id:
                    await self._answer_escalated(inbound.record_id, inbound.user_id, inbound.text, channel_id)
                else:
                    await self._turn(conversation, inbound.user_id, inbound.text)
            finally:
                await self.store.set_inbound_status(team_id=team_id, channel_id=channel_id, ts=ts, status="done")

    async def _recover_turn(self, conversation: Conversation, inbound: Any) -> None:
        """A turn started by a worker that stopped: carry on its run, never feed the message in twice."""
        runner = self.runners.get(conversation.graph)
        if await runner.unfinished(conversation.thread_id):
            log.warning("carrying on the run cut short in conversation %s", conversation.id)
            async with self.working(inbound.channel_id, inbound.ts):
                await self._run(conversation, runner.proceed(conversation.thread_id), requester=inbound.user_id)
            return
        pending = await runner.pending(conversation.thread_id)
        if pending:
            # The run got as far as its interrupts: make sure each is shown (the ones already posted are kept).
            await self.present(conversation, Outcome(interrupts=pending), requester=inbound.user_id)
            return
        notice = (
            ":warning: I was restarted while working on a message here and may not have finished it. "
            "Reply in this thread to carry on."
        )
        await self.post(conversation, render.render_notice(notice))

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

    async def _answer_escalated(self, record_id: str, user_id: str, text: str, channel_id: str) -> None:
        """A reply in the thread of an escalated request, in the experts' channel."""
        record = await self.store.get_interrupt(record_id)
        thread_ts = record.message_ts if record else None
        outcome: Accepted | Refused
        if record is None or not record.pending:
            outcome = explain_closed(record)
        else:
            answer = self.registry.by_kind(record.kind).reply(record.request, text)
            if answer is None:
                outcome = Refused("This request needs its buttons: a reply can't decide it.", "")
            else:
                claimed = await self.decide_and_queue(record, user_id=user_id, answer=answer)
                outcome = Accepted(True) if claimed else explain_closed(await self.store.get_interrupt(record_id))
        if isinstance(outcome, Refused):
            await self.client.chat_postEphemeral(
                channel=channel_id, user=user_id, text=outcome.text, thread_ts=thread_ts
            )

    async def _answer_by_reply(
        self, conversation: Conversation, pending: list[InterruptRecord], user_id: str, text: str
    ) -> None:
        escalated = [r for r in pending if r.route is not None]
        pending = [r for r in pending if r.route is None]
        if not pending:
            channels = ", ".join(sorted({f"<#{r.channel_id}>" for r in escalated if r.channel_id}))
            await self.post(
                conversation,
                render.render_notice(
                    f"I asked the experts in {channels} and I'm waiting for their answer. "
                    "You can cancel the request with its button."
                ),
            )
            return
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
        if record is None or record.state != "decided":
            return
        conversation = await self.store.get_conversation(record.conversation_id)
        retry = False
        if record.resumed_at is not None:
            # A retried job: resume again only if the graph still waits on this interrupt (its node didn't
            # finish); if it got further and was cut short, carry on from the last checkpoint.
            runner = self.runners.get(conversation.graph)
            pending = await runner.pending(conversation.thread_id)
            if record.interrupt_id not in {p.interrupt_id for p in pending}:
                if await runner.unfinished(conversation.thread_id):
                    await self._run(conversation, runner.proceed(conversation.thread_id), requester=record.requested_by)
                return
            retry = True
        async with self.working(record.channel_id or conversation.channel_id, record.message_ts):
            await self._resume(conversation, record, retry=retry)

    async def _resume(self, conversation: Conversation, record: InterruptRecord, *, retry: bool = False) -> None:
        if not await self.store.mark_resumed(record.id) and not retry:
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
            route = self.router.route_for(
                graph=conversation.graph,
                kind=renderer.kind,
                tools=renderer.tools(request, ""),
                payload=request.value,
                from_tool="tool" in (pending.source or ""),
            )
            record, new = await self.store.save_interrupt(
                conversation_id=conversation.id,
                interrupt_id=pending.interrupt_id,
                request=request,
                kind=renderer.kind,
                requested_by=requester,
                source=pending.source,
                route=route.as_dict() if route else None,
            )
            if record.pending and (new or record.message_ts is None):
                if route is not None:
                    await self.escalate(conversation, record, renderer, route)
                    continue
                ts = await self.post(conversation, renderer.render(record.id, request, record.progress))
                await self.store.set_interrupt_message(record.id, channel_id=conversation.channel_id, message_ts=ts)
        live = [p.interrupt_id for p in outcome.interrupts]
        for gone in await self.store.supersede_missing(conversation.id, live):
            if gone.channel_id and gone.message_ts:
                renderer = self.registry.by_kind(gone.kind)
                await self.update(gone.channel_id, gone.message_ts, render_superseded(renderer, gone.request))

    # escalation

    async def permalink(self, channel_id: str, ts: str) -> str | None:
        try:
            response = await self.client.chat_getPermalink(channel=channel_id, message_ts=ts)
        except SlackApiError:
            return None
        return str(response.get("permalink") or "") or None

    async def recent(self, conversation: Conversation, limit: int = 4) -> list[tuple[str | None, str]]:
        """The last messages of the asking thread, for the experts' context."""
        try:
            response = await self.client.conversations_replies(
                channel=conversation.channel_id, ts=conversation.thread_ts, limit=50
            )
        except SlackApiError:
            return []
        messages = [m for m in response.get("messages") or [] if m.get("text") and not _is_request(m)]
        return [
            (None if m.get("bot_id") else m.get("user"), t.strip_mentions(t.from_slack(str(m["text"]))))
            for m in messages[-limit:]
        ]

    async def escalate(
        self, conversation: Conversation, record: InterruptRecord, renderer: Renderer, route: Route
    ) -> None:
        """Post the request in the route's channel with context, tell the asking thread, start the timers."""
        message = esc.render_escalated(
            renderer.render(record.id, record.request, record.progress),
            requester=record.requested_by,
            permalink=await self.permalink(conversation.channel_id, conversation.thread_ts),
            recent=await self.recent(conversation),
            graph=conversation.graph,
        )
        try:
            posted = await self.client.chat_postMessage(
                channel=route.channel, text=message.text, blocks=message.blocks, unfurl_links=False
            )
        except SlackApiError as exc:
            error = exc.response.get("error")
            log.warning("could not escalate to %s: %s", route.channel, error)
            await self.store.set_route(record.id, None)
            note = f":warning: I couldn't post this in <#{route.channel}> (`{error}`): please answer it here."
            await self.post(conversation, render.render_notice(note))
            ts = await self.post(conversation, renderer.render(record.id, record.request, record.progress))
            await self.store.set_interrupt_message(record.id, channel_id=conversation.channel_id, message_ts=ts)
            return
        await self.store.set_interrupt_message(record.id, channel_id=route.channel, message_ts=str(posted["ts"]))
        notice = await self.post(conversation, esc.render_asked(record.id, route.channel))
        await self.store.set_notice(record.id, notice)
        stages = [("remind", route.remind_after), ("fallback", route.fallback_after), ("timeout", route.timeout_after)]
        jobs = [
            await self.jobs.defer_timer(record_id=record.id, stage=stage, delay=delay)
            for stage, delay in stages
            if delay
        ]
        if jobs:
            await self.store.add_timer_jobs(record.id, jobs)

    async def close_escalation(self, conversation: Conversation, record: InterruptRecord) -> None:
        """After the answer: stop the timers, tell the asking thread, and tell the experts where it went."""
        if record.timer_jobs:
            await self.jobs.cancel(record.timer_jobs)
        renderer = self.registry.by_kind(record.kind)
        who = f"<@{record.decided_by}>" if (record.decided_by or "")[:1] in ("U", "W") else (record.decided_by or "")
        if record.notice_ts and record.channel_id:
            note = esc.render_answered_notice(record.channel_id, who, renderer.verb)
            await self.update(conversation.channel_id, record.notice_ts, note)
        if record.channel_id and record.message_ts:
            link = await self.permalink(conversation.channel_id, conversation.thread_ts)
            returned = esc.render_returned(who, record.requested_by, link)
            await self.client.chat_postMessage(
                channel=record.channel_id, thread_ts=record.message_ts, text=returned.text, blocks=returned.blocks
            )

    async def handle_timer(self, *, record_id: str, stage: str) -> None:
        """A reminder, a fallback route, or the final timeout of an escalated request still pending."""
        record = await self.store.get_interrupt(record_id)
        if record is None or not record.pending or record.route is None:
            return
        route = Route.from_dict(record.route)
        conversation = await self.store.get_conversation(record.conversation_id)
        age = (datetime.now(UTC) - record.created_at).total_seconds()
        if stage == "remind" and record.channel_id and record.message_ts:
            reminder = esc.render_reminder(age, route.mention)
            await self.client.chat_postMessage(
                channel=record.channel_id, thread_ts=record.message_ts, text=reminder.text, blocks=reminder.blocks
            )
        elif stage == "fallback" and route.fallback_channel:
            await self._fall_back(conversation, record, route.fallback_channel)
        elif stage == "timeout":
            await self._time_out(conversation, record, route)

    async def _fall_back(self, conversation: Conversation, record: InterruptRecord, channel: str) -> None:
        renderer = self.registry.by_kind(record.kind)
        message = esc.render_escalated(
            renderer.render(record.id, record.request, record.progress),
            requester=record.requested_by,
            permalink=await self.permalink(conversation.channel_id, conversation.thread_ts),
            recent=await self.recent(conversation),
            graph=conversation.graph,
        )
        posted = await self.client.chat_postMessage(channel=channel, text=message.text, blocks=message.blocks)
        moved = await self.store.move_interrupt(record.id, channel_id=channel, message_ts=str(posted["ts"]))
        if moved is None:
            return
        if record.channel_id and record.message_ts:
            await self.update(record.channel_id, record.message_ts, esc.render_moved(channel))
        if record.notice_ts:
            note = esc.render_asked(record.id, channel, note=f" (nobody answered in <#{record.channel_id}> in time)")
            await self.update(conversation.channel_id, record.notice_ts, note)

    async def _time_out(self, conversation: Conversation, record: InterruptRecord, route: Route) -> None:
        renderer = self.registry.by_kind(record.kind)
        waited = esc.describe_duration(route.timeout_after or 0)
        if renderer.kind in APPROVAL_KINDS:
            answer = renderer.decline(record.request, f"No decision within {waited}: the request timed out.")
        elif route.timeout_answer is not None:
            answer = renderer.decline(record.request, route.timeout_answer)
        else:
            answer = None
        if answer is None:
            await self.post(
                conversation, esc.render_unanswered(record.channel_id or route.channel, route.timeout_after or 0)
            )
            return
        await self.decide_and_queue(record, user_id="timeout", answer=answer)


def _is_request(message: dict[str, Any]) -> bool:
    return any(block.get("type") == "actions" for block in message.get("blocks") or [])
