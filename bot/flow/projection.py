"""The projector: sends the outbox to Slack, in order, each row once.

Rows about a request (its message, the experts' copy, the notice in the asking thread) are rendered from the
request's record when they are sent, so a late or repeated send always shows the latest state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot import render
from bot import text as t
from bot.flow.inbox import Inbox
from bot.flow.streamed import StreamIntents
from bot.flow.threads import post_in_thread
from bot.interrupts import escalation as esc
from bot.interrupts.base import render_decided, render_superseded
from bot.interrupts.registry import Registry
from bot.records.conversations import Conversation
from bot.records.interrupts import InterruptRecord
from bot.records.outbox import Intent, Outbox, parse_home_key
from bot.slack.gateway import Gateway
from bot.slack.teams import acting_for, current_team
from bot.slack.web import SlackRefused, SlackUnavailable
from bot.store import Store
from bot.types import SlackMessage

log = logging.getLogger(__name__)

LEASE_MARGIN = 5.0
FRESH_LEASE = 1.0
"""A lease taken less than this long ago needs no renewal before a post: the post ends within the margin."""
MAX_BACKOFF = 300.0
HOME_ROUNDS = 3
"""How many times one send of an App Home renders it again when decisions keep arming it meanwhile."""
REWRITES = frozenset({"view", "notice_view", "home"})
"""The outbox roles that rewrite a message (or an App Home) to its request's latest state, rendered when sent: in no
order with the thread's messages."""


def render_request(registry: Registry, record: InterruptRecord) -> SlackMessage:
    """A request's message as it should look now: live buttons, the decision, or "no longer needed"; if its
    renderer fails on it, the value as text with the error, so the thread still shows what was asked."""
    try:
        return _render_request(registry, record)
    except Exception as exc:
        log.exception("request %s (%s) can't be rendered", record.id, record.kind)
        return render_unshowable(record, exc)


def render_unshowable(record: InterruptRecord, error: BaseException) -> SlackMessage:
    value = json.dumps(record.payload, ensure_ascii=False, indent=2, default=str)
    pieces = t.split(t.escape(value), t.SECTION_LIMIT - 8)
    problem = t.escape(t.shorten(f"{type(error).__name__}: {error}", 300))
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": f":warning: The agent asked for this, but it can't be shown as a "
                f"{t.escape(record.kind)} request (`{problem}`):",
            },
        },
        *[{"type": "section", "text": {"type": "mrkdwn", "text": f"```{piece}```"}} for piece in pieces[:45]],
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": "Cancel the conversation or ask the graph's owner. The details are in the bot's log.",
                }
            ],
        },
    ]
    return SlackMessage(text="The agent asked for something that can't be shown.", blocks=blocks)


def _render_request(registry: Registry, record: InterruptRecord) -> SlackMessage:
    renderer = registry.by_kind(record.kind)
    if record.state == "decided" and record.decided_at is not None:
        return render_decided(
            renderer,
            record.request,
            user_id=record.decided_by or "",
            answer_text=record.answer_text or "",
            decided_at=record.decided_at,
            progress=record.progress,
            resume_value=record.resume_value,
            record_id=record.id,
        )
    if record.state == "superseded":
        return render_superseded(renderer, record.request)
    return renderer.render(record.id, record.request, record.progress)


def who_decided(record: InterruptRecord) -> str:
    decided_by = record.decided_by or ""
    return f"<@{decided_by}>" if decided_by[:1] in ("U", "W") else decided_by


def render_notice(registry: Registry, record: InterruptRecord) -> SlackMessage:
    """The note in the asking thread about an escalated request."""
    channel = (record.route or {}).get("channel") or record.channel_id or ""
    if record.state == "decided":
        return esc.render_answered_notice(channel, who_decided(record), registry.by_kind(record.kind).verb)
    if record.state == "superseded":
        return SlackMessage(text="The agent no longer needs this answer.")
    return esc.render_asked(record.id, channel)


def _is_request(message: dict[str, Any]) -> bool:
    return any(block.get("type") == "actions" for block in message.get("blocks") or [])


