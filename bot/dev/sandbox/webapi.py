"""The Slack Web API (``/api/<method>``) on top of `SandboxCore`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from bot.dev.sandbox.core import ApiCall, SandboxCore
from bot.dev.sandbox.errors import SlackError
from bot.dev.sandbox.faults import Fault, drop_connection, refusal
from bot.dev.sandbox.oauth import TEAM_NAMES, calling_team
from bot.dev.sandbox.workspace import BOT_ID, BOT_NAME, BOT_USER_ID, TEAM_NAME, Message

FORMAT_ERRORS = frozenset({"blocks", "metadata"})
JSON_FIELDS = frozenset({"blocks", "attachments", "view", "metadata", "prompts", "chunks", "loading_messages"})

Handler = Callable[[SandboxCore, "Params"], dict[str, Any]]
METHODS: dict[str, Handler] = {}


def method(name: str) -> Callable[[Handler], Handler]:
    """Register a Web API method handler."""

    def register(fn: Handler) -> Handler:
        METHODS[name] = fn
        return fn

    return register


class Params:
    """A Web API call's arguments, merged from query string and JSON/form body."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def get(self, key: str) -> Any:
        """The raw argument (JSON-decoded for Block Kit fields sent as form strings)."""
        value = self.data.get(key)
        if key in JSON_FIELDS and isinstance(value, str):
            if not value.strip():
                return None
            try:
                return json.loads(value)
            except ValueError:
                raise SlackError(f"invalid_{key}_format" if key in FORMAT_ERRORS else "invalid_arguments") from None
        return value

    def text(self, key: str, error: str | None = None) -> str | None:
        """A string argument; raises `error` (e.g. ``channel_not_found``) when missing."""
        value = self.data.get(key)
        if value is None or value == "":
            if error:
                raise SlackError(error)
            return None
        return str(value)

    def flag(self, key: str) -> bool:
        """A boolean argument (accepts true/false/1/0)."""
        value = self.data.get(key)
        if isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes")
        return bool(value)

    def number(self, key: str, default: int) -> int:
        """An integer argument."""
        value = self.data.get(key)
        try:
            return int(value) if value not in (None, "") else default
        except (TypeError, ValueError):
            raise SlackError("invalid_arguments") from None


async def read_params(request: web.Request) -> dict[str, Any]:
    """Merge the query string with a JSON or form-encoded body."""
    params: dict[str, Any] = dict(request.query)
    if request.method != "POST" or not request.can_read_body:
        return params
    if request.content_type == "application/json":
        raw = await request.read()
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError:
                raise SlackError("invalid_json") from None
            if not isinstance(body, dict):
                raise SlackError("invalid_json")
            params.update(body)
    else:
        form = await request.post()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    return params


def _token(request: web.Request, params: dict[str, Any]) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    token = params.get("token")
    return str(token) if token else None


def _paginate(items: list[Any], limit: int, cursor: str | None) -> tuple[list[Any], str]:
    start = 0
    if cursor:
        try:
            start = int(cursor.removeprefix("offset:"))
        except ValueError:
            raise SlackError("invalid_cursor") from None
    end = start + max(limit, 1)
    return items[start:end], (f"offset:{end}" if end < len(items) else "")


def _in_range(ts: str, p: Params) -> bool:
    oldest, latest = p.text("oldest"), p.text("latest")
    inclusive = p.flag("inclusive")
    value = float(ts)
    if oldest and (value < float(oldest) or (value == float(oldest) and not inclusive)):
        return False
    return not (latest and (value > float(latest) or (value == float(latest) and not inclusive)))


def _metadata(p: Params) -> dict[str, Any] | None:
    """The ``metadata`` argument, checked like Slack: ``{"event_type": str, "event_payload": {...}}``."""
    metadata = p.get("metadata")
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise SlackError("invalid_metadata_format")
    if not metadata.get("event_type") or not isinstance(metadata["event_type"], str):
        raise SlackError("invalid_metadata_schema")
    if not isinstance(metadata.get("event_payload"), dict):
        raise SlackError("invalid_metadata_schema")
    return metadata


def _listed(message: Message, p: Params) -> dict[str, Any]:
    """A message as history/replies list it: `metadata` only with ``include_all_metadata``."""
    data = message.to_api()
    if not p.flag("include_all_metadata"):
        data.pop("metadata", None)
    return data


