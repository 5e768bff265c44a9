"""The Slack side of the benchmark: the sandbox, watched, and our own signed, timed POSTs to the bot.

The sandbox (`bot.dev.sandbox.SlackSandbox`) serves the Web API the bot calls and delivers the events of the bot's own
messages, as Slack does. A person's messages are made by the sandbox too (`post_as_user`, so they are stored and the
bot can react to them), but their events are taken from its in-order delivery queue and POSTed by `Door`, as many at
once as a figure needs, each timed from the first byte sent to the bot's answer.

A reply is recognised by the text it must contain (each message carries a nonce): `BenchSandbox.expect` gives a
future that resolves, with `time.perf_counter()`, when the bot's `chat.postMessage` carrying that text is served.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from bot.dev.sandbox import SlackSandbox
from bot.dev.sandbox import events as sandbox_events
from bot.dev.sandbox.core import ApiCall
from bot.dev.sandbox.delivery import signed_headers
from bot.dev.sandbox.workspace import BOT_USER_ID

SIGNING_SECRET = "bench-signing-secret"
BOT_TOKEN = "xoxb-bench"
ECHO_CHANNEL = "C0GENERAL"
ASK_CHANNEL = "C0BENCHASK"
SLOW_CHANNEL = "C0BENCHSLOW"
USERS = ("U0ALICE", "U0BOB", "U0CAROL")
POSTED = ("chat.postMessage",)
_NONCE = re.compile(r"bench-[0-9a-f]{12}")


def nonce() -> str:
    """A word no other message contains: how a reply is matched to what asked for it."""
    return f"bench-{secrets.token_hex(6)}"


@dataclass(frozen=True)
class Seen:
    """A bot message the benchmark waited for: when it was served (perf_counter) and its ts."""

    at: float
    ts: str | None


class CallLog(list[ApiCall]):
    """The sandbox's Web API call log, telling `on_append` of each call as it is logged."""

    def __init__(self, on_append: Callable[[ApiCall], None]) -> None:
        super().__init__()
        self._on_append = on_append

    def append(self, call: ApiCall) -> None:
        super().append(call)
        self._on_append(call)


@dataclass
class ServerTime:
    """How long the sandbox took to serve the bot's Web API calls (inside its aiohttp handler)."""

    calls: int = 0
    seconds: float = 0.0
    samples: list[float] = field(default_factory=list)


