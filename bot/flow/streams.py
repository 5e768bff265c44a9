"""Streamed answers: the model's text appears in the thread while it is written, and the final answer is that same
message, complete and formatted — never a second one.

While the run goes (`Streamer`, best effort: a Slack fault stops the showing, never the run): an AI message still
being written `STREAM_AFTER` seconds after its first words is recorded (bot/records/streams.py, `starting`) before
Slack is asked to start it (chat.startStream, in the thread, for the person the run is for), gets its ts (`open`)
right after, and grows by appends at most once every `INTERVAL` seconds; it is stopped when the model finishes it,
when the next message begins, or when the run ends. Where Slack refuses to stream, the message is posted (with its
key in the metadata) and updated instead. A message written faster than that is simply posted when the run ends.

When the run ends, its outcome settles every message of the run (bot/flow/streamed.py).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable
from contextlib import suppress
from dataclasses import dataclass

from bot import render
from bot import text as t
from bot.records.conversations import Conversation
from bot.records.streams import Mode, Streams, stream_key
from bot.runner import Delta
from bot.slack.gateway import Gateway
from bot.slack.web import SlackRefused, SlackUnavailable
from bot.types import SlackMessage

log = logging.getLogger(__name__)

STREAM_AFTER = 1.0
"""A message is shown while it is written once its words have been coming for this long; faster ones are posted
whole when the run ends."""
INTERVAL = 1.0
"""At most one append (or, posting instead, one update) per message in this many seconds: Slack's rate limits."""
CLOSE_GRACE = 2.0
"""How long the end of a run waits for the last sends; whatever is left is done by the outcome's outbox rows."""


@dataclass
class _Shown:
    """One AI message of the run, as far as Slack has it."""

    message_id: str
    key: str
    began: float
    text: str = ""
    sent: int = 0
    ts: str | None = None
    mode: Mode = "stream"
    at: float = -math.inf
    recorded: bool = False
    ended: bool = False
    stuck: bool = False
    """No more appends (one may have reached Slack unanswered, or Slack refused one): only the stop is left."""
    uncertain: bool = False
    """Its start may have reached Slack without the ts coming back: its row is left for the outcome to settle."""
    done: bool = False


def _markdown(text: str) -> str:
    """Model text for `markdown_text`: Markdown shows as written; &, < and > escaped so nobody is pinged."""
    return t.escape(text)


def _posted(text: str) -> SlackMessage:
    """The message shown where streaming is refused: the reply as it will look, as far as it is written."""
    return render.render_reply(text)[0]


