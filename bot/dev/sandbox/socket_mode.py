"""Socket Mode: ``apps.connections.open``, the websocket, envelopes and acks.

The app calls ``apps.connections.open`` with its app-level token (``xapp-…``) and gets a ``ws://…/link/?ticket=…``
URL; on connecting it is sent ``hello``. While Socket Mode is on, every delivery the sandbox would POST to the request
URL goes down a websocket instead, as an envelope ``{envelope_id, type, payload, accepts_response_payload}`` —
``events_api`` (with ``retry_attempt``/``retry_reason``), ``interactive`` or ``slash_commands`` — and the app answers
with an ack ``{envelope_id, payload?}``. The ack stands in for the HTTP answer: its payload is what an HTTP app would
have answered with (a view_submission's ``response_action``), and an event not acked within the delivery timeout is
sent again, like an HTTP retry. `SocketMode.disconnect` asks the app to reconnect (``refresh_requested``).

Socket Mode is on when the sandbox was made with ``socket_mode=True``, or, by default, when no request URL is set
and the app has called ``apps.connections.open``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from bot.dev.sandbox.core import ApiCall, SandboxCore
from bot.dev.sandbox.delivery import HttpResult
from bot.dev.sandbox.errors import SlackError
from bot.dev.sandbox.faults import refusal
from bot.dev.sandbox.webapi import read_params
from bot.dev.sandbox.workspace import APP_ID

APP_TOKEN = "xapp-sandbox"
METHOD = "apps.connections.open"
LINK_PATH = "/link/"
DISCONNECT_GRACE = 10.0
# Interactions whose ack may carry an answer Slack acts on (a view_submission's response_action, options).
ANSWERED_INTERACTIONS = frozenset({"view_submission", "block_suggestion"})


@dataclass
class Connection:
    """One open websocket from the app."""

    id: str
    ws: web.WebSocketResponse
    retiring: bool = False
    opened: float = field(default_factory=lambda: round(time.time(), 3))

    @property
    def live(self) -> bool:
        """Open and not asked to go away: new envelopes may be sent on it."""
        return not self.retiring and not self.ws.closed

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "retiring": self.retiring, "closed": self.ws.closed, "opened": self.opened}


@dataclass
class Envelope:
    """One envelope sent to the app, and its ack (`acked`, the ack's `payload`) or why there was none (`error`)."""

    envelope_id: str
    type: str
    connection: str
    retry_attempt: int | None = None
    retry_reason: str | None = None
    acked: bool = False
    payload: dict[str, Any] | None = None
    error: str | None = None
    at: float = field(default_factory=lambda: round(time.time(), 3))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def envelope_for(body: str, headers: dict[str, str]) -> dict[str, Any]:
    """The Socket Mode envelope (without its id) for what would have been POSTed to the request URL: a JSON event
    callback, or a form with an interaction ``payload`` or a slash command's fields."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if lowered.get("content-type", "").startswith("application/json"):
        return {
            "type": "events_api",
            "payload": json.loads(body),
            "accepts_response_payload": False,
            "retry_attempt": int(lowered.get("x-slack-retry-num", "0")),
            "retry_reason": lowered.get("x-slack-retry-reason", ""),
        }
    form = dict(parse_qsl(body, keep_blank_values=True))
    if "payload" in form:
        payload = json.loads(form["payload"])
        return {
            "type": "interactive",
            "payload": payload,
            "accepts_response_payload": payload.get("type") in ANSWERED_INTERACTIONS,
        }
    return {"type": "slash_commands", "payload": form, "accepts_response_payload": True}


class SocketMode:
    """The sandbox's Socket Mode endpoint; the `Deliverer` sends through it (`send`) while it is `active`."""

    def __init__(
        self,
        core: SandboxCore,
        app_token: str = APP_TOKEN,
        *,
        enabled: bool | None = None,
        grace: float = DISCONNECT_GRACE,
    ) -> None:
        self.core = core
        self.app_token = app_token
        self.enabled = enabled
        self.grace = grace
        self.opened = False
        self.tickets: set[str] = set()
        self.connections: list[Connection] = []
        self.envelopes: list[Envelope] = []
        self._acks: dict[str, asyncio.Future[dict[str, Any] | None]] = {}
        self._changed = asyncio.Event()
        self._turn = itertools.count()
        self._closers: set[asyncio.Task[None]] = set()

    # ---- state -------------------------------------------------------------------------------

    def active(self) -> bool:
        """Deliveries go over the socket: explicitly enabled, or (by default) no request URL and the app has
        opened a connection."""
        if self.enabled is not None:
            return self.enabled
        return self.opened and not self.core.request_url

    def live(self) -> list[Connection]:
        """Connections new envelopes may be sent on."""
        return [c for c in self.connections if c.live]

    def state(self) -> dict[str, Any]:
        """JSON-friendly state for the control API."""
        return {
            "active": self.active(),
            "enabled": self.enabled,
            "connections": [c.to_dict() for c in self.connections],
            "envelopes": [e.to_dict() for e in self.envelopes],
        }

    def reset(self) -> None:
        """Forget the envelope log (connections stay open)."""
        self.envelopes.clear()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_connected(self, count: int = 1, timeout: float = 10.0) -> list[Connection]:  # noqa: ASYNC109
        """Wait until at least `count` connections are live; returns them."""

        async def until() -> list[Connection]:
            while len(self.live()) < count:
                await self._changed.wait()
            return self.live()

        return await asyncio.wait_for(until(), timeout)

    # ---- HTTP: apps.connections.open, the websocket, control --------------------------------

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(f"/api/{METHOD}", self.connections_open),
            web.get(f"/api/{METHOD}", self.connections_open),
            web.get(LINK_PATH, self.link),
            web.get("/control/socket_mode", self.control_state),
            web.post("/control/socket_mode", self.control_config),
            web.post("/control/socket_mode/disconnect", self.control_disconnect),
        ]

    async def connections_open(self, request: web.Request) -> web.Response:
        """``apps.connections.open``: needs the app-level token; answers a websocket URL."""
        try:
            params = await read_params(request)
        except SlackError as exc:
            return web.json_response(exc.to_response())
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else str(params.pop("token", "") or "")
        params.pop("token", None)
        fault = self.core.faults.take(METHOD)
        if fault is not None and not fault.after_store:
            response, logged = refusal(fault)
            self.core.call_log.append(ApiCall(METHOD, params, logged, response.status, fault.kind))
            return response
        if not token:
            body: dict[str, Any] = SlackError("not_authed").to_response()
        elif not token.startswith("xapp-"):
            body = SlackError("not_allowed_token_type").to_response()
        elif token != self.app_token:
            body = SlackError("invalid_auth").to_response()
        else:
            ticket = secrets.token_urlsafe(16)
            self.tickets.add(ticket)
            self.opened = True
            base = self.core.base_url.replace("http", "ws", 1)
            body = {"ok": True, "url": f"{base}{LINK_PATH}?ticket={ticket}&app_id={APP_ID}"}
        self.core.call_log.append(ApiCall(METHOD, params, body, 200, fault.kind if fault else None))
        return web.json_response(body)

    async def link(self, request: web.Request) -> web.StreamResponse:
        """The websocket: ``hello``, then envelopes out and acks in until either side closes."""
        ticket = request.query.get("ticket", "")
        if ticket not in self.tickets:
            return web.json_response({"ok": False, "error": "invalid_ticket"}, status=401)
        ws = web.WebSocketResponse(autoping=True)  # answers the client's pings with pongs
        await ws.prepare(request)
        connection = Connection(id=f"sbx-{uuid.uuid4().hex[:8]}", ws=ws)
        hello = {
            "type": "hello",
            "num_connections": len(self.live()) + 1,
            "debug_info": {"host": "sandbox", "connection_id": connection.id, "approximate_connection_time": 18060},
            "connection_info": {"app_id": APP_ID},
        }
        await ws.send_json(hello)
        self.connections.append(connection)  # envelopes only after hello
        self._notify()
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._take_ack(message.data)
        finally:
            self.connections.remove(connection)
            self._notify()
        return ws

    def _take_ack(self, raw: str) -> None:
        try:
            data = json.loads(raw)
        except ValueError:
            return
        if not isinstance(data, dict):
            return
        waiting = self._acks.get(str(data.get("envelope_id")))
        if waiting is not None and not waiting.done():
            payload = data.get("payload")
            waiting.set_result(payload if isinstance(payload, dict) else None)

    async def control_state(self, request: web.Request) -> web.Response:
        """``GET /control/socket_mode``: whether deliveries use the socket, the connections and the envelopes."""
        return web.json_response({"ok": True, **self.state()})

    async def control_config(self, request: web.Request) -> web.Response:
        """``POST /control/socket_mode {enabled: true|false|null}``: force Socket Mode on or off (null: automatic)."""
        args = await request.json() if request.can_read_body else {}
        if "enabled" in args:
            self.enabled = None if args["enabled"] is None else bool(args["enabled"])
        return web.json_response({"ok": True, **self.state()})

    async def control_disconnect(self, request: web.Request) -> web.Response:
        """``POST /control/socket_mode/disconnect {reason?}``: ask the app to reconnect."""
        args = await request.json() if request.can_read_body else {}
        told = await self.disconnect(str(args.get("reason") or "refresh_requested"))
        return web.json_response({"ok": True, "told": told})

    # ---- delivering --------------------------------------------------------------------------

    async def _pick(self, timeout: float) -> Connection | None:  # noqa: ASYNC109
        """A live connection (in turn), waiting up to `timeout` for one while the app (re)connects."""
        with contextlib.suppress(TimeoutError):
            live = await self.wait_connected(1, timeout)
            return live[next(self._turn) % len(live)]
        return None

    async def send(self, body: str, headers: dict[str, str], timeout: float) -> HttpResult:  # noqa: ASYNC109
        """Deliver what would have been POSTed as an envelope and wait for the ack: a 200 whose body is the ack's
        payload; no ack within `timeout` is a ``timeout`` (retried for events, like an HTTP timeout)."""
        started = time.monotonic()
        envelope = envelope_for(body, headers)
        connection = await self._pick(timeout)
        if connection is None:
            return HttpResult(None, b"", {}, time.monotonic() - started, "socket_not_connected")
        envelope_id = f"{uuid.uuid4()}"
        envelope = {"envelope_id": envelope_id, **envelope}
        record = Envelope(
            envelope_id=envelope_id,
            type=envelope["type"],
            connection=connection.id,
            retry_attempt=envelope.get("retry_attempt"),
            retry_reason=envelope.get("retry_reason"),
        )
        self.envelopes.append(record)
        waiting: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        self._acks[envelope_id] = waiting
        try:
            await connection.ws.send_str(json.dumps(envelope, separators=(",", ":")))
            # The ack may come back on another connection (the app acks on whichever is current).
            payload = await asyncio.wait_for(waiting, timeout)
        except TimeoutError:
            record.error = "timeout"
            return HttpResult(None, b"", {}, time.monotonic() - started, "timeout")
        except ConnectionError:
            record.error = "socket_send_failed"
            return HttpResult(None, b"", {}, time.monotonic() - started, "socket_send_failed")
        finally:
            self._acks.pop(envelope_id, None)
        record.acked, record.payload = True, payload
        answer = json.dumps(payload).encode() if payload is not None else b""
        headers = {"content-type": "application/json"} if payload is not None else {}
        return HttpResult(200, answer, headers, time.monotonic() - started, None)

    # ---- disconnecting -----------------------------------------------------------------------

    async def disconnect(self, reason: str = "refresh_requested") -> int:
        """Tell every live connection to go away (the app opens a new one first); each is closed after `grace`
        seconds unless the app closes it sooner. Returns how many were told."""
        told = 0
        for connection in self.live():
            connection.retiring = True
            message = {"type": "disconnect", "reason": reason, "debug_info": {"host": "sandbox"}}
            with contextlib.suppress(ConnectionError):
                await connection.ws.send_json(message)
                told += 1
            task = asyncio.create_task(self._close_later(connection))
            self._closers.add(task)
            task.add_done_callback(self._closers.discard)
        self._notify()
        return told

    async def _close_later(self, connection: Connection) -> None:
        await asyncio.sleep(self.grace)
        await connection.ws.close(code=1001, message=b"disconnected")

    async def close(self) -> None:
        """Close every connection (the sandbox is stopping); acks still awaited end as timeouts."""
        for task in list(self._closers):
            task.cancel()
        for connection in list(self.connections):
            with contextlib.suppress(ConnectionError):
                await connection.ws.close(code=1001, message=b"server stopping")
