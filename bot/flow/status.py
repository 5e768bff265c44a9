"""Live status: what the agent is doing, on its thread, while a turn or a resume runs.

Slack shows an app's status under a thread (`assistant.threads.setStatus`: "agent is thinking…", with loading
messages that rotate) and clears it when the app posts there. A run that is still going after `STATUS_DELAY` shows
"Thinking…" (a quicker run shows nothing: its answer is the sign of work, and no status call holds it up); when the
graph calls a tool the status names it ("Checking the weather…" from the tool's `metadata={"slack_status": ...}`,
else "Using <tool>…"). When the run ends, the message it posts clears the status (Slack does, when the app posts in
the thread); a run that posts nothing clears it with a call, and one that leaves a request says who the thread now
waits for ("Waiting for @bob's approval"): at most one status call per run beyond the messages shown. Where Slack
refuses a status (`not_allowed`, `missing_scope`: remembered per channel by the gateway), a reaction on the message
that started the work shows it instead.

All of it is best effort: a status call is tried once, never for longer than `STATUS_TIMEOUT`, and a failure is only
logged. Tool calls are seen through a LangChain callback handler attached, through a context variable, to every
run in process; on a LangGraph Server, from the tool calls in the run's stream (`TOOLS_CALLED`, told by the runner).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.tracers.context import register_configure_hook

from bot.interrupts.registry import Registry
from bot.records.interrupts import InterruptRecord
from bot.rules.policy import Policy
from bot.rules.routing import APPROVAL_KINDS
from bot.runners.outcomes import TOOLS_CALLED
from bot.slack.gateway import Gateway
from bot.text import shorten

log = logging.getLogger(__name__)

STATUS_TIMEOUT = 3.0
"""The longest one status call may hold up a run."""
STATUS_DELAY = 0.5
"""How long a run goes on before its thread shows a status (or the reaction): a quicker one shows only its answer."""
REFRESH_EVERY = 60.0
"""Slack drops a status after two minutes without a message: a long run shows it again this often."""
TOOL_STATUS_KEY = "slack_status"
"""The key of a tool's `metadata` that says what the agent does while it runs ("Checking the weather…")."""
MAX_TEXT = 80


@dataclass(frozen=True)
class Activity:
    """A status: `text` as a loading message ("Thinking…"); Slack shows the status after the app's name."""

    text: str

    @property
    def status(self) -> str:
        return f"is {self.text[:1].lower()}{self.text[1:]}" if self.text else ""

    @property
    def loading_messages(self) -> tuple[str, ...]:
        return (self.text,) if self.text else ()


THINKING = Activity("Thinking…")
CLEAR = Activity("")


def _plain(text: str) -> str:
    """One line of plain text, short: a status is not mrkdwn, and no markup of a graph's gets through."""
    line = " ".join(text.replace("<", "").replace(">", "").split())
    return shorten(line, MAX_TEXT)


def tool_activity(name: str, metadata: Mapping[str, Any] | None) -> Activity:
    """What the agent does while a tool runs: the tool's own `slack_status`, else "Using <name>…"."""
    custom = (metadata or {}).get(TOOL_STATUS_KEY)
    if isinstance(custom, str) and custom.strip():
        return Activity(_plain(custom))
    return Activity(_plain(f"Using {name or 'a tool'}…"))


async def waiting_activity(
    record: InterruptRecord, *, graph: str, registry: Registry, policy: Policy, gateway: Gateway
) -> Activity:
    """Who a pending request waits for: "Waiting for @bob's approval" when the approvers are people (the first one
    is named), "Waiting for the experts' answer" when it went to an escalation channel, else "Waiting for an
    answer" / "Waiting for approval"."""
    approval = record.kind in APPROVAL_KINDS
    if (record.route or {}).get("channel"):
        return Activity("Waiting for the experts' approval" if approval else "Waiting for the experts' answer")
    try:
        tools = registry.by_kind(record.kind).tools(record.request, "")
    except Exception:
        tools = []
    approvers = [a for tool in tools for a in policy.rule_for(graph, tool).approvers]
    person = next((a for a in approvers if a[:1] in ("U", "W")), None)
    name = None
    if person:
        with suppress(TimeoutError):
            name = await asyncio.wait_for(gateway.user_name(person), STATUS_TIMEOUT)
    if name:
        return Activity(_plain(f"Waiting for @{name}'s {'approval' if approval else 'answer'}"))
    return Activity("Waiting for approval" if approval else "Waiting for an answer")


class _Watcher(BaseCallbackHandler):
    """Sees the run's model and tool calls (in process) and tells the live status; it only records a wish, so it is
    called inline, on whichever thread the graph runs the call."""

    run_inline = True
    raise_error = False

    def __init__(self, live: LiveStatus) -> None:
        self.live = live

    def on_tool_start(
        self, serialized: dict[str, Any] | None, input_str: str, *, metadata: Any = None, **kwargs: Any
    ) -> None:
        name = kwargs.get("name") or (serialized or {}).get("name") or ""
        self.live.show(tool_activity(str(name), metadata if isinstance(metadata, Mapping) else None))

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.live.show(THINKING)

    def on_llm_start(self, serialized: Any, prompts: Any, **kwargs: Any) -> None:
        self.live.show(THINKING)


_watcher: contextvars.ContextVar[_Watcher | None] = contextvars.ContextVar("lgslack_status_watcher", default=None)
register_configure_hook(_watcher, inheritable=True)