@dataclass
class Projector:
    store: Store
    outbox: Outbox
    gateway: Gateway
    registry: Registry
    inbox: Inbox | None = None
    """Renders the App Home rows (`home:<team>:<user>`); without it they are dropped."""
    _teams: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def lease_seconds(self) -> float:
        """How long an attempt holds a row: one Slack call and a margin. A post renews the lease just before it
        goes out and never sleeps inside (`Gateway.post`), so once the lease has run out the attempt holding it
        has ended: whoever takes the row next finds the message by its key, or knows it was never stored."""
        return self.gateway.timeout + LEASE_MARGIN

    async def project(
        self, *, conversation_id: str | None = None, keys: list[str] | None = None, taken: list[Intent] | None = None
    ) -> None:
        """Send what is due, oldest first. Raises SlackUnavailable when Slack can't take it now: the rest waits
        in the outbox for the job's retry or the reconciler. `taken`: the rows the caller's transaction leased
        already (`Outbox.take_due_in`), sent instead of taking what is due now."""
        if taken is None:
            taken = await self.outbox.take_due(self.lease_seconds, conversation_id=conversation_id, keys=keys)
        # Messages first, in order; then the rewrites of what a request's message or an App Home shows, which render
        # its latest state whenever they are sent: a resumed reply is not kept waiting behind its question's rewrite.
        taken = sorted(taken, key=lambda intent: intent.role in REWRITES)
        for n, intent in enumerate(taken):
            try:
                with acting_for(await self._team_of(intent)):
                    await self._send(intent)
            except SlackUnavailable as exc:
                log.warning("Slack is unavailable (%s): %s will be sent later", exc, intent.key)
                backoff = max(exc.retry_after or 0.0, 2.0**intent.attempts)
                await self.outbox.release(intent.key, error=str(exc), backoff=min(MAX_BACKOFF, backoff))
                await self._give_back(taken[n + 1 :])
                raise
            except SlackRefused as exc:
                await self._refused(intent, exc)
            except BaseException:
                await self._give_back(taken[n + 1 :])
                raise

    async def project_after(self, ended: asyncio.Event, keys: Sequence[str], delay: float) -> None:
        """A decision's views (its request's message rewritten, App Homes: `keys`) once its resume, running in this
        process, has `ended`, or has gone on for `delay` seconds (the status delay). The resume's own projection
        sends what is due in its thread, messages before rewrites (`project`), so a quick resume's answer is not
        kept waiting behind the question's rewrite competing with it for this process, while a slow one's thread
        shows the decision all the same. What the resume did not send is sent here (if it sent it all, one statement
        finds nothing due)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ended.wait(), delay)
        await self.project(keys=list(keys))

    async def _give_back(self, untried: list[Intent]) -> None:
        """The rows this attempt took but never tried go back (best effort: else their lease runs out)."""
        try:
            await self.outbox.give_back(untried)
        except Exception:
            log.warning("could not free %d outbox rows; they are sent when their lease runs out", len(untried))

    async def _team_of(self, intent: Intent) -> str | None:
        """The team a row is sent for (many workspaces): its App Home's, or its conversation's."""
        if not self.gateway.multi_team:
            return current_team()
        if intent.role == "home":
            return parse_home_key(intent.key)[0]
        if intent.conversation_id is None:
            return current_team()
        if intent.conversation_id not in self._teams:
            self._teams[intent.conversation_id] = (await self.store.get_conversation(intent.conversation_id)).team_id
        return self._teams[intent.conversation_id]

    async def _send(self, intent: Intent) -> None:
        if intent.role == "home":
            await self._home(intent)
            return
        if intent.role == "stream":
            await StreamIntents(self.gateway, self.outbox, self._post).send(intent)
            return
        if intent.record_id is None:
            message = SlackMessage(**(intent.message or {"text": ""}))
            if intent.op == "update":
                if intent.channel_id and intent.target_ts:
                    await self.gateway.update(channel=intent.channel_id, ts=intent.target_ts, message=message)
                await self.outbox.sent(intent, ts=intent.target_ts)
            else:
                await self._post(intent, intent.channel_id or "", intent.thread_ts, message)
            return
        found = await self.store.interrupt_in(intent.record_id)
        if found is None:
            await self.outbox.drop(intent.key, error="the request is gone")
            return
        record, conversation, _, _ = found
        if intent.role == "request":
            await self._post(
                intent, conversation.channel_id, conversation.thread_ts, render_request(self.registry, record)
            )
        elif intent.role == "escalate":
            await self._escalate(intent, conversation, record)
        elif intent.role == "notice":
            await self._post(
                intent, conversation.channel_id, conversation.thread_ts, render_notice(self.registry, record)
            )
        elif intent.role == "view":
            if record.channel_id and record.message_ts:
                message = render_request(self.registry, record)
                if record.route is not None and record.state == "pending":
                    message = await self._experts_copy(conversation, record, message)
                await self.gateway.update(channel=record.channel_id, ts=record.message_ts, message=message)
            await self.outbox.sent(intent, ts=record.message_ts)
        elif intent.role == "returned":
            link = await self.gateway.permalink(conversation.channel_id, conversation.thread_ts)
            returned = esc.render_returned(who_decided(record), record.requested_by, link)
            await self._post(intent, intent.channel_id or "", intent.thread_ts, returned)
        elif intent.role == "notice_view":
            if record.notice_ts:
                notice = render_notice(self.registry, record)
                await self.gateway.update(channel=conversation.channel_id, ts=record.notice_ts, message=notice)
            await self.outbox.sent(intent, ts=record.notice_ts)
        else:
            await self.outbox.drop(intent.key, error=f"unknown role {intent.role}")

    async def _home(self, intent: Intent) -> None:
        """Publish a person's App Home as it is now. Best effort for the thread it is sent with: a failure never
        holds up that conversation's rows. It waits for the reconciler when it has a conversation (a decision
        armed it), else for the person to open the tab again."""
        if self.inbox is None:
            await self.outbox.drop(intent.key, error="no inbox to render App Home")
            return
        team_id, user_id = parse_home_key(intent.key)
        version: int | None = int((intent.message or {}).get("v") or 0)
        rounds = 0
        while version is not None and rounds < HOME_ROUNDS:
            rounds += 1
            try:
                await self.gateway.publish_home(user=user_id, view=await self.inbox.home(team_id, user_id))
            except SlackUnavailable as exc:
                if intent.conversation_id is None:
                    await self.outbox.drop(intent.key, error=str(exc))
                else:
                    backoff = min(MAX_BACKOFF, max(exc.retry_after or 0.0, 2.0**intent.attempts))
                    await self.outbox.release(intent.key, error=str(exc), backoff=backoff)
                log.warning("App Home of %s not published (%s)", user_id, exc)
                return
            version = await self.outbox.home_sent(intent, version)

    async def _post(self, intent: Intent, channel: str, thread_ts: str | None, message: SlackMessage) -> None:
        if intent.tried_before:
            since = intent.created_at.timestamp()
            found = await self.gateway.find_posted(intent.key, channel=channel, thread_ts=thread_ts, since=since)
            if found is not None:
                await self.outbox.sent(intent, ts=found, channel_id=channel)
                return
        if not intent.leased_within(FRESH_LEASE) and not await self.outbox.renew(intent, self.lease_seconds):
            log.warning("%s: another attempt took it while this one was looking for it", intent.key)
            return
        ts = await self.gateway.post(intent.key, channel=channel, thread_ts=thread_ts, message=message)
        await self.outbox.sent(intent, ts=ts, channel_id=channel)

    async def _escalate(self, intent: Intent, conversation: Conversation, record: InterruptRecord) -> None:
        if record.state != "pending":
            await self.outbox.drop(intent.key, error="answered before it reached the experts")
            return
        message = await self._experts_copy(conversation, record, render_request(self.registry, record))
        await self._post(intent, intent.channel_id or "", None, message)

    async def _experts_copy(
        self, conversation: Conversation, record: InterruptRecord, request: SlackMessage
    ) -> SlackMessage:
        """The request with its context: who asked, a link to the thread, the recent conversation."""
        return esc.render_escalated(
            request,
            requester=record.requested_by,
            permalink=await self.gateway.permalink(conversation.channel_id, conversation.thread_ts),
            recent=await self._recent(conversation),
            graph=conversation.graph,
        )

    async def _recent(self, conversation: Conversation, limit: int = 4) -> list[tuple[str | None, str]]:
        messages = await self.gateway.thread(conversation.channel_id, conversation.thread_ts)
        said = [m for m in messages if m.get("text") and not _is_request(m)]
        return [
            (None if m.get("bot_id") else m.get("user"), t.strip_mentions(t.from_slack(str(m["text"]))))
            for m in said[-limit:]
        ]

    async def _refused(self, intent: Intent, exc: SlackRefused) -> None:
        log.warning("Slack refused %s: %s", intent.key, exc.error)
        await self.outbox.drop(intent.key, error=exc.error)
        if intent.role == "escalate" and intent.record_id is not None:
            await self._escalation_failed(intent, exc.error)

    async def _escalation_failed(self, intent: Intent, error: str) -> None:
        """The experts' channel refused the request: ask it in the asking thread instead."""
        record = await self.store.get_interrupt(intent.record_id or "")
        if record is None or record.state != "pending":
            return
        channel = intent.channel_id or ""
        note = f":warning: I couldn't post this in <#{channel}> (`{t.escape(error)}`): please answer it here."
        conversation = await self.store.get_conversation(record.conversation_id)
        async with self.store.transaction() as conn:
            await self.store.set_route(record.id, None, conn)
            await conn.execute(
                "UPDATE lgslack_outbox SET state = 'dropped', error = 'escalation failed'"
                " WHERE key = %s AND state = 'pending'",
                (f"notice:{record.id}",),
            )
            await post_in_thread(
                self.outbox, conn, conversation, f"escalation-failed:{record.id}:{channel}", render.render_notice(note)
            )
            await self.outbox.add(
                conn,
                f"request:{record.id}",
                role="request",
                conversation_id=record.conversation_id,
                record_id=record.id,
            )
