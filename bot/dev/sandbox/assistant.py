"""The assistant pane, as Slack runs it for an app with the Agents & AI Apps feature, and raw events.

Opening the pane starts an assistant thread: a root message (subtype ``assistant_app_thread``) in the person's DM
with the app, and an ``assistant_thread_started`` event naming the DM, the thread and the channel the person is
looking at. What they write there is a reply in that thread: a ``message.im`` event carrying
``assistant_thread.action_token`` (see `assistant_thread_fields`). Moving to another channel with the pane open
delivers ``assistant_thread_context_changed``.

``POST /control/event`` delivers any event as given, for event types the sandbox doesn't otherwise produce.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.dev.sandbox.errors import SlackError
from bot.dev.sandbox.workspace import BOT_USER_ID, TEAM_ID, Message

if TYPE_CHECKING:
    from bot.dev.sandbox.core import SandboxCore

ASSISTANT_THREAD = "assistant_app_thread"
"""The subtype of an assistant thread's root message."""


def _context(channel: str | None) -> dict[str, Any]:
    context: dict[str, Any] = {"team_id": TEAM_ID, "enterprise_id": None}
    if channel:
        context["channel_id"] = channel
    return context


def start_thread(core: SandboxCore, user_id: str, context_channel: str | None = None) -> dict[str, Any]:
    """`user_id` opens a new assistant thread (looking at `context_channel`): the thread's root message in their
    DM with the app, and the ``assistant_thread_started`` event. Returns ``{channel, thread_ts, event_id}``."""
    user = core.user(user_id)
    context = core.channel(context_channel).id if context_channel else None
    dm = core.workspace.open_dm(user.id)
    ts = core.workspace.clock.next()
    started = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    root = Message(ts=ts, channel=dm.id, text=f"Chats from {started}", user=BOT_USER_ID, subtype=ASSISTANT_THREAD)
    core.workspace.add_message(root)
    core.feed.publish({"type": "message", "channel": dm.id, "message": root.to_api()})
    event = {
        "type": "assistant_thread_started",
        "assistant_thread": {"user_id": user.id, "context": _context(context), "channel_id": dm.id, "thread_ts": ts},
        "event_ts": core.workspace.clock.next(),
    }
    return {"channel": dm.id, "thread_ts": ts, "event_id": core.emit(event)}


def change_context(
    core: SandboxCore, user_id: str, channel: str, thread_ts: str, context_channel: str | None
) -> dict[str, Any]:
    """With the assistant thread open, `user_id` moves to `context_channel`: ``assistant_thread_context_changed``."""
    user = core.user(user_id)
    dm = core.channel(channel)
    context = core.channel(context_channel).id if context_channel else None
    if not is_assistant_thread(core, dm.id, thread_ts):
        raise SlackError("thread_not_found", detail="not an assistant thread")
    event = {
        "type": "assistant_thread_context_changed",
        "assistant_thread": {
            "user_id": user.id,
            "context": _context(context),
            "channel_id": dm.id,
            "thread_ts": thread_ts,
        },
        "event_ts": core.workspace.clock.next(),
    }
    return {"event_id": core.emit(event)}


def is_assistant_thread(core: SandboxCore, channel: str, thread_ts: str | None) -> bool:
    root = core.workspace.get_message(channel, thread_ts) if thread_ts else None
    return root is not None and root.subtype == ASSISTANT_THREAD


def assistant_thread_fields(core: SandboxCore, message: Message) -> dict[str, Any]:
    """What Slack adds to the message event of a person's message in an assistant thread."""
    if message.bot_id or not message.is_reply or not is_assistant_thread(core, message.channel, message.thread_ts):
        return {}
    return {"assistant_thread": {"action_token": f"{secrets.randbelow(10**13)}.{secrets.token_hex(16)}"}}


def emit_event(core: SandboxCore, event: Any) -> dict[str, Any]:
    """Deliver `event` (an event's inner object, with a string `type`) in an ``event_callback`` envelope."""
    if not isinstance(event, dict) or not isinstance(event.get("type"), str) or not event["type"]:
        raise SlackError("invalid_arguments", detail="event must be an object with a type")
    return {"event_id": core.emit({"event_ts": core.workspace.clock.next(), **event})}


def routes(core: SandboxCore, wrap: Callable[[Callable[..., Any]], Any]) -> list[web.RouteDef]:
    """``POST /control/assistant_thread {user, context_channel?}`` -> ``{channel, thread_ts, event_id}``;
    ``POST /control/assistant_context {user, channel, thread_ts, context_channel?}`` -> ``{event_id}``;
    ``POST /control/event {event}`` -> ``{event_id}``."""

    async def thread(args: dict[str, Any]) -> dict[str, Any]:
        _require(args, "user")
        return start_thread(core, str(args["user"]), args.get("context_channel") or None)

    async def context(args: dict[str, Any]) -> dict[str, Any]:
        _require(args, "user", "channel", "thread_ts")
        return change_context(
            core, str(args["user"]), str(args["channel"]), str(args["thread_ts"]), args.get("context_channel")
        )

    async def event(args: dict[str, Any]) -> dict[str, Any]:
        return emit_event(core, args.get("event"))

    return [
        web.post("/control/assistant_thread", wrap(thread)),
        web.post("/control/assistant_context", wrap(context)),
        web.post("/control/event", wrap(event)),
    ]


def _require(args: dict[str, Any], *keys: str) -> None:
    missing = [k for k in keys if args.get(k) in (None, "")]
    if missing:
        raise SlackError("invalid_arguments", detail=f"missing {', '.join(missing)}")
