"""The control API (``/control/...``): act as people and read what Slack would show them.

Every route answers JSON: ``{"ok": true, ...}`` or ``{"ok": false, "error": ...}`` with HTTP 400.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from bot.dev.sandbox import assistant
from bot.dev.sandbox.core import SandboxCore
from bot.dev.sandbox.errors import SlackError

T = TypeVar("T")
Route = Callable[["Control", dict[str, Any]], Awaitable[dict[str, Any]]]


def _required(args: dict[str, Any], *keys: str) -> None:
    missing = [k for k in keys if args.get(k) in (None, "")]
    if missing:
        raise SlackError("invalid_arguments", detail=f"missing {', '.join(missing)}")


def _number(args: dict[str, Any], key: str, default: T, kind: Callable[[Any], T]) -> T:
    """Argument `key` converted with `kind` (`default` when absent); ``invalid_arguments`` if it won't convert."""
    value = args.get(key)
    if value in (None, ""):
        return default
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise SlackError("invalid_arguments", detail=f"{key} must be a number") from None


def _names(args: dict[str, Any], key: str) -> list[str] | None:
    """A list-of-strings argument (a JSON list, or a comma-separated string)."""
    value = args.get(key)
    if value in (None, ""):
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list):
        raise SlackError("invalid_arguments", detail=f"{key} must be a list")
    return [str(v) for v in value]


