"""Pure rendering of what the agent says: replies, finished results and failures, as Slack messages."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from langchain_core.messages import BaseMessage

from bot import text as t
from bot.types import SlackMessage

SECTIONS_PER_MESSAGE = 10
NOTIFICATION_TEXT = 300


def render_reply(markdown: str) -> list[SlackMessage]:
    """A model reply as one or more messages of mrkdwn sections; long text is split, nothing is dropped."""
    sections = t.split(t.to_mrkdwn(markdown))
    messages = []
    for start in range(0, len(sections), SECTIONS_PER_MESSAGE):
        chunk = sections[start : start + SECTIONS_PER_MESSAGE]
        blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": piece}} for piece in chunk if piece]
        messages.append(SlackMessage(text=t.shorten(chunk[0], NOTIFICATION_TEXT), blocks=blocks))
    return messages


def describe_result(value: Any) -> str:
    """A finished run's output as readable Markdown: text as is, one field by its value, more as a list."""
    if isinstance(value, BaseMessage):
        return value.text if isinstance(value.text, str) else str(value.text)
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        if len(value) == 1:
            (only,) = value.values()
            if isinstance(only, str | int | float):
                return str(only)
        return "\n".join(f"**{key}**: {_inline(item)}" for key, item in value.items())
    return _inline(value)


def _inline(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, BaseMessage):
        return str(value.text)
    return "```" + json.dumps(value, ensure_ascii=False, indent=2, default=str) + "```"


def render_result(value: Any) -> list[SlackMessage]:
    return render_reply(describe_result(value) or "(the graph finished with no output)")


def render_failure(error: BaseException) -> SlackMessage:
    detail = t.escape(t.shorten(f"{type(error).__name__}: {error}", 500))
    return SlackMessage(
        text="The agent hit an error and stopped.",
        blocks=[
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f":warning: The agent hit an error and stopped.\n`{detail}`"},
            },
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": "Reply in this thread to try again. The details are in the bot's log."}
                ],
            },
        ],
    )


def render_notice(mrkdwn: str) -> SlackMessage:
    return SlackMessage(text=mrkdwn, blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn}}])
