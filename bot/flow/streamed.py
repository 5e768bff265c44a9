"""What becomes of the messages a run streamed (bot/flow/streams.py) once it ended.

The run's outcome settles every one of them in the outcome's own transaction (`Turns.record_outcome`): a reply that
was shown becomes an outbox *update* of that message (stopped first if need be, then rewritten with the formatted
text; a reply split over several messages posts the rest); any other message — cut by a crash and written again
with a new id, not a reply at all, or shown by a run that failed — an outbox *delete*. `StreamIntents` carries
those rows out for the projector and may run again: a stop, an update and a delete are safe to repeat.

A message whose start was asked but whose ts was never stored (a crash, a lost answer) is found in the thread: a
message of ours, near the row's time, that carries no outbox key and that no record knows. It is looked for only
once its start call can no longer be going (`Gateway.timeout` after the row) and while no other message of the
conversation is being started. What remains possible: a message of this bot without our metadata, posted in that
thread within about a minute of the cut one by something other than this bot's outbox, would be taken for it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bot.records.outbox import Intent, Outbox
from bot.records.streams import StreamRow, Streams
from bot.slack.gateway import Gateway
from bot.slack.web import METADATA_EVENT, SlackRefused
from bot.types import Conn, SlackMessage

log = logging.getLogger(__name__)

START_MARGIN = 5.0
"""A start call ends within the gateway's timeout; a row older than that and this margin has no call going."""
CLOCK_SKEW = 60.0
"""How far Slack's clock (message ts) may be from the database's when a cut message is looked for."""
GONE = frozenset({"message_not_found", "cant_update_message"})

Post = Callable[[Intent, str, str | None, SlackMessage], Awaitable[None]]


async def queue_final(outbox: Outbox, conn: Conn, row: StreamRow, key: str, message: SlackMessage) -> None:
    """The formatted reply replaces the text streamed into `row`'s message."""
    await outbox.add(
        conn,
        key,
        op="update",
        role="stream",
        conversation_id=row.conversation_id,
        channel_id=row.channel_id,
        thread_ts=row.thread_ts,
        target_ts=row.ts,
        message={**message.as_dict(), "stream": row.key},
    )


async def queue_removal(outbox: Outbox, conn: Conn, row: StreamRow) -> None:
    """A streamed message that is not an answer (cut short and written again, or not a reply) is deleted."""
    await outbox.add(
        conn,
        f"{row.key}:remove",
        op="delete",
        role="stream",
        conversation_id=row.conversation_id,
        channel_id=row.channel_id,
        thread_ts=row.thread_ts,
        target_ts=row.ts,
        message={"stream": row.key},
    )


class StreamIntents:
    """The projector's part for outbox rows of role `stream`; each step may be repeated."""

    def __init__(self, gateway: Gateway, outbox: Outbox, post: Post) -> None:
        self.gateway = gateway
        self.outbox = outbox
        self.streams = Streams(outbox.pool)
        self.post = post

    async def send(self, intent: Intent) -> None:
        body = dict(intent.message or {})
        row = await self.streams.get(str(body.pop("stream", "")))
        if intent.op == "update":
            await self._final(intent, row, SlackMessage(**body))
        elif intent.op == "delete":
            await self._remove(intent, row)
        else:
            await self.outbox.drop(intent.key, error=f"a stream row can't {intent.op}")

    async def _stop(self, row: StreamRow | None, ts: str) -> None:
        if row is None or row.mode != "stream" or row.state == "stopped":
            return
        try:
            await self.gateway.stop_stream(channel=row.channel_id, ts=ts, key=row.key)
        except SlackRefused as exc:
            log.info("stopping %s: Slack says %s", row.key, exc.error)
            return
        await self.streams.stopped(row.key)

    async def _final(self, intent: Intent, row: StreamRow | None, message: SlackMessage) -> None:
        channel, ts = intent.channel_id or "", intent.target_ts or ""
        await self._stop(row, ts)
        try:
            await self.gateway.update(channel=channel, ts=ts, message=message)
        except SlackRefused as exc:
            if exc.error not in GONE:
                raise
            log.warning("the streamed message of %s is gone (%s): posting the answer", intent.key, exc.error)
            await self.post(intent, channel, intent.thread_ts, message)
            return
        await self.outbox.sent(intent, ts=ts)

    async def _remove(self, intent: Intent, row: StreamRow | None) -> None:
        channel = intent.channel_id or ""
        if intent.target_ts:
            targets = [intent.target_ts]
        elif row is None:
            targets = []
        else:
            found = await self._cut(intent, row)
            if found is None:
                return
            targets = found
        for ts in targets:
            await self._stop(row, ts)
            await self.gateway.delete(channel=channel, ts=ts)
        await self.outbox.sent(intent, ts=targets[0] if targets else None)

    async def _cut(self, intent: Intent, row: StreamRow) -> list[str] | None:
        """The message a start left without its ts being stored; None while that can't be told yet."""
        settle = self.gateway.timeout + START_MARGIN
        wait = settle - row.age
        if wait > 0 or await self.streams.starting_elsewhere(row, within=settle):
            await self.outbox.release(intent.key, error="a stream start may still be going", backoff=max(wait, 1.0))
            return None
        since = row.created_at.timestamp()
        if row.mode == "post":
            found = await self.gateway.find_posted(
                row.key, channel=row.channel_id, thread_ts=row.thread_ts, since=since
            )
            return [found] if found else []
        me = await self.gateway.identity()
        known = await self.streams.known_ts(row.conversation_id)
        latest = since + settle + CLOCK_SKEW
        cut = []
        for message in await self.gateway.thread_since(row.channel_id, row.thread_ts, since=since - CLOCK_SKEW):
            ts = str(message.get("ts") or "")
            if not ts or ts == row.thread_ts or not _ours(message, me):
                continue
            metadata: dict[str, Any] = message.get("metadata") or {}
            if metadata.get("event_type") == METADATA_EVENT:
                # Stopped with its key (we did store its ts then, or it is another of our messages).
                if (metadata.get("event_payload") or {}).get("key") == row.key:
                    cut.append(ts)
                continue
            if ts not in known and float(ts) <= latest:
                cut.append(ts)
        if cut:
            log.warning("message %s was cut before its ts was stored: removing %s", row.key, cut)
        return cut


def _ours(message: dict[str, Any], me: dict[str, str]) -> bool:
    user, bot = me.get("user_id"), me.get("bot_id")
    return bool((user and message.get("user") == user) or (bot and message.get("bot_id") == bot))
