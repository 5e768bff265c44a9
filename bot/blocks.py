"""Small pure builders of Block Kit dicts."""

from __future__ import annotations

import json
from typing import Any

from bot import text as t

ACTION = "lgslack.act"
MODAL_CALLBACK = "lgslack.submit"
INPUT_LIMIT = 3000
"""The most a plain_text_input holds as its initial_value (and its max_length)."""
MESSAGE_BLOCKS = 50
MODAL_BLOCKS = 100

Block = dict[str, Any]


def plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def section(mrkdwn: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn}}


def context(mrkdwn: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn}]}


def dumped(value: Any) -> str:
    """A value as readable JSON (a string as it is)."""
    return value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False, default=str)


def code(value: Any, limit: int = t.SECTION_LIMIT - 8) -> str:
    """A value as one code block of at most `limit` characters inside its fences, shortened with "…" at a line or
    word break if need be (for a glance: `code_sections` keeps it whole)."""
    escaped = t.escape(dumped(value))
    if len(escaped) > limit:
        escaped = t.split(escaped, limit - 1)[0] + "…"
    return "```" + escaped + "```"


def code_sections(value: Any) -> list[str]:
    """A value as code blocks that each fit a section, split at line breaks: joined, they hold all of it."""
    return ["```" + piece + "```" for piece in t.split(t.escape(dumped(value)), t.SECTION_LIMIT - 6)]


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


def modal(record_id: str, action: str, title: str, blocks: list[Block], submit: str | None = "Send") -> dict[str, Any]:
    """A modal; without `submit` it only shows something (its one button says Close)."""
    view: dict[str, Any] = {
        "type": "modal",
        "callback_id": MODAL_CALLBACK,
        "private_metadata": action_value(record_id, action),
        "title": plain(t.shorten(title, 24)),
        "close": plain("Cancel" if submit else "Close"),
        "blocks": blocks[:MODAL_BLOCKS],
    }
    if submit:
        view["submit"] = plain(t.shorten(submit, 24))
    return view


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
    """One plain_text_input. An `initial` text over INPUT_LIMIT is refused by Slack: `text_fields` splits it."""
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": "value", "multiline": multiline}
    if initial:
        element["initial_value"] = initial
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


def part_id(block_id: str, number: int) -> str:
    """The block id of part `number` (from 1) of a text split over several fields."""
    return f"{block_id}#part{number}"


def text_fields(
    block_id: str,
    label: str,
    initial: str,
    *,
    room: int,
    too_long: str,
    multiline: bool = True,
    optional: bool = False,
    hint: str | None = None,
) -> list[Block]:
    """The field(s) holding `initial` whole, in at most `room` blocks.

    Text that fits one Slack field (3,000 characters) gets one field. Longer text is split at paragraph, line or
    word breaks over several fields ("part 1 of 3"…), after a note that says so: joined in order, the parts give
    back the text exactly. Each part is optional (the caller checks the joined text: `submitted_whole`). When even
    that needs more than `room` blocks, a note (`too_long`, mrkdwn) and no field.
    """
    if len(initial) <= INPUT_LIMIT:
        return [text_input(block_id, label, initial=initial, multiline=multiline, optional=optional, hint=hint)]
    parts = t.split(initial, INPUT_LIMIT)
    if len(parts) + 1 > room:
        return [
            section(f":warning: This text has {len(initial):,} characters, more than a form here can hold. {too_long}")
        ]
    note = context(
        f":scissors: This text has {len(initial):,} characters and a Slack field holds {INPUT_LIMIT:,}, so it is "
        f"split over {len(parts)} fields. Edit any of them: when you send, the parts are joined in order, "
        "exactly as they are (a part left empty adds nothing)."
    )
    fields = [
        text_input(
            part_id(block_id, number),
            f"{label} (part {number} of {len(parts)})",
            initial=part,
            multiline=True,
            optional=True,
            hint=hint if number == 1 else None,
        )
        for number, part in enumerate(parts, start=1)
    ]
    return [note, *fields]


def has_field(values: dict[str, Any], block_id: str) -> bool:
    """Whether the submitted form has the field, whole or split in parts."""
    return block_id in values or part_id(block_id, 1) in values


def field_id(values: dict[str, Any], block_id: str) -> str:
    """The block to show an error on: the field, or the first of its parts."""
    return block_id if block_id in values or part_id(block_id, 1) not in values else part_id(block_id, 1)


def submitted_whole(values: dict[str, Any], block_id: str, initial: str | None = None) -> str | None:
    """The text of a field as submitted, its parts joined in order; None when the field is empty or absent.

    A part whose text differs from the part shown only by whitespace at its ends is taken as shown, so a client
    that trims a field's ends can't change a text nobody edited.
    """
    if block_id in values:
        value = submitted(values, block_id).get("value")
        return None if value is None else str(value)
    shown = t.split(initial, INPUT_LIMIT) if initial and len(initial) > INPUT_LIMIT else []
    parts: list[str] = []
    number = 1
    while part_id(block_id, number) in values:
        raw = submitted(values, part_id(block_id, number)).get("value")
        text = "" if raw is None else str(raw)
        original = shown[number - 1] if number <= len(shown) else None
        if original is not None and text != original and text.strip() == original.strip():
            text = original
        parts.append(text)
        number += 1
    return "".join(parts) or None
