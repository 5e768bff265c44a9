"""Putting the bot together: database, runner, engine, Bolt app, job queue, worker, HTTP server."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass, field

import procrastinate
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot import listeners
from bot.config import Settings
from bot.db import Database, open_database
from bot.engine import Engine
from bot.jobs import Jobs, keep_recovering, open_jobs, start_worker
from bot.policy import Policy
from bot.renderers import Registry
from bot.routing import Router
from bot.runner import local_runners
from bot.store import Store

log = logging.getLogger(__name__)


def build_client(settings: Settings) -> AsyncWebClient:
    """The Web API client; slack_sdk retries on 429 (honouring Retry-After), connection and 5xx errors."""
    return AsyncWebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        retry_handlers=[
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )


@dataclass
class Bot:
    settings: Settings
    db: Database
    engine: Engine
    jobs: procrastinate.App
    app: AsyncApp
    workers: list[asyncio.Task[None]] = field(default_factory=list)

    def start_workers(self, count: int | None = None) -> None:
        count = self.settings.workers if count is None else count
        if count > 0:
            name = f"{socket.gethostname()}-{os.getpid()}-{len(self.workers)}"
            stalled_after = self.settings.stalled_after
            worker = start_worker(self.jobs, self.engine, concurrency=count, name=name, stalled_after=stalled_after)
            self.workers.append(worker)
            recovery = keep_recovering(self.jobs, stalled_after=stalled_after)
            self.workers.append(asyncio.create_task(recovery, name=f"recovery:{name}"))

    async def close(self) -> None:
        for task in self.workers:
            task.cancel()
        for task in self.workers:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                log.exception("worker stopped with an error")
        await self.jobs.close_async()
        await self.db.close()


async def build_bot(settings: Settings, *, registry: Registry | None = None) -> Bot:
    """Open everything a bot process needs. Raises ConfigError for a bad setting."""
    db = await open_database(settings.database_url, settings.data_dir)
    try:
        if settings.langgraph_url and settings.langgraph_assistant_id:
            from bot.remote import remote_runners

            runners = await remote_runners(
                settings.langgraph_url, settings.langgraph_assistant_id, settings.langgraph_api_key
            )
        else:
            runners = local_runners(settings.graph, db.checkpointer)
        jobs_app = await open_jobs(db.pool)
    except BaseException:
        await db.close()
        raise
    client = build_client(settings)
    engine = Engine(
        store=Store(db.pool),
        client=client,
        runners=runners,
        policy=settings.policy or Policy(),
        router=settings.router or Router(),
        registry=registry or Registry(),
        jobs=Jobs(jobs_app),
    )
    app = AsyncApp(
        signing_secret=settings.slack_signing_secret or "socket-mode",
        client=client,
        process_before_response=True,
        raise_error_for_unhandled_request=False,
    )
    listeners.register(app, engine)
    return Bot(settings=settings, db=db, engine=engine, jobs=jobs_app, app=app)


def build_web_app(bot: Bot) -> web.Application:
    """`POST /slack/events` for events and interactivity; `GET /healthz` is 200 only when the database answers."""

    async def slack_events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await bot.app.async_dispatch(await to_bolt_request(request)))

    async def healthz(request: web.Request) -> web.Response:
        if await bot.db.healthy():
            return web.json_response({"ok": True})
        return web.json_response({"ok": False, "error": "database unreachable"}, status=503)

    web_app = web.Application()
    web_app.router.add_post("/slack/events", slack_events)
    web_app.router.add_get("/healthz", healthz)
    return web_app


async def serve_http(bot: Bot, *, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start the HTTP server; port 0 picks a free port, which is returned."""
    runner = web.AppRunner(build_web_app(bot), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    return runner, int(bound)