class Control:
    """Route handlers for the control API and the response_url endpoint."""

    def __init__(self, core: SandboxCore) -> None:
        self.core = core

    def routes(self) -> list[web.RouteDef]:
        """All control routes, plus ``POST /response/{token}``."""
        post = {
            "messages": self.post_message,
            "click": self.click,
            "submit": self.submit,
            "cancel": self.cancel,
            "react": self.react,
            "redeliver": self.redeliver,
            "rate_limit": self.rate_limit,
            "fault": self.fault,
            "chaos": self.chaos,
            "clear_faults": self.clear_faults,
            "config": self.config,
            "idle": self.idle,
            "reset": self.reset,
        }
        get = {
            "channels": self.channels,
            "users": self.users,
            "history": self.history,
            "replies": self.replies,
            "message": self.message,
            "ephemerals": self.ephemerals,
            "views": self.views,
            "status": self.status,
            "calls": self.calls,
            "deliveries": self.deliveries,
            "downloads": self.downloads,
            "config": self.config,
        }
        defs = [web.post(f"/control/{name}", self._wrap(fn)) for name, fn in post.items()]
        defs += [web.get(f"/control/{name}", self._wrap(fn)) for name, fn in get.items()]
        defs.append(web.post("/response/{token}", self.response_url))
        defs += assistant.routes(self.core, self._wrap)  # the assistant pane and raw events (bot.dev.sandbox.assistant)
        return defs

    def _wrap(self, fn: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]) -> Any:
        async def handler(request: web.Request) -> web.Response:
            args: dict[str, Any] = dict(request.query)
            if request.method == "POST" and request.can_read_body:
                try:
                    body = json.loads(await request.read() or b"{}")
                except ValueError:
                    return web.json_response({"ok": False, "error": "invalid_json"}, status=400)
                if isinstance(body, dict):
                    args.update(body)
            try:
                result = await fn(args)
            except SlackError as exc:
                return web.json_response(exc.to_response(), status=400)
            return web.json_response({"ok": True, **result} if "ok" not in result else result)

        return handler

    # ---- acting as people -------------------------------------------------------------------

    async def post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        """``POST /control/messages {user, channel, text, thread_ts?, blocks?, files?}`` -> ``{ok, channel, ts}``.

        `blocks` (a list) replaces the rich_text block made from `text`, which may then be empty; `files` (a list
        of specs, see `bot.dev.sandbox.files`) makes it a `file_share` message."""
        _required(args, "user", "channel")
        text = args.get("text") or ""
        if not isinstance(text, str):
            raise SlackError("invalid_arguments", detail="text must be a string")
        message = self.core.post_as_user(
            args["user"],
            args["channel"],
            text,
            args.get("thread_ts"),
            blocks=args.get("blocks"),
            files=args.get("files"),
        )
        return {"channel": message.channel, "ts": message.ts}

    async def click(self, args: dict[str, Any]) -> dict[str, Any]:
        """``POST /control/click {user, channel, ts, action_id, value?, block_id?}`` or
        ``{user, view_id, action_id, ...}`` -> ``{ok, status, trigger_id}``."""
        _required(args, "user", "action_id")
        if args.get("view_id") or not args.get("channel"):
            return await self.core.click_in_view(
                args["user"], args.get("view_id"), args["action_id"], args.get("value"), args.get("block_id")
            )
        _required(args, "channel", "ts")
        return await self.core.click(
            args["user"], args["channel"], args["ts"], args["action_id"], args.get("value"), args.get("block_id")
        )

    async def submit(self, args: dict[str, Any]) -> dict[str, Any]:
        """``POST /control/submit {user, values, view_id?}`` -> ``{ok, status, response_action, errors}``."""
        _required(args, "user")
        return await self.core.submit(args["user"], args.get("values") or {}, args.get("view_id"))

    async def cancel(self, args: dict[str, Any]) -> dict[str, Any]:
        """``POST /control/cancel {user}`` closes the user's top modal."""
        _required(args, "user")
        return await self.core.cancel(args["user"])

    async def react(self, args: dict[str, Any]) -> dict[str, Any]:
        """``POST /control/react {user, channel, ts, name, remove?}``."""
        _required(args, "user", "channel", "ts", "name")
        self.core.user(args["user"])
        channel = self.core.channel(args["channel"])
        self.core.react(args["user"], channel, args["ts"], args["name"], add=not args.get("remove"))
        return {}

    # ---- sandbox knobs ------------------------------------------------------------------------

    async def redeliver(self, args: dict[str, Any]) -> dict[str, Any]:
        """``POST /control/redeliver {event_id, reason?}`` -> ``{ok, delivery}``."""
        _required(args, "event_id")
        record = await self.core.redeliver(args["event_id"], args.get("reason") or "http_timeout")
        return {"delivery": record}

    async def rate_limit(self, args: dict[str, Any]) -> dict[str, Any]:
        """``POST /control/rate_limit {method, times?, retry_after?}``."""
        _required(args, "method")
        self.core.rate_limit(args["method"], _number(args, "times", 1, int), _number(args, "retry_after", 1, int))
        return {}

    async def fault(self, args: dict[str, Any]) -> dict[str, Any]:
        """``POST /control/fault {method, kind, times?, retry_after?, delay?}``: see `SandboxCore.inject_fault`."""
        _required(args, "method", "kind")
        self.core.inject_fault(
            args["method"],
            str(args["kind"]),
            times=_number(args, "times", 1, int),
            retry_after=_number(args, "retry_after", 1, int),
            delay=_number(args, "delay", 30.0, float),
        )
        return {}

    async def chaos(self, args: dict[str, Any]) -> dict[str, Any]:
        """``POST /control/chaos {rate, seed?, methods?, kinds?, delay?, retry_after?}``: see `SandboxCore.chaos`."""
        _required(args, "rate")
        self.core.chaos(
            _number(args, "rate", 0.0, float),
            seed=_number(args, "seed", None, int),
            methods=_names(args, "methods"),
            kinds=_names(args, "kinds"),
            chaos_delay=_number(args, "delay", 30.0, float),
            retry_after=_number(args, "retry_after", 1, int),
        )
        return {}

    async def clear_faults(self, args: dict[str, Any]) -> dict[str, Any]:
        """``POST /control/clear_faults``: drop pending faults and turn chaos off."""
        self.core.clear_faults()
        return {}

    async def config(self, args: dict[str, Any]) -> dict[str, Any]:
        """``GET|POST /control/config {request_url?}``: read or set where events are delivered."""
        if "request_url" in args:
            self.core.request_url = args["request_url"] or None
        return {
            "url": self.core.base_url,
            "api_url": f"{self.core.base_url}/api/",
            "request_url": self.core.request_url,
        }

    async def idle(self, args: dict[str, Any]) -> dict[str, Any]:
        """``POST /control/idle {timeout?}``: wait until all queued event deliveries were attempted."""
        try:
            await self.core.wait_idle(float(args.get("timeout", 10.0)))
        except TimeoutError:
            raise SlackError("timeout") from None
        return {}

    async def reset(self, args: dict[str, Any]) -> dict[str, Any]:
        """``POST /control/reset``: forget messages, modals and logs."""
        self.core.reset()
        return {}

    # ---- reading ------------------------------------------------------------------------------

    async def channels(self, args: dict[str, Any]) -> dict[str, Any]:
        """``GET /control/channels``."""
        channels = []
        for channel in self.core.workspace.channels.values():
            info = channel.to_api()
            info.update({"name": channel.name, "members": sorted(channel.members)})
            channels.append(info)
        return {"channels": channels}

    async def users(self, args: dict[str, Any]) -> dict[str, Any]:
        """``GET /control/users``."""
        return {"users": [u.to_api() for u in self.core.workspace.users.values()]}

    async def history(self, args: dict[str, Any]) -> dict[str, Any]:
        """``GET /control/history?channel=C``: top-level messages, oldest first."""
        _required(args, "channel")
        channel = self.core.channel(args["channel"])
        return {"messages": [m.to_api() for m in self.core.workspace.history(channel.id)]}

    async def replies(self, args: dict[str, Any]) -> dict[str, Any]:
        """``GET /control/replies?channel=C&ts=T``: the thread, oldest first."""
        _required(args, "channel", "ts")
        channel = self.core.channel(args["channel"])
        return {"messages": [m.to_api() for m in self.core.workspace.thread(channel.id, args["ts"])]}

    async def message(self, args: dict[str, Any]) -> dict[str, Any]:
        """``GET /control/message?channel=C&ts=T``: one message."""
        _required(args, "channel", "ts")
        channel = self.core.channel(args["channel"])
        return {"message": self.core.message(channel.id, args["ts"]).to_api()}

    async def ephemerals(self, args: dict[str, Any]) -> dict[str, Any]:
        """``GET /control/ephemerals?channel=C&user=U``."""
        _required(args, "channel", "user")
        channel = self.core.channel(args["channel"])
        stored = self.core.workspace.ephemerals.get((channel.id, args["user"]), [])
        return {"messages": [m.to_api() for m in stored]}

    async def views(self, args: dict[str, Any]) -> dict[str, Any]:
        """``GET /control/views?user=U``: the user's modal stack, top last."""
        _required(args, "user")
        return {"views": self.core.modals.stack(args["user"])}

    async def status(self, args: dict[str, Any]) -> dict[str, Any]:
        """``GET /control/status?channel=C&thread_ts=T``: the assistant thread status ('' when none)."""
        _required(args, "channel", "thread_ts")
        channel = self.core.channel(args["channel"])
        key = (channel.id, args["thread_ts"])
        return {
            "status": self.core.workspace.statuses.get(key, ""),
            "title": self.core.workspace.thread_titles.get(key),
            "suggested_prompts": self.core.workspace.suggested_prompts.get(key, []),
        }

    async def calls(self, args: dict[str, Any]) -> dict[str, Any]:
        """``GET /control/calls?method=M``: the Web API call log."""
        return {"calls": self.core.calls(args.get("method") or None)}

    async def downloads(self, args: dict[str, Any]) -> dict[str, Any]:
        """``GET /control/downloads``: every request for a shared file's bytes (whether it carried the bot
        token, never the token itself)."""
        return {"downloads": list(self.core.files.downloads)}

    async def deliveries(self, args: dict[str, Any]) -> dict[str, Any]:
        """``GET /control/deliveries``: every attempt to deliver an event or interaction."""
        return {"deliveries": self.core.deliveries()}

    # ---- response_url -------------------------------------------------------------------------

    async def response_url(self, request: web.Request) -> web.Response:
        """``POST /response/{token}``: the app answers an interaction via its response_url."""
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            return web.json_response({"ok": False, "error": "invalid_json"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"ok": False, "error": "invalid_json"}, status=400)
        try:
            self.core.respond(request.match_info["token"], body)
        except SlackError as exc:
            status = 404 if exc.code in ("expired_url", "used_url") else 400
            return web.json_response(exc.to_response(), status=status)
        return web.json_response({"ok": True})
