"""Putting the bot together: database, runner, flows, gateway, Bolt app, job queue, worker, HTTP server."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import uuid
from dataclasses import dataclass, field

import aiohttp
import procrastinate
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier

from bot.config import Settings
from bot.db import Database, open_database
from bot.flow.decisions import Decisions
from bot.flow.escalations import Escalations
from bot.flow.inbox import Inbox
from bot.flow.projection import Projector
from bot.flow.reconciler import Reconciler
from bot.flow.replies import Replies
from bot.flow.turns import Turns
from bot.interrupts.registry import Registry, default_renderers
from bot.jobs import Claims, Flows, Jobs, open_jobs, supervise_worker, worker_options
from bot.logs import set_ids
from bot.records.outbox import Outbox
from bot.records.runs import Runs
from bot.rules.policy import Policy
from bot.rules.routing import Router
from bot.runners.local import local_runners
from bot.slack import assistant, listeners
from bot.slack import oauth as multi
from bot.slack.gateway import Gateway
from bot.slack.web import build_client, open_session
from bot.store import Store

log = logging.getLogger(__name__)


@dataclass
class Worker:
    """A supervised job worker: restarted when it stops on an error; healthy while it runs."""

    task: asyncio.Task[None]
    state: dict[str, bool]

    @property
    def healthy(self) -> bool:
        return not self.task.done() and self.state.get("up", False)


@dataclass
class Bot:
    settings: Settings
    db: Database
    flows: Flows
    door: listeners.Door
    jobs: procrastinate.App
    app: AsyncApp
    workers: list[Worker] = field(default_factory=list)
    session: aiohttp.ClientSession | None = None
    """The HTTP session every Web API client of the process shares; closed last."""
    claims: Claims | None = None
    """The turns the intake runs itself (`open_claims`)."""

    @property
    def store(self) -> Store:
        return self.door.store

    def start_workers(self, count: int | None = None) -> None:
        count = self.settings.workers if count is None else count
        if count <= 0:
            return
        name = f"{socket.gethostname()}-{os.getpid()}-{len(self.workers)}"
        options = worker_options(
            self.flows,
            concurrency=count,
            name=name,
            stalled_after=self.settings.stalled_after,
            graceful=self.settings.shutdown_grace,
        )
        state = {"up": False}
        task = asyncio.create_task(supervise_worker(self.jobs, options, state=state), name=f"worker:{name}")
        self.workers.append(Worker(task=task, state=state))

    async def open_claims(self) -> None:
        """Let the intake run turns itself (`BOT_INTAKE_TURNS`), for `serve` and `socket`: a turn taken in while
        nothing else is starts without a hand-over to a worker (bot/jobs.py Claims)."""
        if self.settings.intake_turns <= 0 or self.claims is not None:
            return
        claims = Claims(
            self.jobs, self.flows, limit=self.settings.intake_turns, stalled_after=self.settings.stalled_after
        )
        await claims.open()
        self.claims = self.door.claims = claims

    def healthy_workers(self) -> bool:
        return all(worker.healthy for worker in self.workers)

    async def close(self) -> None:
        """Stop within the grace period: running jobs get `shutdown_grace` seconds, then are cut short (the next
        worker carries them on from their records)."""
        self.door.claims = None
        claimed = asyncio.create_task(self.claims.close(self.settings.shutdown_grace)) if self.claims else None
        await self.door.drain(timeout=min(2.0, self.settings.shutdown_grace))
        for worker in self.workers:
            worker.task.cancel()
        for worker in self.workers:
            try:
                await asyncio.wait_for(worker.task, timeout=self.settings.shutdown_grace + 3)
            except (asyncio.CancelledError, TimeoutError):
                pass
            except Exception:
                log.exception("worker stopped with an error")
        if claimed is not None:
            await claimed
        await self.jobs.close_async()
        await self.db.close()
        if self.session is not None:
            await self.session.close()


async def build_bot(settings: Settings, *, registry: Registry | None = None) -> Bot:
    """Open everything a bot process needs. Raises ConfigError for a bad setting."""
    db = await open_database(
        settings.database_url, settings.data_dir, prepare=settings.prepared_statements, wait=settings.database_wait
    )
    try:
        if settings.langgraph_url and settings.langgraph_assistant_id:
            from bot.runners.server import remote_runners

            runners = await remote_runners(
                settings.langgraph_url,
                settings.langgraph_assistant_id,
                settings.langgraph_api_key,
                options=settings.graph_options,
                allowed=settings.graphs,
            )
        else:
            runners = local_runners(
                settings.graph, db.checkpointer, options=settings.graph_options, allowed=settings.graphs
            )
        jobs_app = await open_jobs(
            db.pool,
            reconcile_every=settings.reconcile_every,
            retention_days=settings.retention_days,
            retention_schedule=settings.retention_schedule,
        )
    except BaseException:
        await db.close()
        raise
    # One HTTP session for every Web API client (issue 11). With OAuth the app's client has no token: each team's
    # token comes from its installation (bot/slack/oauth.py).
    session = open_session(settings.slack_timeout)
    token = None if settings.oauth else settings.slack_bot_token
    client = build_client(token, settings.slack_api_url, timeout=settings.slack_timeout, session=session)
    installed = multi.build_oauth(settings, db.pool, client, session) if settings.oauth else None
    gateway = Gateway(client, teams=installed.installations if installed else None)
    registry = registry or Registry([*settings.renderers, *default_renderers()])
    store, outbox, runs = Store(db.pool), Outbox(db.pool), Runs(db.pool)
    jobs = Jobs(jobs_app, stalled_after=settings.stalled_after)
    inbox = Inbox(store=store, registry=registry, policy=settings.policy or Policy(), gateway=gateway)
    projector = Projector(store=store, outbox=outbox, gateway=gateway, registry=registry, inbox=inbox)
    decisions = Decisions(
        store=store, outbox=outbox, jobs=jobs, registry=registry, gateway=gateway, policy=settings.policy or Policy()
    )
    replies = Replies(store=store, outbox=outbox, registry=registry, decisions=decisions, gateway=gateway)
    turns = Turns(
        store=store,
        runs=runs,
        outbox=outbox,
        runners=runners,
        registry=registry,
        router=settings.router or Router(),
        jobs=jobs,
        projector=projector,
        gateway=gateway,
        decisions=decisions,
        replies=replies,
        status_delay=settings.status_delay,
    )
    flows = Flows(
        turns=turns,
        escalations=Escalations(store=store, outbox=outbox, registry=registry, decisions=decisions),
        projector=projector,
        reconciler=Reconciler(
            store=store, runs=runs, outbox=outbox, projector=projector, jobs=jobs, older_than=settings.stalled_after
        ),
    )
    app = AsyncApp(
        signing_secret=settings.slack_signing_secret or "socket-mode",
        client=client,
        process_before_response=True,
        # Unhandled requests go to the door's error handler, which acknowledges them (a 404 makes Slack retry).
        raise_error_for_unhandled_request=True,
        **multi.app_options(installed),
    )
    if installed is not None:
        multi.register(app, installed, db.pool)  # first: every listener acts for its request's team
    door = listeners.Door(
        store=store,
        jobs=jobs,
        decisions=decisions,
        turns=turns,
        projector=projector,
        gateway=gateway,
        default_graph=runners.default,
        single_team=installed is None,
    )
    listeners.register(app, door)
    assistant.register(app, door, settings.graph_options)
    return Bot(settings=settings, db=db, flows=flows, door=door, jobs=jobs_app, app=app, session=session)


def build_web_app(bot: Bot, *, events: bool = True) -> web.Application:
    """`POST /slack/events` for events and interactivity (unless `events` is False, as under Socket Mode);
    `GET /healthz` is 200 only when the database answers and the job worker runs."""
    # Socket Mode needs no signing secret (nothing is posted to us): no verifier then.
    verifier = SignatureVerifier(bot.settings.slack_signing_secret) if events else None

    async def slack_events(request: web.Request) -> web.Response:
        assert verifier is not None
        # Each request is a task of its own: its log lines carry this id (a proxy's X-Request-Id if it sets one).
        set_ids(request_id=request.headers.get("X-Request-Id") or uuid.uuid4().hex[:12])
        body = await request.read()
        # The signature is checked on the raw bytes before anything is parsed.
        try:
            signed = verifier.is_valid_request(body, dict(request.headers))
        except (ValueError, TypeError):
            # slack_sdk raises on a non-numeric timestamp (int()), a non-ASCII signature (compare_digest) and a
            # body that isn't UTF-8 (it decodes before hashing): none of them can be a request signed by Slack.
            signed = False
        if not signed:
            return web.json_response({"error": "invalid request signature"}, status=401)
        if request.content_type == "application/json":
            try:
                payload = json.loads(body)
            except ValueError:
                payload = None
            try:
                if await bot.door.fast_event(payload):
                    return web.Response(status=200)
            except Exception:
                # As Bolt answers a listener that raised: Slack delivers the event again.
                log.exception("taking in a message failed")
                return web.Response(status=500)
        try:
            text = body.decode("utf-8")
            bolt_request = AsyncBoltRequest(body=text, query=request.query_string, headers=dict(request.headers))
        except (UnicodeDecodeError, ValueError, TypeError, KeyError, AttributeError):
            log.warning("refused a signed request whose body can't be read")
            return web.json_response({"error": "malformed body"}, status=400)
        if not listeners.readable(bolt_request.body):
            log.warning("refused a signed request whose payload Bolt can't take apart")
            return web.json_response({"error": "malformed payload"}, status=400)
        return await to_aiohttp_response(await bot.app.async_dispatch(bolt_request))

    async def healthz(request: web.Request) -> web.Response:
        if not await bot.db.healthy():
            return web.json_response({"ok": False, "error": "database unreachable"}, status=503)
        if not bot.healthy_workers():
            return web.json_response({"ok": False, "error": "job worker not running"}, status=503)
        return web.json_response({"ok": True})

    web_app = web.Application()
    if events:
        web_app.router.add_post("/slack/events", slack_events)
    web_app.router.add_get("/healthz", healthz)
    multi.add_routes(web_app, bot.app)
    return web_app


async def serve_http(bot: Bot, *, host: str, port: int, events: bool = True) -> tuple[web.AppRunner, int]:
    """Start the HTTP server (without `POST /slack/events` when not `events`); port 0 picks a free port, which
    is returned."""
    runner = web.AppRunner(build_web_app(bot, events=events), access_log=None, shutdown_timeout=3.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    return runner, int(bound)


class _OneLineRetries(logging.Filter):
    """slack_sdk logs every failed Socket Mode connection attempt with a traceback (and a failed
    apps.connections.open twice): say it in one line per attempt."""

    def __init__(self, every: float) -> None:
        super().__init__()
        self.every = every

    def filter(self, record: logging.LogRecord) -> bool:
        text = str(record.msg)
        if text.startswith("Failed to retrieve WSS URL"):
            return False  # the "Failed to connect" line that follows says it
        if text.startswith("Failed to connect") and record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            if isinstance(exc, SlackApiError):
                reason = f"apps.connections.open answered {exc.response.get('error')}"
            else:
                reason = f"{type(exc).__name__}: {' '.join(str(exc).split())}".rstrip(": ")
            record.msg, record.args = "Socket Mode: can't connect to Slack (%s); retrying in %g s", (reason, self.every)
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def socket_mode_handler(bot: Bot, *, ping_interval: float = 10.0) -> AsyncSocketModeHandler:
    """Bolt's Socket Mode handler (slack_sdk's aiohttp client) for the bot's app, with the app-level token; it
    opens its connection through the bot's Web API client (so `SLACK_API_URL` applies) and retries every
    `ping_interval` seconds while Slack can't be reached."""
    logger = logging.getLogger("bot.socket")
    if not any(isinstance(f, _OneLineRetries) for f in logger.filters):
        logger.addFilter(_OneLineRetries(ping_interval))
    return AsyncSocketModeHandler(bot.app, bot.settings.slack_app_token, logger=logger, ping_interval=ping_interval)