class WebApi:
    """aiohttp handler for ``/api/{method}``: auth, injected faults, dispatch, call log."""

    def __init__(self, core: SandboxCore) -> None:
        self.core = core

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Serve one Web API call: HTTP 200 with ok/error, unless a fault (`bot.dev.sandbox.faults`) hits it."""
        name = request.match_info["method"]
        params: dict[str, Any] = {}
        fault: Fault | None = None
        team: str | None = None
        try:
            params = await read_params(request)
            token = _token(request, params)
            params.pop("token", None)
            if name == "oauth.v2.access":  # authenticated by the app's client id and secret
                body = {"ok": True, **self.core.oauth.access(request, params)}
                self.core.call_log.append(_log_entry(name, {}, {"ok": True}, 200, None))
                return web.json_response(body)
            if name not in METHODS:
                raise SlackError("unknown_method")
            if not token:
                raise SlackError("not_authed")
            team = self.core.oauth.team_of_token(token)
            if team is None:
                raise SlackError("invalid_auth")
            calling_team.set(team)
            self.core.oauth.check(team, params)
            fault = self.core.faults.take(name)
            if fault is not None and not fault.after_store:
                response, logged = refusal(fault)
                self.core.call_log.append(_log_entry(name, params, logged, response.status, fault))
                return response
            body = {"ok": True, **METHODS[name](self.core, Params(params))}
        except SlackError as exc:
            body = exc.to_response()
        entry = _log_entry(name, params, body, 200, fault)
        entry.team = team
        self.core.call_log.append(entry)
        if fault is not None:
            answered = fault.kind == "timeout_after_store" and await self.core.faults.hold(fault.delay)
            if not answered:
                entry.status = None
                drop_connection(request)
        return web.json_response(body)


def _log_entry(name: str, params: dict[str, Any], body: dict[str, Any], status: int, fault: Fault | None) -> ApiCall:
    decoded = dict(params)
    for key in JSON_FIELDS & decoded.keys():
        if isinstance(decoded[key], str):
            try:
                decoded[key] = json.loads(decoded[key])
            except ValueError:
                pass
    return ApiCall(method=name, params=decoded, response=body, status=status, fault=fault.kind if fault else None)


# ---- auth / users / groups --------------------------------------------------------------------


@method("api.test")
def _api_test(core: SandboxCore, p: Params) -> dict[str, Any]:
    return {"args": {k: v for k, v in p.data.items()}}


@method("auth.test")
def _auth_test(core: SandboxCore, p: Params) -> dict[str, Any]:
    team = calling_team.get()
    return {
        "url": f"{core.base_url}/",
        "team": TEAM_NAMES.get(team, TEAM_NAME),
        "user": BOT_NAME,
        "team_id": team,
        "user_id": BOT_USER_ID,
        "bot_id": BOT_ID,
        "is_enterprise_install": False,
    }


@method("users.info")
def _users_info(core: SandboxCore, p: Params) -> dict[str, Any]:
    return {"user": core.user(p.text("user", "user_not_found")).to_api()}


@method("users.list")
def _users_list(core: SandboxCore, p: Params) -> dict[str, Any]:
    users = [u.to_api() for u in core.workspace.users.values()]
    page, cursor = _paginate(users, p.number("limit", 1000), p.text("cursor"))
    return {"members": page, "response_metadata": {"next_cursor": cursor}}


@method("usergroups.list")
def _usergroups_list(core: SandboxCore, p: Params) -> dict[str, Any]:
    groups = [g.to_api() for g in core.workspace.usergroups.values()]
    if not p.flag("include_users"):
        for group in groups:
            group.pop("users")
    return {"usergroups": groups}


@method("usergroups.users.list")
def _usergroups_users_list(core: SandboxCore, p: Params) -> dict[str, Any]:
    group = core.workspace.usergroups.get(p.text("usergroup", "no_such_subteam") or "")
    if group is None:
        raise SlackError("no_such_subteam")
    return {"users": list(group.users)}


# ---- conversations ----------------------------------------------------------------------------


@method("conversations.info")
def _conversations_info(core: SandboxCore, p: Params) -> dict[str, Any]:
    return {"channel": core.channel(p.text("channel", "channel_not_found")).to_api()}


@method("conversations.list")
def _conversations_list(core: SandboxCore, p: Params) -> dict[str, Any]:
    wanted = set((p.text("types") or "public_channel").split(","))
    channels = []
    for channel in core.workspace.channels.values():
        kind = "im" if channel.is_im else ("private_channel" if channel.is_private else "public_channel")
        if kind in wanted:
            channels.append(channel.to_api())
    page, cursor = _paginate(channels, p.number("limit", 100), p.text("cursor"))
    return {"channels": page, "response_metadata": {"next_cursor": cursor}}


@method("conversations.members")
def _conversations_members(core: SandboxCore, p: Params) -> dict[str, Any]:
    channel = core.channel(p.text("channel", "channel_not_found"))
    page, cursor = _paginate(sorted(channel.members), p.number("limit", 100), p.text("cursor"))
    return {"members": page, "response_metadata": {"next_cursor": cursor}}


@method("conversations.open")
def _conversations_open(core: SandboxCore, p: Params) -> dict[str, Any]:
    if p.text("channel"):
        return {"channel": {"id": core.channel(p.text("channel")).id}}
    users = [u for u in (p.text("users", "users_list_not_supplied") or "").split(",") if u]
    if len(users) != 1:
        raise SlackError("not_supported", detail="the sandbox only opens 1:1 DMs")
    core.user(users[0])
    channel = core.workspace.open_dm(users[0])
    return {"no_op": True, "already_open": True, "channel": {"id": channel.id}}


@method("conversations.history")
def _conversations_history(core: SandboxCore, p: Params) -> dict[str, Any]:
    channel = core.channel(p.text("channel", "channel_not_found"))
    messages = [_listed(m, p) for m in reversed(core.workspace.history(channel.id)) if _in_range(m.ts, p)]
    page, cursor = _paginate(messages, p.number("limit", 100), p.text("cursor"))
    return {
        "messages": page,
        "has_more": bool(cursor),
        "pin_count": 0,
        "channel_actions_ts": None,
        "channel_actions_count": 0,
        "response_metadata": {"next_cursor": cursor},
    }


@method("conversations.replies")
def _conversations_replies(core: SandboxCore, p: Params) -> dict[str, Any]:
    channel = core.channel(p.text("channel", "channel_not_found"))
    thread = core.workspace.thread(channel.id, p.text("ts", "thread_not_found") or "")
    if not thread:
        raise SlackError("thread_not_found")
    messages = [_listed(m, p) for m in thread if _in_range(m.ts, p) or m.ts == thread[0].ts]
    page, cursor = _paginate(messages, p.number("limit", 1000), p.text("cursor"))
    return {"messages": page, "has_more": bool(cursor), "response_metadata": {"next_cursor": cursor}}


# ---- chat -------------------------------------------------------------------------------------


def _message_response(message: Message) -> dict[str, Any]:
    data = message.to_api()
    data.pop("team", None)
    return data


@method("chat.postMessage")
def _chat_post_message(core: SandboxCore, p: Params) -> dict[str, Any]:
    channel = core.channel(p.text("channel", "channel_not_found"))
    message = core.post_as_bot(
        channel,
        text=p.text("text"),
        blocks=p.get("blocks"),
        attachments=p.get("attachments"),
        thread_ts=p.text("thread_ts"),
        reply_broadcast=p.flag("reply_broadcast"),
        metadata=_metadata(p),
    )
    return {"channel": channel.id, "ts": message.ts, "message": _message_response(message)}


@method("chat.update")
def _chat_update(core: SandboxCore, p: Params) -> dict[str, Any]:
    channel = core.channel(p.text("channel", "channel_not_found"))
    message = core.message(channel.id, p.text("ts", "message_not_found"))
    if message.bot_id != BOT_ID:
        raise SlackError("cant_update_message")
    text, blocks, attachments = p.text("text"), p.get("blocks"), p.get("attachments")
    if text is None and blocks is None and attachments is None:
        raise SlackError("no_text")
    core.edit_message(message, text=text, blocks=blocks, attachments=attachments, metadata=_metadata(p))
    return {
        "channel": channel.id,
        "ts": message.ts,
        "text": message.text,
        "message": _message_response(message),
    }


@method("chat.delete")
def _chat_delete(core: SandboxCore, p: Params) -> dict[str, Any]:
    channel = core.channel(p.text("channel", "channel_not_found"))
    message = core.message(channel.id, p.text("ts", "message_not_found"))
    if message.bot_id != BOT_ID:
        raise SlackError("cant_delete_message")
    core.delete_message(channel, message.ts)
    return {"channel": channel.id, "ts": message.ts}


@method("chat.postEphemeral")
def _chat_post_ephemeral(core: SandboxCore, p: Params) -> dict[str, Any]:
    channel = core.channel(p.text("channel", "channel_not_found"))
    message = core.post_ephemeral(
        channel,
        p.text("user", "user_not_found") or "",
        text=p.text("text"),
        blocks=p.get("blocks"),
        attachments=p.get("attachments"),
        thread_ts=p.text("thread_ts"),
    )
    return {"message_ts": message.ts}


@method("chat.getPermalink")
def _chat_get_permalink(core: SandboxCore, p: Params) -> dict[str, Any]:
    channel = core.channel(p.text("channel", "channel_not_found"))
    message = core.message(channel.id, p.text("message_ts", "message_not_found"))
    return {"channel": channel.id, "permalink": core.permalink(message)}


@method("chat.startStream")
def _chat_start_stream(core: SandboxCore, p: Params) -> dict[str, Any]:
    channel = core.channel(p.text("channel", "channel_not_found"))
    message = core.start_stream(channel, p.text("thread_ts"), p.text("markdown_text"), p.get("chunks"))
    return {"channel": channel.id, "ts": message.ts}


@method("chat.appendStream")
def _chat_append_stream(core: SandboxCore, p: Params) -> dict[str, Any]:
    channel = core.channel(p.text("channel", "channel_not_found"))
    message = core.append_stream(channel, p.text("ts", "message_not_found"), p.text("markdown_text"), p.get("chunks"))
    return {"channel": channel.id, "ts": message.ts}


@method("chat.stopStream")
def _chat_stop_stream(core: SandboxCore, p: Params) -> dict[str, Any]:
    channel = core.channel(p.text("channel", "channel_not_found"))
    message = core.stop_stream(
        channel,
        p.text("ts", "message_not_found"),
        p.text("markdown_text"),
        p.get("blocks"),
        _metadata(p),
        p.get("chunks"),
    )
    return {"channel": channel.id, "ts": message.ts, "message": _message_response(message)}


# ---- reactions ----------------------------------------------------------------------------------


def _react(core: SandboxCore, p: Params, *, add: bool) -> dict[str, Any]:
    channel = core.channel(p.text("channel", "channel_not_found"))
    name = p.text("name", "invalid_name") or ""
    core.react(BOT_USER_ID, channel, p.text("timestamp", "message_not_found") or "", name, add=add)
    return {}


@method("reactions.add")
def _reactions_add(core: SandboxCore, p: Params) -> dict[str, Any]:
    return _react(core, p, add=True)


@method("reactions.remove")
def _reactions_remove(core: SandboxCore, p: Params) -> dict[str, Any]:
    return _react(core, p, add=False)


@method("reactions.get")
def _reactions_get(core: SandboxCore, p: Params) -> dict[str, Any]:
    channel = core.channel(p.text("channel", "channel_not_found"))
    message = core.message(channel.id, p.text("timestamp", "message_not_found"))
    return {"type": "message", "channel": channel.id, "message": message.to_api()}


# ---- files --------------------------------------------------------------------------------------


@method("files.info")
def _files_info(core: SandboxCore, p: Params) -> dict[str, Any]:
    return core.files.info(p.text("file", "file_not_found"), core.base_url)


# ---- views --------------------------------------------------------------------------------------


@method("views.open")
def _views_open(core: SandboxCore, p: Params) -> dict[str, Any]:
    view = p.get("view")
    user = core.modals.use_trigger(p.text("trigger_id"))
    return {"view": core.modals.open(user, view)}


@method("views.push")
def _views_push(core: SandboxCore, p: Params) -> dict[str, Any]:
    view = p.get("view")
    user = core.modals.use_trigger(p.text("trigger_id"))
    return {"view": core.modals.push(user, view)}


@method("views.update")
def _views_update(core: SandboxCore, p: Params) -> dict[str, Any]:
    view = core.modals.update(
        p.get("view"), view_id=p.text("view_id"), external_id=p.text("external_id"), hash=p.text("hash")
    )
    return {"view": view}


@method("views.publish")
def _views_publish(core: SandboxCore, p: Params) -> dict[str, Any]:
    return {"view": core.surfaces.publish_home(p.text("user_id", "user_not_found") or "", p.get("view"))}


# ---- assistant ----------------------------------------------------------------------------------


def _assistant_thread(core: SandboxCore, p: Params) -> tuple[str, str]:
    channel = core.channel(p.text("channel_id", "channel_not_found"))
    return channel.id, p.text("thread_ts", "invalid_arguments") or ""


@method("assistant.threads.setStatus")
def _assistant_set_status(core: SandboxCore, p: Params) -> dict[str, Any]:
    channel_id, thread_ts = _assistant_thread(core, p)
    core.set_status(channel_id, thread_ts, p.text("status") or "")
    return {}


@method("assistant.threads.setTitle")
def _assistant_set_title(core: SandboxCore, p: Params) -> dict[str, Any]:
    channel_id, thread_ts = _assistant_thread(core, p)
    core.workspace.thread_titles[(channel_id, thread_ts)] = p.text("title") or ""
    core.feed.publish({"type": "assistant", **core.assistant_thread(channel_id, thread_ts)})
    return {}


@method("assistant.threads.setSuggestedPrompts")
def _assistant_set_prompts(core: SandboxCore, p: Params) -> dict[str, Any]:
    channel_id, thread_ts = _assistant_thread(core, p)
    core.workspace.suggested_prompts[(channel_id, thread_ts)] = list(p.get("prompts") or [])
    core.feed.publish({"type": "assistant", **core.assistant_thread(channel_id, thread_ts)})
    return {}
