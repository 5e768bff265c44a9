"""Small pure builders of Block Kit dicts."""

from __future__ import annotations

import json
from typing import Any

from bot import text as t

ACTION = "lgslack.act"
MODAL_CALLBACK = "lgslack.submit"

Block = dict[str, Any]


def plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def section(mrkdwn: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn}}


def context(mrkdwn: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn}]}


def code(value: Any, limit: int = t.SECTION_LIMIT - 8) -> str:
    dumped = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return "```" + t.escape(t.shorten(dumped, limit)) + "```"


def action_value(record_id: str, action: str) -> str:
    """A button's value: only ids (Slack caps values at 2,000 characters); the rest is in the database."""
    return f"{record_id}|{action}"


def parse_action_value(value: str) -> tuple[str, str]:
    record_id, _, action = value.partition("|")
    return record_id, action


def button(label: str, record_id: str, action: str, style: str | None = None) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "button",
        "action_id": f"{ACTION}:{action}",
        "text": plain(t.shorten(label, 75)),
        "value": action_value(record_id, action),
    }
    if style:
        element["style"] = style
    return element


def actions(block_id: str, elements: list[dict[str, Any]]) -> Block:
    return {"type": "actions", "block_id": block_id, "elements": elements[:25]}


def modal(record_id: str, action: str, title: str, blocks: list[Block], submit: str = "Send") -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": MODAL_CALLBACK,
        "private_metadata": action_value(record_id, action),
        "title": plain(t.shorten(title, 24)),
        "submit": plain(submit),
        "close": plain("Cancel"),
        "blocks": blocks[:100],
    }


def text_input(
    block_id: str,
    label: str,
    *,
    initial: str | None = None,
    multiline: bool = True,
    optional: bool = False,
    hint: str | None = None,
    placeholder: str | None = None,
) -> Block:
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": "value", "multiline": multiline}
    if initial:
        element["initial_value"] = initial[:3000]
    if placeholder:
        element["placeholder"] = plain(t.shorten(placeholder, 150))
    block: Block = {
        "type": "input",
        "block_id": block_id,
        "label": plain(t.shorten(label, 2000)),
        "element": element,
        "optional": optional,
    }
    if hint:
        block["hint"] = plain(t.shorten(hint, 2000))
    return block


def submitted(values: dict[str, Any], block_id: str) -> dict[str, Any]:
    """The state of the one element of an input block in a view_submission."""
    element = values.get(block_id)
    first = next(iter(element.values()), None) if isinstance(element, dict) else None
    return first if isinstance(first, dict) else {}


def submitted_text(values: dict[str, Any], block_id: str) -> str:
    return str(submitted(values, block_id).get("value") or "")
