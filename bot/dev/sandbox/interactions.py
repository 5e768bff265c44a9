"""Pure builders for interactivity payloads: block_actions, view_submission, view_closed."""

from __future__ import annotations

import json
import time
from typing import Any

from bot.dev.sandbox.blocks import (
    all_options,
    is_empty_state,
    pick_option,
    stateful_elements,
    typed_state_value,
)
from bot.dev.sandbox.events import VERIFICATION_TOKEN
from bot.dev.sandbox.workspace import APP_ID, TEAM_DOMAIN, TEAM_ID, TEAM_OF, Channel, Message, User

INPUT_FOR_ACTION = frozenset(
    {
        "multi_static_select",
        "checkboxes",
        "users_select",
        "multi_users_select",
        "conversations_select",
        "multi_conversations_select",
        "channels_select",
        "multi_channels_select",
        "datepicker",
        "timepicker",
        "datetimepicker",
        "plain_text_input",
        "number_input",
    }
)


def action_ts() -> str:
    """An `action_ts` value (epoch seconds with microseconds)."""
    return f"{time.time():.6f}"


def user_ref(user: User) -> dict[str, Any]:
    """The `user` object in interaction payloads."""
    return {"id": user.id, "username": user.name, "name": user.name, "team_id": TEAM_OF.get(user.id, TEAM_ID)}


def _base(kind: str, user: User) -> dict[str, Any]:
    return {
        "type": kind,
        "user": user_ref(user),
        "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "team": {"id": TEAM_OF.get(user.id, TEAM_ID), "domain": TEAM_DOMAIN},
        "enterprise": None,
        "is_enterprise_install": False,
    }


def build_action(block: dict[str, Any], element: dict[str, Any], value: Any = None) -> dict[str, Any]:
    """The `actions[0]` entry for a person clicking/choosing in `element` (value picks an option)."""
    kind = element.get("type")
    action: dict[str, Any] = {"action_id": element.get("action_id"), "block_id": block.get("block_id"), "type": kind}
    if kind == "button":
        action["text"] = element.get("text")
        if "value" in element:
            action["value"] = element["value"]
        if "style" in element:
            action["style"] = element["style"]
        if "url" in element:
            action["url"] = element["url"]
    elif kind in ("overflow", "static_select", "external_select", "radio_buttons"):
        if value is None:
            options = all_options(element)
            if not options:
                raise ValueError(f"{kind} {element.get('action_id')!r} needs a value to choose")
            value = options[0].get("value")
        action["selected_option"] = pick_option(element, value)
    elif kind in INPUT_FOR_ACTION:
        state = typed_state_value(element, value)
        action.update({k: v for k, v in state.items() if k != "type"})
    elif value is not None:
        action["value"] = value
    action["action_ts"] = action_ts()
    return action


def initial_raw(element: dict[str, Any]) -> Any:
    """The value an input shows before the person touches it (its `initial_*` field)."""
    for key in (
        "initial_value",
        "initial_date",
        "initial_time",
        "initial_date_time",
        "initial_user",
        "initial_users",
        "initial_conversation",
        "initial_conversations",
        "initial_channel",
        "initial_channels",
    ):
        if key in element:
            return element[key]
    if "initial_option" in element:
        return element["initial_option"]
    if "initial_options" in element:
        return element["initial_options"]
    return None


def state_values(
    blocks: list[dict[str, Any]], entered: dict[str, Any] | None = None
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Typed `state.values` for a surface's inputs and the errors a person's client would show.

    `entered` maps block_id to ``{action_id: raw value}``, or to a bare raw value when the block has a
    single input. Untouched inputs report their initial value. Returns (values, required-field errors).
    """
    entered = dict(entered or {})
    values: dict[str, dict[str, Any]] = {}
    missing: dict[str, str] = {}
    known: set[str] = set()
    for block, element in stateful_elements(blocks):
        block_id, action_id = str(block.get("block_id")), str(element.get("action_id"))
        known.add(block_id)
        given = entered.get(block_id)
        if isinstance(given, dict) and not {"text", "value"} <= given.keys():
            raw = given.get(action_id)
        else:
            raw = given
        if raw is None:
            raw = initial_raw(element)
        state = typed_state_value(element, raw)
        values.setdefault(block_id, {})[action_id] = state
        if block.get("type") == "input" and not block.get("optional") and is_empty_state(state):
            missing[block_id] = "Please complete this required field."
    unknown = sorted(set(entered) - known)
    if unknown:
        raise ValueError(f"no input block(s) {', '.join(unknown)} in this view")
    return values, missing


def block_actions_from_message(
    *,
    user: User,
    channel: Channel,
    message: Message,
    action: dict[str, Any],
    trigger_id: str,
    response_url: str,
) -> dict[str, Any]:
    """A block_actions payload for a click in a message (ephemeral messages carry no `message`)."""
    payload = _base("block_actions", user)
    payload.update(
        {
            "container": {
                "type": "message",
                "message_ts": message.ts,
                "channel_id": channel.id,
                "is_ephemeral": message.is_ephemeral,
            },
            "trigger_id": trigger_id,
            "channel": {"id": channel.id, "name": channel.name if not channel.is_im else "directmessage"},
        }
    )
    if message.thread_ts and message.thread_ts != message.ts:
        payload["container"]["thread_ts"] = message.thread_ts
    if not message.is_ephemeral:
        payload["message"] = message.to_api()
    values, _ = state_values(message.blocks or [])
    payload["state"] = {"values": values}
    payload["response_url"] = response_url
    payload["actions"] = [action]
    return payload


def block_actions_from_view(
    *, user: User, view: dict[str, Any], action: dict[str, Any], trigger_id: str
) -> dict[str, Any]:
    """A block_actions payload for a click inside an open modal."""
    payload = _base("block_actions", user)
    payload.update(
        {
            "container": {"type": "view", "view_id": view["id"]},
            "trigger_id": trigger_id,
            "view": view,
            "actions": [action],
        }
    )
    return payload


def view_submission(*, user: User, view: dict[str, Any], trigger_id: str) -> dict[str, Any]:
    """A view_submission payload for `view` (whose `state.values` are already filled in)."""
    payload = _base("view_submission", user)
    payload.update({"trigger_id": trigger_id, "view": view, "response_urls": []})
    return payload


def view_closed(*, user: User, view: dict[str, Any], is_cleared: bool) -> dict[str, Any]:
    """A view_closed payload for a modal the person dismissed."""
    payload = _base("view_closed", user)
    payload.update({"view": view, "is_cleared": is_cleared})
    return payload


def parse_ack_body(body: bytes) -> dict[str, Any] | None:
    """The JSON object an app answered an interaction with, or None for an empty/non-JSON body."""
    text = body.decode("utf-8", "replace").strip()
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
