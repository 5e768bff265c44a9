"""Bolt listeners: thin. Verify (Bolt), parse, record durably, queue; answers are claimed atomically."""

from __future__ import annotations

import logging
import re
from typing import Any, TypedDict

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks import ACTION, MODAL_CALLBACK, parse_action_value
from bot.engine import Engine, Refused
from bot.renderers import OpenModal
from bot.text import from_slack

log = logging.getLogger(__name__)

# Message subtypes that are a person writing; every other subtype (edits, joins, bots) is ignored.
PERSON_SUBTYPES = (None, "file_share", "thread_broadcast")


class MessageEvent(TypedDict, total=False):
    type: str
    subtype: str
    channel: str
    channel_type: str
    user: str
    bot_id: str
    text: str
    ts: str
    thread_ts: str
    team: str


def register(app: AsyncApp, engine: Engine) -> None:
    """Attach the listeners of the front door to a Bolt app."""
    store = engine.store

    async def intake(event: MessageEvent, context: AsyncBoltContext, *, mentioned: bool) -> None:
        if event.get("subtype") not in PERSON_SUBTYPES or event.get("bot_id") or not event.get("user"):
            return
        bot_user_id = context.bot_user_id
        raw = event.get("text", "")
        mentioned = mentioned or bool(bot_user_id and f"<@{bot_user_id}>" in raw)
        team_id = context.team_id or event.get("team", "")
        channel_id, ts = event["channel"], event["ts"]
        thread_ts = event.get("thread_ts") or ts
        is_dm = event.get("channel_type") == "im"
        conversation = await store.find_conversation(team_id=team_id, channel_id=channel_id, thread_ts=thread_ts)
        record_id = None
        if conversation is None and event.get("thread_ts"):
            escalated = await store.find_posted(channel_id=channel_id, message_ts=thread_ts)
            if escalated is not None:
                conversation = await store.get_conversation(escalated.conversation_id)
                record_id = escalated.id
        if conversation is None:
            if not (mentioned or is_dm):
                return
            graph = await store.channel_graph(team_id=team_id, channel_id=channel_id)
            conversation = await store.save_conversation(
                team_id=team_id,
                channel_id=channel_id,
                thread_ts=thread_ts,
                graph=graph or engine.runners.default,
                started_by=event["user"],
            )
        text = from_slack(raw, bot_user_id)
        if not await store.record_inbound(
            conversation=conversation,
            channel_id=channel_id,
            ts=ts,
            user_id=event["user"],
            text=text,
            record_id=record_id,
        ):
            log.debug("message %s/%s was delivered before; one turn only", channel_id, ts)
            return
        try:
            await engine.jobs.defer_turn(conversation.id, team_id=team_id, channel_id=channel_id, ts=ts)
        except Exception:
            # Let Slack retry the delivery: forget the message so the retry is not taken for a duplicate.
            await store.forget_inbound(team_id=team_id, channel_id=channel_id, ts=ts)
            raise

    @app.event("app_mention")
    async def on_mention(event: MessageEvent, context: AsyncBoltContext) -> None:
        await intake(event, context, mentioned=True)

    @app.event("message")
    async def on_message(event: MessageEvent, context: AsyncBoltContext) -> None:
        await intake(event, context, mentioned=False)

    async def tell(client: AsyncWebClient, body: dict[str, Any], text: str) -> None:
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        if not channel:
            return
        message = body.get("message") or {}
        await client.chat_postEphemeral(
            channel=channel, user=body["user"]["id"], text=text, thread_ts=message.get("thread_ts")
        )

    @app.action(re.compile(rf"^{re.escape(ACTION)}:"))
    async def on_click(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        record_id, action = parse_action_value(str(body["actions"][0].get("value", "")))
        result = await engine.click(record_id, action, user_id=body["user"]["id"])
        if isinstance(result, OpenModal):
            await client.views_open(trigger_id=body["trigger_id"], view=result.view)
        elif isinstance(result, Refused):
            await tell(client, body, result.text)

    @app.view(MODAL_CALLBACK)
    async def on_submit(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        record_id, action = parse_action_value(str(view.get("private_metadata", "")))
        result = await engine.submit(record_id, action, view["state"]["values"], user_id=body["user"]["id"])
        if isinstance(result, dict):
            await ack(response_action="errors", errors=result)
        elif isinstance(result, Refused):
            first_input = next((blk["block_id"] for blk in view.get("blocks", []) if blk.get("type") == "input"), None)
            if first_input:
                await ack(response_action="errors", errors={first_input: result.plain})
            else:
                await ack()
        else:
            await ack()

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        log.error("listener failed on a %s request", body.get("type") or "Slack", exc_info=error)
