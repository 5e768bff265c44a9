"""The sandbox's web page: a Slack-like client for people, served next to the Web API.

Routes (all on the sandbox's port):

- ``GET /`` the page (``index.html``) for browsers; JSON about the sandbox for API clients;
- ``GET /web/{file}`` the page's scripts and styles (plain files from ``bot/dev/sandbox/web/``, no build step);
- ``GET /control/stream`` Server-Sent Events: first a ``snapshot`` of everything, then each change
  (see `bot.dev.sandbox.feed`); the page posts through the ordinary control API (messages, click, submit, cancel);
- ``GET /control/snapshot`` the same snapshot as JSON (with each person's Home tab, ``homes``, and the assistant
  threads' titles and suggested prompts, ``assistant``);
- ``GET /control/graphs?channel=C`` / ``POST /control/graphs {channel, graph}`` the graph a channel's new
  conversations use, through the app's `GraphChooser` (``{"options": []}`` when there is none).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.dev.sandbox.errors import SlackError

if TYPE_CHECKING:
    from bot.dev.sandbox.server import SlackSandbox

WEB_DIR = Path(__file__).with_name("web")
_FILE_NAME = re.compile(r"^[A-Za-z0-9_-]+\.(?:js|css|svg|png|html)$")
KEEPALIVE_SECONDS = 15.0


class Page:
    """Route handlers for the web page, its live feed and the graph chooser."""

    def __init__(self, sandbox: SlackSandbox) -> None:
        self.sandbox = sandbox

    def routes(self) -> list[web.RouteDef]:
        """The page's routes (``/`` included)."""
        return [
            web.get("/", self.index),
            web.get("/web/{name}", self.asset),
            web.get("/control/stream", self.stream),
            web.get("/control/snapshot", self.snapshot),
            web.get("/control/graphs", self.graphs),
            web.post("/control/graphs", self.choose_graph),
        ]

    # ---- the page -----------------------------------------------------------------------------

    async def index(self, request: web.Request) -> web.StreamResponse:
        """The page for browsers (``Accept: text/html``); the sandbox's JSON description otherwise."""
        if "text/html" not in request.headers.get("Accept", ""):
            sb = self.sandbox
            return web.json_response(
                {"ok": True, "sandbox": True, "api_url": sb.api_url, "request_url": sb.request_url}
            )
        return self._file("index.html")

    async def asset(self, request: web.Request) -> web.StreamResponse:
        """One of the page's files, by name."""
        name = request.match_info["name"]
        if not _FILE_NAME.match(name) or not (WEB_DIR / name).is_file():
            raise web.HTTPNotFound()
        return self._file(name)

    @staticmethod
    def _file(name: str) -> web.FileResponse:
        return web.FileResponse(WEB_DIR / name, headers={"Cache-Control": "no-cache"})

    # ---- live state ---------------------------------------------------------------------------

    async def _snapshot_data(self) -> dict[str, Any]:
        data = self.sandbox.snapshot()
        data["graphs"] = await self._graph_state()
        return data

    async def snapshot(self, request: web.Request) -> web.Response:
        """``GET /control/snapshot``: everything the page shows."""
        return web.json_response({"ok": True, **await self._snapshot_data()})

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """``GET /control/stream``: Server-Sent Events, a snapshot first and then every change."""
        feed = self.sandbox.feed
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )
        queue = feed.subscribe()
        try:
            data = self.sandbox.snapshot()  # taken together with subscribing: no change falls in between
            data["graphs"] = await self._graph_state()
            first = json.dumps({"type": "snapshot", **data}, default=str)
            await response.prepare(request)
            await response.write(f"retry: 1000\ndata: {first}\n\n".encode())
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                if item is None:
                    break
                await response.write(f"data: {item}\n\n".encode())
        except ConnectionError:
            return response
        finally:
            feed.unsubscribe(queue)
        with contextlib.suppress(ConnectionError):
            await response.write_eof()
        return response

    # ---- graphs -------------------------------------------------------------------------------

    async def _graph_state(self, channel: str | None = None) -> dict[str, Any]:
        chooser = self.sandbox.graph_chooser
        if chooser is None:
            return {"enabled": False, "options": [], "channels": {}}
        ids = [channel] if channel else list(self.sandbox.workspace.channels)
        return {
            "enabled": True,
            "options": [option.to_dict() for option in await chooser.options()],
            "channels": {cid: await chooser.current(cid) for cid in ids},
        }

    async def graphs(self, request: web.Request) -> web.Response:
        """``GET /control/graphs[?channel=C]`` -> ``{ok, enabled, options, channels: {C: graph}, current?}``."""
        channel_ref = request.query.get("channel")
        try:
            channel = self.sandbox.channel(channel_ref).id if channel_ref else None
        except SlackError as exc:
            return web.json_response(exc.to_response(), status=400)
        state = await self._graph_state(channel)
        if channel:
            state["current"] = state["channels"].get(channel)
        return web.json_response({"ok": True, **state})

    async def choose_graph(self, request: web.Request) -> web.Response:
        """``POST /control/graphs {channel, graph}`` (graph null: back to the default) -> ``{ok, channel, current}``."""
        chooser = self.sandbox.graph_chooser
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            return web.json_response({"ok": False, "error": "invalid_json"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"ok": False, "error": "invalid_json"}, status=400)
        if chooser is None:
            return web.json_response({"ok": False, "error": "not_supported"}, status=400)
        try:
            channel = self.sandbox.channel(body.get("channel")).id
        except SlackError as exc:
            return web.json_response(exc.to_response(), status=400)
        graph = body.get("graph") or None
        try:
            await chooser.choose(channel, graph)
        except ValueError as exc:
            return web.json_response({"ok": False, "error": "invalid_graph", "detail": str(exc)}, status=400)
        current = await chooser.current(channel)
        self.sandbox.feed.publish({"type": "graph", "channel": channel, "graph": current})
        return web.json_response({"ok": True, "channel": channel, "current": current})
