"""Slash commands and the App Home tab in the sandbox.

- `Surfaces.command`: a person types a slash command. Slack POSTs it to the request URL, signed and form-encoded
  (`command`, `text`, `user_id`, `channel_id`, `team_id`, `response_url`, `trigger_id`, …; never the thread it was
  typed in), and expects an answer within 3 s. Sent through the Deliverer, so over Socket Mode too while that is on.
  The app's answer (its HTTP body) is shown to the person alone, and so is every POST to the command's
  `response_url`, which this sandbox serves (`POST /commands/response/{token}`); all of them are recorded.
- `views.publish` stores each person's Home tab (`publish_home`, every publish recorded); `open_home` delivers
  `app_home_opened`; `click_home` delivers `block_actions` from the Home tab, as Slack does (no response_url).
"""

from __future__ import annotations

import copy
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from bot.dev.sandbox import interactions
from bot.dev.sandbox.blocks import assign_ids, find_action, validate_view
from bot.dev.sandbox.delivery import DeliveryRecord, signed_headers
from bot.dev.sandbox.errors import SlackError
from bot.dev.sandbox.events import VERIFICATION_TOKEN
from bot.dev.sandbox.workspace import APP_ID, BOT_ID, BOT_USER_ID, TEAM_DOMAIN, TEAM_ID, Message, dm_id_for

if TYPE_CHECKING:
    from bot.dev.sandbox.core import SandboxCore

RESPONSE_USES = 5
RESPONSE_TTL = 30 * 60


@dataclass
class CommandUrl:
    """What a command's response_url answers to."""

    user: str
    channel: str
    command: str
    uses: int = 0
    last_ts: str | None = None
    created: float = field(default_factory=time.monotonic)


