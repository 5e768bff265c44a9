"""Reading the sandbox the way a person reads Slack."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

Message = dict[str, Any]


def visible_text(message: Message) -> str:
    """The message's text and every text in its blocks, as one string."""
    parts = [message.get("text") or ""]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                parts.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(message.get("blocks") or [])
    return "\n".join(parts)


def buttons(message: Message) -> list[dict[str, Any]]:
    return [
        element
        for block in message.get("blocks") or []
        if block.get("type") == "actions"
        for element in block.get("elements", [])
        if element.get("type") == "button"
    ]


def from_bot(message: Message) -> bool:
    return message.get("bot_id") == "B0BOT" or message.get("user") == "U0BOT"


async def thread(slack: Any, channel: str, ts: str) -> list[Message]:
    return list(await slack.replies(channel, ts))


async def wait_for_message(
    slack: Any,
    channel: str,
    ts: str,
    predicate: Callable[[Message], bool],
    timeout: float = 20.0,  # noqa: ASYNC109
) -> Message:
    """The first bot message in the thread matching predicate, waiting for it to appear."""

    async def find() -> Message | None:
        for message in await thread(slack, channel, ts):
            if from_bot(message) and predicate(message):
                return message
        return None

    found: Message = await slack.wait_for(find, timeout=timeout)
    return found


def containing(text: str) -> Callable[[Message], bool]:
    return lambda message: text in visible_text(message)


def dump(messages: list[Message]) -> str:
    return json.dumps([visible_text(m) for m in messages], indent=1)


GENERAL = "C0GENERAL"
ANSWER_BUTTON = "lgslack.act:answer"


def typed_answer(text: str) -> dict[str, Any]:
    """What a person types into the answer field of a question's modal, for `SandboxClient.submit`."""
    return {"lgslack_answer": {"value": text}}
