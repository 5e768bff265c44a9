"""The bot under test: the real Bolt app over HTTP on a free port, wired to the sandbox and a database."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.config import load_settings
from bot.runtime import Bot, build_bot, serve_http

if TYPE_CHECKING:
    from bot.dev.sandbox import SlackSandbox

SIGNING_SECRET = "sandbox-signing-secret"
BOT_TOKEN = "xoxb-sandbox"


@dataclass
class BotProcess:
    """One running bot (as a process would be); several may share a database."""

    bot: Bot
    web: web.AppRunner
    url: str

    async def stop(self) -> None:
        await self.web.cleanup()
        await self.bot.close()


@dataclass
class Harness:
    sandbox: SlackSandbox
    database_url: str
    openai_url: str | None = None
    running: list[BotProcess] = field(default_factory=list)

    def environ(self, graph: str, **extra: str) -> dict[str, str]:
        env = {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": self.sandbox.api_url,
            "DATABASE_URL": self.database_url,
            "BOT_GRAPH": graph,
        }
        env.update(extra)
        return env

    async def start(
        self, graph: str, *, workers: int | None = None, environ: Mapping[str, str] | None = None, **kwargs: Any
    ) -> BotProcess:
        settings = load_settings(environ or self.environ(graph), "serve")
        bot = await build_bot(settings, **kwargs)
        bot.start_workers(workers)
        await bot.open_claims()  # as `serve` does: the intake runs a job itself when it has a place free
        runner, port = await serve_http(bot, host="127.0.0.1", port=0)
        process = BotProcess(bot=bot, web=runner, url=f"http://127.0.0.1:{port}")
        self.sandbox.request_url = process.url + "/slack/events"
        self.running.append(process)
        return process

    async def stop_all(self) -> None:
        while self.running:
            await self.running.pop().stop()
