"""Pure builders for Events API payloads: message events, app mentions, edits, deletions, reactions."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from bot.dev.sandbox.workspace import APP_ID, BOT_USER_ID, TEAM_ID, Channel, Message

VERIFICATION_TOKEN = "sandbox-verification"
_TOKEN = re.compile(r"<([@#!])([^>|]+)(?:\|([^>]*))?>|<(https?://[^>|]+)(?:\|([^>]*))?>")


def mentions_user(text: str, user_id: str = BOT_USER_ID) -> bool:
    """True if `text` contains a mention of `user_id` (``<@U0BOT>`` or ``<@U0BOT|agent>``)."""
    return re.search(rf"<@{re.escape(user_id)}(?:\|[^>]*)?>", text) is not None


def blocks_mention(blocks: Any, user_id: str = BOT_USER_ID) -> bool:
    """True if rich_text `blocks` hold a mention of `user_id` (a ``user`` element)."""
    if isinstance(blocks, dict):
        if blocks.get("type") == "user" and blocks.get("user_id") == user_id:
            return True
        return any(blocks_mention(v, user_id) for v in blocks.values() if isinstance(v, list | dict))
    return isinstance(blocks, list) and any(blocks_mention(v, user_id) for v in blocks)


def _rich_element(match: re.Match[str]) -> dict[str, Any]:
    sigil, ref, _label, url, url_label = match.groups()
    if url is not None:
        link: dict[str, Any] = {"type": "link", "url": url}
        if url_label:
            link["text"] = url_label
        return link
    if sigil == "@":
        return {"type": "user", "user_id": ref}
    if sigil == "#":
        return {"type": "channel", "channel_id": ref}
    if ref.startswith("subteam^"):
        return {"type": "usergroup", "usergroup_id": ref.split("^", 1)[1]}
    return {"type": "broadcast", "range": ref}


def rich_text_blocks(text: str, block_id: str = "sbx") -> list[dict[str, Any]]:
    """The rich_text block Slack's client attaches to a typed message, with mentions and links parsed."""
    elements: list[dict[str, Any]] = []
    pos = 0
    for match in _TOKEN.finditer(text):
        if match.start() > pos:
            elements.append({"type": "text", "text": text[pos : match.start()]})
        elements.append(_rich_element(match))
        pos = match.end()
    if pos < len(text):
        elements.append({"type": "text", "text": text[pos:]})
    return [
        {"type": "rich_text", "block_id": block_id, "elements": [{"type": "rich_text_section", "elements": elements}]}
    ]


def message_event(message: Message, channel: Channel) -> dict[str, Any]:
    """The `message` event for a newly posted message (by a person or the bot)."""
    event = message.to_api()
    for key in ("reply_count", "reply_users", "reply_users_count", "latest_reply", "is_locked", "subscribed"):
        event.pop(key, None)
    if not message.is_reply and "thread_ts" in event and message.subtype != "thread_broadcast":
        event.pop("thread_ts")
    event.update({"channel": message.channel, "event_ts": message.ts, "channel_type": channel.channel_type})
    return event


def app_mention_event(message: Message) -> dict[str, Any]:
    """The `app_mention` event for a person's message that mentions the bot."""
    event: dict[str, Any] = {
        "type": "app_mention",
        "user": message.user,
        "text": message.text,
        "ts": message.ts,
        "team": TEAM_ID,
        "channel": message.channel,
        "event_ts": message.ts,
    }
    if message.client_msg_id:
        event["client_msg_id"] = message.client_msg_id
    if message.blocks is not None:
        event["blocks"] = message.blocks
    if message.is_reply:
        event["thread_ts"] = message.thread_ts
        if message.parent_user_id:
            event["parent_user_id"] = message.parent_user_id
    return event


def message_changed_event(
    previous: dict[str, Any], current: Message, channel: Channel, event_ts: str
) -> dict[str, Any]:
    """The `message` event with subtype `message_changed` for an edit."""
    return {
        "type": "message",
        "subtype": "message_changed",
        "hidden": True,
        "message": current.to_api(),
        "previous_message": previous,
        "channel": current.channel,
        "ts": event_ts,
        "event_ts": event_ts,
        "channel_type": channel.channel_type,
    }


def message_deleted_event(previous: dict[str, Any], channel: Channel, event_ts: str) -> dict[str, Any]:
    """The `message` event with subtype `message_deleted`."""
    return {
        "type": "message",
        "subtype": "message_deleted",
        "hidden": True,
        "deleted_ts": previous["ts"],
        "previous_message": previous,
        "channel": channel.id,
        "ts": event_ts,
        "event_ts": event_ts,
        "channel_type": channel.channel_type,
    }


def reaction_event(kind: str, user: str, name: str, message: Message, event_ts: str) -> dict[str, Any]:
    """A `reaction_added` / `reaction_removed` event on a message."""
    event: dict[str, Any] = {
        "type": kind,
        "user": user,
        "reaction": name,
        "item": {"type": "message", "channel": message.channel, "ts": message.ts},
        "event_ts": event_ts,
    }
    author = message.user or message.bot_id
    if author:
        event["item_user"] = author
    return event


def event_context(event: dict[str, Any]) -> str:
    """An opaque `event_context` string in Slack's style."""
    raw = json.dumps({"et": event.get("type"), "tid": TEAM_ID, "aid": APP_ID, "cid": event.get("channel")})
    return "4-" + base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def envelope(event: dict[str, Any], event_id: str, event_time: int, team_id: str = TEAM_ID) -> dict[str, Any]:
    """Wrap an event in the `event_callback` envelope Slack POSTs to the request URL (for the team `team_id`)."""
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "context_team_id": team_id,
        "context_enterprise_id": None,
        "api_app_id": APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": event_time,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": BOT_USER_ID,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": event_context(event),
    }