class BenchSandbox(SlackSandbox):
    """The sandbox with channels for the `ask` and `slow` graphs, people's events captured for `Door`, and replies
    watched."""

    def __init__(self) -> None:
        super().__init__(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN, delivery_timeout=10.0)
        self.call_log = CallLog(self._called)
        self.workspace.add_channel(ASK_CHANNEL, "bench-ask", USERS)
        self.workspace.add_channel(SLOW_CHANNEL, "bench-slow", USERS)
        self._capture: list[dict[str, Any]] | None = None
        self._bench_ids = itertools.count(1)
        self._waiting: dict[str, list[tuple[str, asyncio.Future[Seen]]]] = {}
        self._calls: dict[str, list[asyncio.Future[Seen]]] = {}
        self.served = ServerTime()

    # ---- people's messages ---------------------------------------------------------------------

    def emit(self, event: dict[str, Any]) -> str:
        if self._capture is not None:
            self._capture.append(event)
            return "captured"
        return super().emit(event)

    def say(self, user: str, channel: str, text: str, thread_ts: str | None = None) -> tuple[str, list[dict[str, Any]]]:
        """A person writes `text`: stored like any message; returns its ts and the event envelopes Slack would
        POST for it (an app_mention and a message event for a mention in a channel), for `Door` to send."""
        self._capture = []
        try:
            message = self.post_as_user(user, channel, text, thread_ts)
            captured = self._capture
        finally:
            self._capture = None
        now = int(time.time())
        envelopes = [sandbox_events.envelope(event, f"Ev0BENCH{next(self._bench_ids):08d}", now) for event in captured]
        return message.ts, envelopes

    # ---- replies -------------------------------------------------------------------------------

    def expect(self, text: str) -> asyncio.Future[Seen]:
        """A future for the moment the bot's message containing `text` (which holds a nonce) is posted."""
        found = _NONCE.search(text)
        if found is None:
            raise ValueError(f"{text!r} holds no nonce")
        future: asyncio.Future[Seen] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(found.group(), []).append((text, future))
        return future

    def expect_call(self, method: str) -> asyncio.Future[Seen]:
        """A future for the bot's next successful call of `method` (e.g. views.open)."""
        future: asyncio.Future[Seen] = asyncio.get_running_loop().create_future()
        self._calls.setdefault(method, []).append(future)
        return future

    def _called(self, call: ApiCall) -> None:
        now = time.perf_counter()
        if call.method in self._calls and call.response.get("ok"):
            for future in self._calls.pop(call.method):
                if not future.done():
                    future.set_result(Seen(now, None))
        if call.method not in POSTED or not call.response.get("ok") or not self._waiting:
            return
        seen = Seen(now, str(call.response.get("ts") or "") or None)
        haystack = str(call.params.get("text") or "")
        if not _NONCE.search(haystack):
            haystack += json.dumps(call.params.get("blocks") or [])
        for word in set(_NONCE.findall(haystack)):
            waiting = self._waiting.get(word)
            if not waiting:
                continue
            for pair in list(waiting):
                text, future = pair
                if text in haystack:
                    waiting.remove(pair)
                    if not future.done():
                        future.set_result(seen)
            if not waiting:
                del self._waiting[word]

    # ---- the sandbox's own cost ------------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = super().make_app()

        @web.middleware
        async def timed(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Any:
            if not request.path.startswith("/api/"):
                return await handler(request)
            started = time.perf_counter()
            try:
                return await handler(request)
            finally:
                spent = time.perf_counter() - started
                self.served.calls += 1
                self.served.seconds += spent
                if len(self.served.samples) < 200_000:
                    self.served.samples.append(spent)

        app.middlewares.append(timed)
        return app

    def calls_since(self, start: int) -> list[ApiCall]:
        return list(self.call_log[start:])


@dataclass(frozen=True)
class Ack:
    """One POST of an event to the bot: when it started (perf_counter), how long until the answer, the status."""

    started: float
    elapsed: float
    status: int | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and 200 <= self.status < 300


class Door:
    """POSTs events to the bot's `/slack/events` (round robin over its intake processes), signed as Slack signs
    them, each timed on its own; keeps every `Ack` in `acks`."""

    def __init__(self, urls: Iterable[str], *, timeout: float = 30.0) -> None:
        self.urls = list(urls)
        self._next = itertools.cycle(range(len(self.urls)))
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self.acks: list[Ack] = []

    async def __aenter__(self) -> Door:
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=self._timeout)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, envelope: dict[str, Any]) -> Ack:
        assert self._session is not None, "use `async with Door(...)`"
        body = json.dumps(envelope, separators=(",", ":")).encode()
        headers = signed_headers(SIGNING_SECRET, body, "application/json")
        url = self.urls[next(self._next)]
        started = time.perf_counter()
        try:
            async with self._session.post(url, data=body, headers=headers) as response:
                await response.read()
                ack = Ack(started, time.perf_counter() - started, response.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            ack = Ack(started, time.perf_counter() - started, None, type(exc).__name__)
        self.acks.append(ack)
        return ack

    async def post_all(self, envelopes: list[dict[str, Any]]) -> list[Ack]:
        """The events of one message (an app_mention, then a message event, for a mention), one after the other as
        the sandbox delivers them. (Sent at once, as Slack may, the two race to create the conversation: one is
        answered 500 and Slack sends it again; that is a bug of its own, not a cost measured here.)"""
        return [await self.post(e) for e in envelopes]


def mention(text: str) -> str:
    return f"<@{BOT_USER_ID}> {text}"