class LiveStatus:
    """One run's sign of work: the thread's status, or a reaction where Slack refuses a status.

    `begin` starts the clock: if the run is still going after `delay`, "Thinking…" (or the latest wish) is shown, or
    the reaction added. `show` changes the status from anywhere, sent in the background, the latest wish winning;
    `end` says what the thread shows after the run.
    """

    def __init__(
        self,
        gateway: Gateway,
        thread: tuple[str, str] | None,
        message: tuple[str | None, str | None] | None,
        reaction: str,
    ) -> None:
        self.gateway = gateway
        self.thread = thread
        self.message = message if message and message[0] and message[1] else None
        self.reaction = reaction
        self.mode: Literal["status", "reaction", "none"] = "none"
        self.posted = False
        """Set by the run when it leaves a message to post in the thread: that message clears the status."""
        self._loop = asyncio.get_running_loop()
        self._shown: Activity | None = None
        self._wanted: Activity | None = None
        self._sender: asyncio.Task[None] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._starter: asyncio.Task[None] | None = None
        self._starting = False
        self._ended = False

    @classmethod
    async def begin(
        cls,
        gateway: Gateway,
        thread: tuple[str, str] | None,
        message: tuple[str | None, str | None] | None,
        *,
        reaction: str,
        delay: float = STATUS_DELAY,
    ) -> LiveStatus:
        """Show "Thinking…" on `thread` (channel, thread_ts) once the run has gone on for `delay` seconds, or, where
        Slack refuses a status, the `reaction` on `message` (channel, ts): the message that started the work."""
        live = cls(gateway, thread, message, reaction)
        if delay <= 0:
            await live._start()
        elif live.may_show_status or live.message is not None:
            live._starter = asyncio.create_task(live._start_after(delay))
        return live

    @property
    def shows_status(self) -> bool:
        return self.mode == "status"

    @property
    def quiet(self) -> bool:
        """Nothing shown, and nothing on its way: ended now, it would make no Slack call (but a waiting status)."""
        return self.mode == "none" and not self._starting

    @property
    def may_show_status(self) -> bool:
        """Whether a status may be shown on the thread: it has one, and Slack did not refuse one there."""
        return self.thread is not None and self.mode != "reaction" and not self.gateway.status_refused(self.thread[0])

    @contextmanager
    def watching(self) -> Iterator[None]:
        """Within this block, the model and tool calls of runs in this process update the status."""
        if not self.may_show_status:
            yield
            return
        token = _watcher.set(_Watcher(self))
        told = TOOLS_CALLED.set(lambda name: self.show(tool_activity(name, None)))
        try:
            yield
        finally:
            TOOLS_CALLED.reset(told)
            _watcher.reset(token)

    def show(self, activity: Activity) -> None:
        """Show `activity` as soon as Slack takes it (once the status shows); callable from any thread, never
        waits."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not self._loop:
            self._loop.call_soon_threadsafe(self.show, activity)
            return
        if self._ended:
            return
        self._wanted = activity
        if self.mode == "status" and (self._sender is None or self._sender.done()):
            self._sender = asyncio.create_task(self._flush())

    async def end(self, final: Activity | None = None) -> None:
        """After the run: show `final` (what the thread now waits for), else clear the status unless the run's
        message will (`posted`); take the reaction off."""
        self._ended = True
        if self._starter is not None and not self._starter.done():
            if self._starting:
                # Its call is out: let it land before anything else is sent or posted, so it can't come after.
                with suppress(Exception):
                    await self._starter
            else:
                self._starter.cancel()
                with suppress(asyncio.CancelledError):
                    await self._starter
        if self._refresher is not None and not self._refresher.done():
            self._refresher.cancel()
            with suppress(asyncio.CancelledError):
                await self._refresher
        if self._sender is not None and not self._sender.done():
            with suppress(Exception):
                await self._sender
        if final is not None and self.may_show_status:
            await self._send(final)
        elif self.mode == "status" and not self.posted:
            await self._send(CLEAR)
        elif self.mode == "reaction" and self.message is not None:
            channel, ts = self.message
            await self.gateway.react(channel=str(channel), ts=str(ts), name=self.reaction, add=False)

    async def _start_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._starting = True
        await self._start()

    async def _start(self) -> None:
        if self.may_show_status:
            if await self._send(self._wanted or THINKING) != "refused":
                self.mode = "status"
                self._refresher = asyncio.create_task(self._refresh())
                if self._wanted is not None and self._wanted != self._shown and not self._ended:
                    self._sender = asyncio.create_task(self._flush())
                return
        if self.message is not None:
            channel, ts = self.message
            await self.gateway.react(channel=str(channel), ts=str(ts), name=self.reaction, add=True)
            self.mode = "reaction"

    async def _flush(self) -> None:
        """Send the latest wish; once more if a newer one came while the call was out (a failure isn't retried)."""
        while not self._ended:
            wanted = self._wanted
            if wanted is None or wanted == self._shown:
                return
            await self._send(wanted)
            if self._wanted is wanted:
                return

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_EVERY)
            if self._shown is not None and not self._ended:
                await self._send(self._shown)

    async def _send(self, activity: Activity) -> str:
        assert self.thread is not None
        channel, thread_ts = self.thread
        call = self.gateway.set_status(
            channel=channel,
            thread_ts=thread_ts,
            status=activity.status,
            loading_messages=activity.loading_messages,
        )
        try:
            outcome = await asyncio.wait_for(call, STATUS_TIMEOUT)
        except TimeoutError:
            log.debug("the status of %s/%s took too long; the run goes on", channel, thread_ts)
            return "failed"
        except Exception:
            log.exception("setting the status of %s/%s failed", channel, thread_ts)
            return "failed"
        if outcome == "shown":
            self._shown = activity
        return outcome
