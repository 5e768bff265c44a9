"""`SlackSandbox`: the sandbox as an aiohttp server (Web API, control API, response URLs)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web

from bot.sandbox.control import Control
from bot.sandbox.core import SandboxCore
from bot.sandbox.delivery import DEFAULT_RETRY_DELAYS
from bot.sandbox.webapi import WebApi
from bot.sandbox.workspace import Message, Workspace


class SlackSandbox(SandboxCore):
    """A local stand-in for Slack.

    Serves the Web API at ``api_url`` (point ``AsyncWebClient(base_url=...)`` / ``SLACK_API_URL`` there),
    delivers signed events and interactions to ``request_url``, and exposes a control API under
    ``/control/`` for acting as people. All state is in memory.
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
        self._runner: web.AppRunner | None = None

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
        app.router.add_route("*", "/api/{method}", api.handle)
        app.router.add_routes(Control(self).routes())
        app.router.add_get("/", self._index)
        return app

    async def _index(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"ok": True, "sandbox": True, "api_url": self.api_url, "request_url": self.request_url}
        )

    async def start(self) -> None:
        """Bind the server (a free port when ``port=0``) and start delivering events."""
        if self._runner is not None:
            return
        self._runner = web.AppRunner(self.make_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        addresses = self._runner.addresses
        if addresses:
            self.port = int(addresses[0][1])
        self.base_url = f"http://{self.host}:{self.port}"
        await self.deliverer.start()

    async def stop(self) -> None:
        """Stop delivering and shut the server down."""
        await self.deliverer.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SlackSandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    # ---- conveniences for in-process tests --------------------------------------------------

    def post(self, user: str, channel: str, text: str, thread_ts: str | None = None) -> str:
        """Post as a person (same as ``POST /control/messages``); returns the message ts."""
        return self.post_as_user(user, channel, text, thread_ts).ts

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
