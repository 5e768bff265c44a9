"""The assistant pane: Bolt's assistant middleware (`AsyncAssistant`) on the front door.

When someone opens a new assistant thread (`assistant_thread_started`), the thread gets its title and the
suggested prompts of the graph that will answer it (`prompts` in the graph's `[graphs."<graph>"]` table of
BOT_CONFIG, else `DEFAULT_PROMPTS`); the first message written there renames the thread after itself.
`assistant_thread_context_changed` (the person moved to another channel with the pane open) is acknowledged and
logged: the graphs don't use the channel being viewed.

Messages in an assistant thread are `message.im` events in the bot's DM, in the thread: the door's message listener
takes them as it takes any DM (the assistant middleware has no message listener, so they pass on to it).

Every Slack call goes through the gateway, after the ack: the middleware's own utilities (`say`, `set_title`,
the default context store) call the Web API directly, and are not used.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncAssistant, AsyncBoltContext

from bot.rules.graphs import NO_OPTIONS, GraphOptions, Prompt
from bot.slack.listeners import Door
from bot.text import from_slack, shorten, strip_mentions

log = logging.getLogger(__name__)

DEFAULT_PROMPTS = (Prompt(title="What can you do?", message="What can you help me with?"),)
"""Offered when the graph's configuration names none: a question any agent can answer."""
PROMPTS_TITLE = "Try asking:"
NEW_THREAD_TITLE = "New chat"
TITLE_LIMIT = 60
REMEMBERED_THREADS = 1000
"""Threads started here whose first message is still to come (the oldest is forgotten first)."""

_ID = re.compile(r"[A-Z0-9]{2,40}")
_TS = re.compile(r"[0-9]{1,12}\.[0-9]{1,9}")


def _thread(body: Any) -> tuple[str, str, str] | None:
    """(user, DM channel, thread_ts) of an assistant thread event, when they are all well formed."""
    event = body.get("event") if isinstance(body, dict) else None
    thread = event.get("assistant_thread") if isinstance(event, dict) else None
    if not isinstance(thread, dict):
        return None
    user, channel, ts = thread.get("user_id"), thread.get("channel_id"), thread.get("thread_ts")
    if not (isinstance(user, str) and _ID.fullmatch(user) and isinstance(channel, str) and _ID.fullmatch(channel)):
        return None
    return (user, channel, ts) if isinstance(ts, str) and _TS.fullmatch(ts) else None


def well_formed(body: dict[str, Any]) -> bool:
    """Bolt matcher: only a well-formed assistant thread event reaches the listeners; any other is acknowledged
    as an unhandled event (a logged no-op)."""
    return _thread(body) is not None


def prompts_for(graph: str, options: Mapping[str, GraphOptions]) -> list[dict[str, str]]:
    """The suggested prompts of a new thread answered by `graph`, as Slack takes them."""
    prompts = options.get(graph, NO_OPTIONS).prompts or DEFAULT_PROMPTS
    return [{"title": p.title, "message": p.message} for p in prompts]


def title_of(text: str, bot_user_id: str | None) -> str:
    """A thread's title made from its first message: one line of plain text, short."""
    plain = " ".join(strip_mentions(from_slack(text, bot_user_id)).replace("<", "").replace(">", "").split())
    return shorten(plain, TITLE_LIMIT) or NEW_THREAD_TITLE


def register(app: AsyncApp, door: Door, options: Mapping[str, GraphOptions]) -> AsyncAssistant:
    """Attach the assistant middleware to a Bolt app (after the door's listeners)."""
    assistant = AsyncAssistant()
    untitled: OrderedDict[tuple[str, str], None] = OrderedDict()

    async def welcome(team_id: str, channel: str, thread_ts: str) -> None:
        graph = await door.store.channel_graph(team_id=team_id, channel_id=channel) or door.default_graph
        await door.gateway.set_title(channel=channel, thread_ts=thread_ts, title=NEW_THREAD_TITLE)
        await door.gateway.set_suggested_prompts(
            channel=channel, thread_ts=thread_ts, prompts=prompts_for(graph, options), title=PROMPTS_TITLE
        )

    # Bolt annotates `matchers` as one matcher, but adds it to its own list: a list is what it takes.
    @assistant.thread_started(matchers=[well_formed])  # type: ignore[arg-type]
    async def on_thread_started(body: dict[str, Any], context: AsyncBoltContext) -> None:
        found = _thread(body)
        assert found is not None  # the matcher checked it
        user, channel, thread_ts = found
        log.info("%s opened assistant thread %s/%s", user, channel, thread_ts)
        untitled[(channel, thread_ts)] = None
        while len(untitled) > REMEMBERED_THREADS:
            untitled.popitem(last=False)
        team_id = context.team_id or str(body.get("team_id") or "")
        door.later(welcome(team_id, channel, thread_ts))

    @assistant.thread_context_changed(matchers=[well_formed])  # type: ignore[arg-type]
    async def on_context_changed(body: dict[str, Any]) -> None:
        context = body["event"]["assistant_thread"].get("context")
        viewing = context.get("channel_id") if isinstance(context, dict) else None
        log.debug("assistant thread %s is now open beside %s", _thread(body), viewing)

    async def name_thread(body: dict[str, Any], context: AsyncBoltContext, next: Callable[[], Awaitable[Any]]) -> Any:
        """The first message of a thread started here names it (the message itself goes on to the door)."""
        event = body.get("event") if isinstance(body, dict) else None
        if isinstance(event, dict) and event.get("type") == "message" and not event.get("subtype"):
            channel, thread_ts = str(event.get("channel")), str(event.get("thread_ts"))
            if (channel, thread_ts) in untitled and not event.get("bot_id") and isinstance(event.get("text"), str):
                del untitled[(channel, thread_ts)]
                title = title_of(event["text"], context.bot_user_id)
                door.later(door.gateway.set_title(channel=channel, thread_ts=thread_ts, title=title))
        return await next()

    app.assistant(assistant)
    app.middleware(name_thread)
    return assistant