class Streamer:
    """Shows the AI text of one run in its conversation's thread while the run goes. `sink` never waits on Slack or
    the database: a worker task sends; `close` ends it (bounded by `grace`)."""

    def __init__(
        self,
        *,
        gateway: Gateway,
        streams: Streams,
        conversation: Conversation,
        run_key: str,
        recipient: str | None,
        stream_after: float = STREAM_AFTER,
        interval: float = INTERVAL,
        grace: float = CLOSE_GRACE,
    ) -> None:
        self.gateway = gateway
        self.streams = streams
        self.conversation = conversation
        self.run_key = run_key
        self.recipient = recipient
        self.stream_after = stream_after
        self.interval = interval
        self.grace = grace
        self._shown: dict[str, _Shown] = {}
        self._mode: Mode = "stream"
        self._paused_until = 0.0
        self._closing = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def began(self) -> bool:
        """Whether any text came to show (only then can the run have streamed rows)."""
        return bool(self._shown)

    async def sink(self, delta: Delta) -> None:
        if self._closing:
            return
        shown = self._shown.get(delta.message_id)
        if shown is None:
            if not delta.text.strip():
                return
            for earlier in self._shown.values():
                earlier.ended = True
            key = stream_key(self.run_key, delta.message_id)
            shown = self._shown[delta.message_id] = _Shown(delta.message_id, key, began=time.monotonic())
        shown.text += delta.text
        shown.ended = shown.ended or delta.last
        self._wake.set()
        if self._task is None:
            self._task = asyncio.create_task(self._work(), name=f"stream {self.run_key}")

    async def close(self) -> None:
        """The run ended: stop what is shown, start nothing more. Waits `grace` seconds at most."""
        self._closing = True
        task = self._task
        if task is None:
            return
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), self.grace)
        except TimeoutError:
            log.warning("run %s: Slack is slow; the streamed messages are finished by the outcome", self.run_key)
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        except asyncio.CancelledError:
            task.cancel()
            raise

    # the worker

    async def _work(self) -> None:
        try:
            while True:
                self._wake.clear()
                wait = await self._step()
                if self._closing and all(s.done for s in self._shown.values()):
                    return
                if wait is None:
                    await self._wake.wait()
                    continue
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("run %s: showing the answer while it is written failed", self.run_key)

    async def _step(self) -> float | None:
        """Send what is due; the seconds until more is due (None: nothing until new text or the end)."""
        soonest: float | None = None
        for shown in list(self._shown.values()):
            if shown.done:
                continue
            now = time.monotonic()
            if now < self._paused_until:
                return self._paused_until - now
            if shown.ts is None:
                if self._closing or shown.ended or shown.uncertain:
                    await self._never_started(shown)
                    continue
                due = shown.began + self.stream_after - now
                if due <= 0:
                    await self._start(shown)
                else:
                    soonest = due if soonest is None else min(soonest, due)
                continue
            if self._closing or shown.ended:
                await self._finish(shown)
                continue
            if shown.stuck or len(shown.text) == shown.sent:
                continue
            due = shown.at + self.interval - now
            if due <= 0:
                await self._append(shown)
            else:
                soonest = due if soonest is None else min(soonest, due)
        paused = self._paused_until - time.monotonic()
        return paused if paused > 0 else soonest

    def _pause(self, exc: SlackUnavailable) -> bool:
        """A rate limit: Slack did nothing; wait it out. False for a fault whose outcome is unknown."""
        if exc.retry_after is None:
            return False
        self._paused_until = time.monotonic() + exc.retry_after
        return True

    async def _start(self, shown: _Shown) -> None:
        if not shown.recorded:
            try:
                shown.recorded = await self.streams.begin(
                    shown.key,
                    run_key=self.run_key,
                    conversation_id=self.conversation.id,
                    message_id=shown.message_id,
                    channel_id=self.conversation.channel_id,
                    thread_ts=self.conversation.thread_ts,
                    mode=self._mode,
                )
            except Exception:
                log.exception("run %s: could not record message %s; it is posted at the end", self.run_key, shown.key)
            if not shown.recorded:
                shown.done = True
                return
            shown.mode = self._mode
        text = shown.text
        try:
            ts = await self._open(shown, text)
        except SlackRefused as exc:
            if shown.mode == "stream":
                log.info("Slack refused to stream in %s (%s): posting and updating", self.conversation.id, exc.error)
                self._mode = shown.mode = "post"
                await self._quietly(self.streams.restart_as_post(shown.key))
                await self._start(shown)
                return
            log.warning("Slack refused message %s (%s): it is posted at the end", shown.key, exc.error)
            await self._quietly(self.streams.forget(shown.key))
            shown.done = True
            return
        except SlackUnavailable as exc:
            if not self._pause(exc):
                log.warning("starting message %s: %s; the outcome settles it", shown.key, exc)
                shown.uncertain = shown.done = True
            return
        shown.ts, shown.sent, shown.at = ts, len(text), time.monotonic()
        await self._quietly(self.streams.opened(shown.key, ts))

    async def _open(self, shown: _Shown, text: str) -> str:
        channel, thread_ts = self.conversation.channel_id, self.conversation.thread_ts
        if shown.mode == "post":
            return await self.gateway.post(shown.key, channel=channel, thread_ts=thread_ts, message=_posted(text))
        return await self.gateway.start_stream(
            channel=channel,
            thread_ts=thread_ts,
            markdown_text=_markdown(text),
            recipient_team_id=self.conversation.team_id if self.recipient else None,
            recipient_user_id=self.recipient,
        )

    async def _append(self, shown: _Shown) -> None:
        assert shown.ts is not None
        text = shown.text
        channel = self.conversation.channel_id
        try:
            if shown.mode == "post":
                await self.gateway.update(channel=channel, ts=shown.ts, message=_posted(text))
            else:
                await self.gateway.append_stream(
                    channel=channel, ts=shown.ts, markdown_text=_markdown(text[shown.sent :])
                )
        except SlackUnavailable as exc:
            if not self._pause(exc):
                log.info("appending to %s: %s; it is finished by the outcome", shown.key, exc)
                shown.stuck = True
            return
        except SlackRefused as exc:
            log.info("Slack refused an append to %s (%s); it is finished by the outcome", shown.key, exc.error)
            shown.stuck = True
            return
        shown.sent, shown.at = len(text), time.monotonic()

    async def _finish(self, shown: _Shown) -> None:
        """The message is written (or the run ended): stop it with the rest of its text."""
        assert shown.ts is not None
        shown.done = True
        if shown.mode == "post":
            # Nothing to stop; the outcome's update shows the whole text a moment later.
            await self._quietly(self.streams.stopped(shown.key))
            return
        rest = "" if shown.stuck else shown.text[shown.sent :]
        try:
            await self.gateway.stop_stream(
                channel=self.conversation.channel_id, ts=shown.ts, markdown_text=_markdown(rest), key=shown.key
            )
        except (SlackUnavailable, SlackRefused) as exc:
            log.info("stopping %s: %s; the outcome stops it", shown.key, exc)
            return
        shown.sent = len(shown.text)
        await self._quietly(self.streams.stopped(shown.key))

    async def _never_started(self, shown: _Shown) -> None:
        shown.done = True
        if shown.recorded and not shown.uncertain:
            # Slack refused or rate limited the start: nothing of it is in Slack.
            await self._quietly(self.streams.forget(shown.key))

    async def _quietly(self, call: Awaitable[None]) -> None:
        try:
            await call
        except Exception:
            log.exception("run %s: could not record a streamed message's state; the outcome settles it", self.run_key)