class Surfaces:
    """Slash commands and Home tabs: `core.surfaces`."""

    def __init__(self, core: SandboxCore) -> None:
        self.core = core
        self.homes: dict[str, dict[str, Any]] = {}
        self.publishes: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []
        self.urls: dict[str, CommandUrl] = {}
        self._views = 0

    def reset(self) -> None:
        self.homes.clear()
        self.publishes.clear()
        self.responses.clear()
        self.urls.clear()

    # ---- the Home tab ------------------------------------------------------------------------

    def publish_home(self, user_id: str, payload: Any) -> dict[str, Any]:
        """views.publish: the person's Home tab becomes `payload` (validated, ids filled in as Slack does)."""
        errors = validate_view(payload)
        if errors:
            raise SlackError("invalid_blocks", errors=errors, response_metadata={"messages": errors})
        if payload.get("type") != "home":
            raise SlackError("invalid_arguments", response_metadata={"messages": ["only a home view is published"]})
        user = self.core.user(user_id)
        self._views += 1
        current = self.homes.get(user.id)
        view_id = current["id"] if current else f"V0SBXHOME{self._views:04d}"
        view = copy.deepcopy(payload)
        view["blocks"] = assign_ids(payload.get("blocks") or [], seed=f"{view_id}:{self._views}")
        view.setdefault("private_metadata", "")
        view.setdefault("callback_id", "")
        view.setdefault("external_id", "")
        view.update(
            {
                "id": view_id,
                "team_id": TEAM_ID,
                "state": {"values": {}},
                "hash": f"{int(time.time())}.{self._views:08x}",
                "previous_view_id": None,
                "root_view_id": view_id,
                "app_id": APP_ID,
                "app_installed_team_id": TEAM_ID,
                "bot_id": BOT_ID,
            }
        )
        self.homes[user.id] = view
        self.publishes.append({"user": user.id, "view": copy.deepcopy(view), "at": time.time()})
        self.core.feed.publish({"type": "home", "user": user.id, "view": view})
        return copy.deepcopy(view)

    def open_home(self, user_id: str, tab: str = "home") -> str:
        """The person opens the app's Home (or Messages) tab: delivers `app_home_opened`; returns its event_id."""
        user = self.core.user(user_id)
        event: dict[str, Any] = {
            "type": "app_home_opened",
            "user": user.id,
            "channel": dm_id_for(user.id),
            "tab": tab,
            "event_ts": f"{time.time():.6f}",
        }
        if user.id in self.homes:
            event["view"] = copy.deepcopy(self.homes[user.id])
        return self.core.emit(event)

    async def click_home(
        self, user_id: str, action_id: str, value: Any = None, block_id: str | None = None
    ) -> dict[str, Any]:
        """A person clicks a button in their Home tab; waits for the app's HTTP answer."""
        user = self.core.user(user_id)
        view = self.homes.get(user.id)
        if view is None:
            raise SlackError("view_not_found", detail="the app never published this person's Home tab")
        found = find_action(view["blocks"], action_id, value=value, block_id=block_id)
        if found is None:
            raise SlackError("action_not_found", detail=f"no element with action_id {action_id!r} in the Home tab")
        return await self.deliver_home_click(user.id, view, *found, value=value)

    async def deliver_home_click(
        self, user_id: str, view: dict[str, Any], block: dict[str, Any], element: dict[str, Any], value: Any = None
    ) -> dict[str, Any]:
        """Deliver a click on `element` of a Home tab `view` exactly as given (a stale or forged one too)."""
        user = self.core.user(user_id)
        try:
            action = interactions.build_action(block, element, value=value)
        except ValueError as exc:
            raise SlackError("invalid_value", detail=str(exc)) from None
        trigger_id = self.core.modals.mint_trigger(user.id)
        payload = interactions.block_actions_from_view(
            user=user, view=copy.deepcopy(view), action=action, trigger_id=trigger_id
        )
        result = await self.core.deliverer.send_interaction(payload)
        return self.core._result(result, trigger_id=trigger_id, view_id=view["id"])

    # ---- slash commands ----------------------------------------------------------------------

    async def command(self, user_id: str, channel_ref: str, text: str = "", command: str = "/agent") -> dict[str, Any]:
        """A person types `command text` in a channel: delivers the slash command, shows the app's answer to them
        alone; returns ``{ok, status, response_url, trigger_id, answer}`` (`answer`: the app's body, parsed)."""
        user = self.core.user(user_id)
        channel = self.core.channel(channel_ref)
        if user.id not in channel.members:
            raise SlackError("not_in_channel")
        token = secrets.token_urlsafe(12)
        self.urls[token] = CommandUrl(user=user.id, channel=channel.id, command=command)
        response_url = f"{self.core.base_url}/commands/response/{token}"
        trigger_id = self.core.modals.mint_trigger(user.id)
        form = {
            "token": VERIFICATION_TOKEN,
            "team_id": TEAM_ID,
            "team_domain": TEAM_DOMAIN,
            "channel_id": channel.id,
            "channel_name": channel.name if not channel.is_im else "directmessage",
            "user_id": user.id,
            "user_name": user.name,
            "command": command,
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id,
        }
        body = urlencode(form)
        deliverer = self.core.deliverer
        record = DeliveryRecord(
            kind="command", type="slash_command", event_id=None, state="sending", channel=channel.id, user=user.id
        )
        deliverer.log.append(record)
        result = await deliverer.post(
            body, signed_headers(deliverer.signing_secret, body, "application/x-www-form-urlencoded")
        )
        record.finish(result)
        answer = _answer(result.body) if result.ok else None
        if answer:
            self.responses.append(
                {"via": "ack", "user": user.id, "channel": channel.id, "command": command, "body": answer}
            )
            self._show(self.urls[token], answer)
        return self.core._result(result, response_url=response_url, trigger_id=trigger_id, answer=answer)

    def respond(self, token: str, body: dict[str, Any]) -> None:
        """A POST to a command's response_url: shown to the person alone (or in the channel with `in_channel`)."""
        target = self.urls.get(token)
        if target is None or time.monotonic() - target.created > RESPONSE_TTL:
            raise SlackError("expired_url")
        if target.uses >= RESPONSE_USES:
            raise SlackError("used_url")
        target.uses += 1
        self.responses.append(
            {
                "via": "response_url",
                "user": target.user,
                "channel": target.channel,
                "command": target.command,
                "body": body,
            }
        )
        self._show(target, body)

    def _show(self, target: CommandUrl, body: dict[str, Any]) -> None:
        channel = self.core.channel(target.channel)
        text, blocks = body.get("text"), body.get("blocks")
        checked = self.core.check_content(text, blocks, body.get("attachments"))
        if body.get("response_type") == "in_channel":
            self.core.post_as_bot(channel, text=text, blocks=blocks, attachments=body.get("attachments"))
            return
        if body.get("delete_original") or body.get("replace_original"):
            if target.last_ts is not None:
                self.core.workspace.delete_ephemeral(channel.id, target.last_ts)
            if body.get("delete_original"):
                target.last_ts = None
                return
        ts = self.core.workspace.clock.next()
        message = Message(
            ts=ts,
            channel=channel.id,
            text=text or "",
            user=BOT_USER_ID,
            bot_id=BOT_ID,
            blocks=assign_ids(checked, seed=ts) if checked is not None else None,
            attachments=body.get("attachments"),
        )
        # A command's answers reach the person in any channel they typed it in, member or not, like Slack's.
        self.core.workspace.add_ephemeral(message, target.user)
        target.last_ts = ts
        self.core._changed(message)


def _answer(raw: bytes) -> dict[str, Any] | None:
    """The app's immediate answer to a command: JSON (text/blocks/response_type) or plain text; None if empty."""
    text = raw.decode("utf-8", "replace").strip()
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return {"text": text}
    return data if isinstance(data, dict) and (data.get("text") or data.get("blocks")) else None
