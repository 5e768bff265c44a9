"""`SlackSandbox`: the sandbox as an aiohttp server (Web API, control API, response URLs)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.dev.sandbox.command_routes import SurfaceControl
from bot.dev.sandbox.control import Control
from bot.dev.sandbox.core import SandboxCore
from bot.dev.sandbox.delivery import DEFAULT_RETRY_DELAYS
from bot.dev.sandbox.files import FileServer
from bot.dev.sandbox.graphs import GraphChooser
from bot.dev.sandbox.page import Page
from bot.dev.sandbox.socket_mode import APP_TOKEN, SocketMode
from bot.dev.sandbox.webapi import WebApi
from bot.dev.sandbox.workspace import Message, Workspace

log = logging.getLogger(__name__)
SAVE_INTERVAL = 1.0


class SlackSandbox(SandboxCore):
    """A local stand-in for Slack.

    Serves the Web API at ``api_url`` (point ``AsyncWebClient(base_url=...)`` / ``SLACK_API_URL`` there),
    delivers signed events and interactions to ``request_url``, and exposes a control API under
    ``/control/`` for acting as people, and a Slack-like web page at ``/`` (see `bot.dev.sandbox.page`).

    State is in memory; with ``state_file`` the messages are also saved there (and loaded at start).
    ``graph_chooser`` lets the page choose the app's graph per channel.
    """

    def __init__(
        self,
        signing_secret: str = "sandbox-signing-secret",
        bot_token: str = "xoxb-sandbox",
        request_url: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        delivery_timeout: float = 3.0,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        trigger_ttl: float = 3.0,
        workspace: Workspace | None = None,
        graph_chooser: GraphChooser | None = None,
        state_file: Path | str | None = None,
        app_token: str = APP_TOKEN,
        socket_mode: bool | None = None,
    ) -> None:
        super().__init__(
            signing_secret=signing_secret,
            bot_token=bot_token,
            request_url=request_url,
            delivery_timeout=delivery_timeout,
            retry_delays=retry_delays,
            trigger_ttl=trigger_ttl,
            workspace=workspace,
        )
        self.host = host
        self.port = port
        self.graph_chooser = graph_chooser
        self.state_file = Path(state_file) if state_file is not None else None
        self._runner: web.AppRunner | None = None
        self._saver: asyncio.Task[None] | None = None
        # Socket Mode (`bot.dev.sandbox.socket_mode`): on when `socket_mode`, or when no request URL is set and the app
        # has called apps.connections.open with `app_token`; deliveries then go over the websocket.
        self.socket_mode = SocketMode(self, app_token, enabled=socket_mode)
        self.deliverer.socket = self.socket_mode

    @property
    def url(self) -> str:
        """The sandbox's base URL, e.g. ``http://127.0.0.1:54321`` (known after `start`)."""
        return self.base_url

    @property
    def api_url(self) -> str:
        """The Web API base URL (with trailing slash), for ``AsyncWebClient(base_url=...)``."""
        return f"{self.base_url}/api/"

    def make_app(self) -> web.Application:
        """The aiohttp application serving the Web API, control API and response URLs."""
        app = web.Application(client_max_size=8 * 1024 * 1024)
        api = WebApi(self)
        app.router.add_routes(self.socket_mode.routes())
        app.router.add_route("*", "/api/{method}", api.handle)
        app.router.add_routes(Control(self).routes())
        app.router.add_routes(SurfaceControl(self).surface_routes())
        app.router.add_routes(FileServer(self.files, self.faults, self.bot_token).routes())
        app.router.add_routes(Page(self).routes())
        app.router.add_routes(self.oauth.routes())
        return app

    async def start(self) -> None:
        """Bind the server (a free port when ``port=0``) and start delivering events."""
        if self._runner is not None:
            return
        self.load_state()
        self._runner = web.AppRunner(self.make_app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        addresses = self._runner.addresses
        if addresses:
            self.port = int(addresses[0][1])
        self.base_url = f"http://{self.host}:{self.port}"
        await self.deliverer.start()
        if self.state_file is not None:
            self._saver = asyncio.create_task(self._save_periodically())

    async def stop(self) -> None:
        """Stop delivering and shut the server down (live page connections and held Web API answers are
        ended first)."""
        if self._saver is not None:
            self._saver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._saver
            self._saver = None
        self.feed.close()
        self.faults.release()
        await self.socket_mode.close()
        await self.deliverer.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.save_state()

    def reset(self) -> None:
        """As `SandboxCore.reset`, and forget the Socket Mode envelopes."""
        super().reset()
        self.socket_mode.reset()

    # ---- saved state ------------------------------------------------------------------------

    def load_state(self) -> int:
        """Load the messages saved in ``state_file``, if any; returns how many."""
        if self.state_file is None or not self.state_file.is_file():
            return 0
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
            return self.workspace.load_messages(data)
        except (ValueError, TypeError, OSError) as exc:
            log.warning("could not load the sandbox's saved messages from %s: %s", self.state_file, exc)
            return 0

    def save_state(self) -> None:
        """Save the messages to ``state_file`` (atomically), when one is set."""
        if self.state_file is None:
            return
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        partial = self.state_file.with_name(self.state_file.name + ".tmp")
        partial.write_text(json.dumps(self.workspace.dump_messages(), default=str), encoding="utf-8")
        os.replace(partial, self.state_file)

    async def _save_periodically(self) -> None:
        saved = self.feed.published
        while True:
            await asyncio.sleep(SAVE_INTERVAL)
            if self.feed.published != saved:
                saved = self.feed.published
                try:
                    self.save_state()
                except OSError as exc:
                    log.warning("could not save the sandbox's messages: %s", exc)

    async def __aenter__(self) -> SlackSandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    # ---- conveniences for in-process tests --------------------------------------------------

    def post(
        self,
        user: str,
        channel: str,
        text: str = "",
        thread_ts: str | None = None,
        *,
        blocks: list[dict[str, Any]] | None = None,
        files: list[dict[str, Any]] | None = None,
    ) -> str:
        """Post as a person (same as ``POST /control/messages``); returns the message ts."""
        return self.post_as_user(user, channel, text, thread_ts, blocks=blocks, files=files).ts

    def history(self, channel: str) -> list[dict[str, Any]]:
        """Top-level messages of a channel, oldest first."""
        return [m.to_api() for m in self.workspace.history(self.channel(channel).id)]

    def replies(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """A thread, oldest first."""
        return [m.to_api() for m in self.workspace.thread(self.channel(channel).id, ts)]

    def ephemerals(self, channel: str, user: str) -> list[dict[str, Any]]:
        """Ephemeral messages shown to `user` in `channel`."""
        stored: list[Message] = self.workspace.ephemerals.get((self.channel(channel).id, user), [])
        return [m.to_api() for m in stored]

    def views(self, user: str) -> list[dict[str, Any]]:
        """`user`'s modal stack, top last."""
        return self.modals.stack(user)

    def status(self, channel: str, thread_ts: str) -> str:
        """The assistant status shown in a thread ('' when none)."""
        return self.workspace.statuses.get((self.channel(channel).id, thread_ts), "")
