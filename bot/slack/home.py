"""App Home and the `/agent` command: thin, ack-first listeners (the rules of bot.slack.listeners apply).

- `app_home_opened` (the Home tab) arms the person's App Home row in the outbox and sends it: the projector
  renders it from the inbox (bot.flow.inbox) and publishes it; decisions arm it again, so it follows them.
- A button in App Home (`lgslack.home:<action>`) goes through the same Decisions path as in the thread, checked
  against the viewer's inbox instead of the request's message (`FromHome`); a refusal is shown at the top of the
  tab. A modal it opens is submitted through the usual listener.
- `/agent help | pending | cancel [link to a thread]`: acked at once; the answer goes to the person alone through
  the command's response_url. Slack sends a command with its channel but not the thread it was typed in, so
  `cancel` lists the person's open requests in that channel with a Cancel button each, or cancels those of the
  thread whose link follows it.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from bot import text as t
from bot.blocks import parse_action_value
from bot.flow import inbox as ib
from bot.flow.decisions import FromCommand, FromHome
from bot.interrupts import escalation as esc
from bot.records.outbox import home_key
from bot.types import Accepted, OpenModal, Refused, SlackMessage

if TYPE_CHECKING:
    from bot.flow.inbox import Inbox
    from bot.slack.listeners import Door

log = logging.getLogger(__name__)
_ID = re.compile(r"[A-Z0-9]{2,40}")


def _id(value: Any) -> str | None:
    return value if isinstance(value, str) and _ID.fullmatch(value) else None


def _text(value: Any) -> str:
    return str(value or "").replace("\x00", "")


def _user(body: dict[str, Any]) -> str | None:
    user = body.get("user")
    return _id(user.get("id")) if isinstance(user, dict) else None


def _value(body: dict[str, Any]) -> str | None:
    actions = body.get("actions")
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
        return None
    value = actions[0].get("value")
    return _text(value) if isinstance(value, str) else None


def _url(value: Any) -> str | None:
    return value if isinstance(value, str) and value.startswith(("https://", "http://")) else None


def _from_home(body: dict[str, Any]) -> bool:
    view, container = body.get("view"), body.get("container")
    return (
        isinstance(view, dict)
        and view.get("type") == "home"
        and isinstance(container, dict)
        and container.get("type") == "view"
    )


def help_message(command: str, unknown: str | None = None) -> SlackMessage:
    name = t.escape(command)
    lines = [
        f"I don't know `{t.escape(t.shorten(unknown, 40))}`. Here is what I do." if unknown else "",
        "*The agent in Slack.* Mention the app in a channel, or message it directly: it answers in the thread. "
        "When it needs a person (an approval, an answer) it asks in the thread with buttons, and the people "
        "named as approvers decide.",
        f"• `{name} pending`: what waits for you, and your requests waiting on others, with links to them.",
        f"• `{name} cancel`: your open requests in this channel, each with a Cancel button. "
        f"`{name} cancel <link>` cancels yours in the thread of that link (*Copy link* on any of its messages): "
        "Slack doesn't tell the app which thread a command was typed in.",
        f"• `{name} help`: this.",
        "The app's *Home* tab lists what waits for you, with the same buttons as in the threads.",
    ]
    text = "\n".join(line for line in lines if line)
    return SlackMessage(text=text, blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": text}}])


def register(app: AsyncApp, door: Door) -> None:
    """Attach the App Home and `/agent` listeners (registered before the others: they match only their own)."""
    inbox = door.projector.inbox
    if inbox is None:
        log.warning("no inbox: App Home and /agent are off")
        return
    found: Inbox = inbox

    async def publish_notice(team_id: str, user: str, notice: str) -> None:
        await door.gateway.publish_home(user=user, view=await found.home(team_id, user, notice=notice))

    async def respond(url: str | None, message: SlackMessage, *, replace: bool = False) -> None:
        if url:
            await door.gateway.respond(url, message, replace=replace)

    @app.event("app_home_opened")
    async def on_home_opened(event: dict[str, Any], context: AsyncBoltContext) -> None:
        user = _id(event.get("user"))
        if event.get("tab") != "home" or not user:
            return
        key = home_key(_id(context.team_id) or "", user)
        async with door.store.transaction() as conn:
            await door.projector.outbox.arm_home(conn, key)
        door.later(door.projector.project(keys=[key]))

    @app.action(re.compile(rf"^{re.escape(ib.HOME_ACTION)}:"))
    async def on_home_click(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        user, value = _user(body), _value(body)
        if not user or value is None or not _from_home(body):
            log.warning("ignored an App Home click without a user, a value or its home view")
            await ack()
            return
        record_id, action = parse_action_value(value)
        where = FromHome(channel_id=None, message_ts=None, user_id=user)
        result = await door.decisions.click(record_id, action, user_id=user, where=where)
        await ack()
        if isinstance(result, OpenModal):
            trigger_id = body.get("trigger_id")
            # Its private_metadata names only the request: its submission is checked by the policy, as a click.
            if isinstance(trigger_id, str):
                door.later(door.gateway.open_view(trigger_id=trigger_id, view=result.view))
        elif isinstance(result, Refused):
            door.later(publish_notice(_id(context.team_id) or "", user, result.text))
        elif result.keys:
            door.later(door.projector.project(keys=list(result.keys)))

    @app.action(ib.WITHDRAW_ACTION)
    async def on_withdraw(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        user, value = _user(body), _value(body)
        channel = body.get("channel")
        channel_id = _id(channel.get("id")) if isinstance(channel, dict) else None
        if not user or value is None:
            await ack()
            return
        record_id, action = parse_action_value(value)
        if action != esc.CANCEL:
            await ack()
            return
        result = await door.decisions.cancel(record_id, user_id=user, where=FromCommand(None, None, user_id=user))
        await ack()
        url = _url(body.get("response_url"))
        if isinstance(result, Refused):
            door.later(respond(url, SlackMessage(text=result.text)))
            return
        door.later(withdrawn(result, _id(context.team_id) or "", user, channel_id, url))

    async def withdrawn(result: Accepted, team_id: str, user: str, channel_id: str | None, url: str | None) -> None:
        await door.projector.project(keys=list(result.keys))
        if channel_id:
            listed = await found.withdraw_list(team_id, user, channel_id, notice="Cancelled: the agent goes on.")
            await respond(url, listed, replace=True)

    @app.command(re.compile(r"^/"))
    async def on_command(ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext) -> None:
        user, channel_id = _id(command.get("user_id")), _id(command.get("channel_id"))
        name = _text(command.get("command")) or "/agent"
        word, _, rest = _text(command.get("text")).strip().partition(" ")
        word = word.lower()
        if not user or not channel_id or word not in ("pending", "cancel"):
            shown = help_message(name, unknown=word if word not in ("", "help") else None)
            await ack(text=shown.text, blocks=shown.blocks, response_type="ephemeral")
            return
        await ack()
        team_id, url = _id(context.team_id) or _id(command.get("team_id")) or "", _url(command.get("response_url"))
        if word == "pending":
            door.later(pending(team_id, user, url))
        elif rest.strip():
            door.later(cancel_linked(team_id, user, rest.strip(), url))
        else:
            door.later(cancel_list(team_id, user, channel_id, url))

    async def pending(team_id: str, user: str, url: str | None) -> None:
        await respond(url, await found.pending(team_id, user))

    async def cancel_list(team_id: str, user: str, channel_id: str, url: str | None) -> None:
        await respond(url, await found.withdraw_list(team_id, user, channel_id))

    async def cancel_linked(team_id: str, user: str, argument: str, url: str | None) -> None:
        link = ib.parse_permalink(argument)
        if link is None:
            text = "That isn't a link to a message: use *Copy link* on a message of the thread, then paste it."
            await respond(url, SlackMessage(text=text))
            return
        records = await found.in_thread(team_id, *link)
        if not records:
            await respond(url, SlackMessage(text="Nothing is waiting in that thread."))
            return
        keys: list[str] = []
        lines: list[str] = []
        cancelled = 0
        for record in records:
            where = FromCommand(None, None, user_id=user)
            result = await door.decisions.cancel(record.id, user_id=user, where=where)
            if isinstance(result, Accepted):
                cancelled += 1
                keys += result.keys
            elif result.text not in lines:
                lines.append(result.text)
        if cancelled:
            lines.insert(0, f"Cancelled {cancelled} request{'s' if cancelled != 1 else ''} in that thread.")
            await door.projector.project(keys=list(dict.fromkeys(keys)))
        await respond(url, SlackMessage(text="\n".join(lines)))
