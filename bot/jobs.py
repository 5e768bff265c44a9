"""Durable jobs on Postgres (procrastinate): one lock per conversation, so turns of a thread never overlap.

Jobs are queued in the caller's transaction (procrastinate's `connection=`), so a state change and the job that
carries it on commit together. Jobs that meet a database outage are retried with backoff; a periodic
reconciler re-drives anything else a crash left behind.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import procrastinate
import psycopg
from procrastinate import jobs as procrastinate_jobs
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.worker import Worker
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from bot.logs import set_ids
from bot.retention import run_retention
from bot.slack.teams import acting_for
from bot.slack.web import SlackUnavailable
from bot.types import Conn

if TYPE_CHECKING:
    from bot.flow.escalations import Escalations
    from bot.flow.projection import Projector
    from bot.flow.reconciler import Reconciler
    from bot.flow.turns import Turns

log = logging.getLogger(__name__)

TURN = "lgslack.turn"
RESUME = "lgslack.resume"
TIMER = "lgslack.timer"
RECONCILE = "lgslack.reconcile"
RETAIN = "lgslack.retain"
TRANSIENT = (psycopg.OperationalError, PoolTimeout, SlackUnavailable)
RETRY = procrastinate.RetryStrategy(max_attempts=8, exponential_wait=2, retry_exceptions=set(TRANSIENT))


@dataclass
class Flows:
    """What the job tasks run; put in the worker's context."""

    turns: Turns
    escalations: Escalations
    projector: Projector
    reconciler: Reconciler


class _WakefulWorker(Worker):
    """procrastinate's worker without a lost wake-up: it forgets a job notification that arrives while it fetches
    (it clears its flag after each fetch), so such a job waited for the next poll, a second. That is often the next
    job of a conversation, woken by the trigger of bot/db.py as the job before it ends. Here a notification during
    a fetch means one more fetch."""

    _woken = False

    async def _handle_notification(self, *, channel: str, notification: procrastinate_jobs.Notification) -> None:
        if notification["type"] == "job_inserted":
            self._woken = True
        await super()._handle_notification(channel=channel, notification=notification)

    async def _fetch_and_process_jobs(self) -> None:
        while True:
            self._woken = False
            await super()._fetch_and_process_jobs()
            if not self._woken or self._stop_event.is_set():
                return

    def poke(self) -> None:
        """What a "job inserted" notification does, without one."""
        self._woken = True
        self._new_job_event.set()


class _App(procrastinate.App):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.here: weakref.WeakSet[_WakefulWorker] = weakref.WeakSet()

    def _worker(self, **kwargs: Any) -> Worker:
        worker = _WakefulWorker(app=self, **{**self.worker_defaults, **kwargs})
        self.here.add(worker)
        return worker


def build_job_app(
    *, reconcile_every: int = 15, retention_days: int = 0, retention_schedule: str = "17 3 * * *"
) -> procrastinate.App:
    """The procrastinate app with our tasks; open it on the shared pool with `open_jobs`. With `retention_days`,
    a periodic job (on `retention_schedule`, cron) prunes what is older (bot/retention.py)."""
    app = _App(connector=procrastinate.PsycopgConnector())

    @app.task(name=TURN, pass_context=True, retry=RETRY)
    async def turn(context: procrastinate.JobContext, team_id: str, channel_id: str, ts: str) -> None:
        async with _for_team(_flows(context), team_id=team_id) as serves:
            if serves:
                await _flows(context).turns.handle_turn(team_id=team_id, channel_id=channel_id, ts=ts)

    @app.task(name=RESUME, pass_context=True, retry=RETRY)
    async def resume(context: procrastinate.JobContext, record_id: str) -> None:
        async with _for_team(_flows(context), record_id=record_id) as serves:
            if serves:
                await _flows(context).turns.handle_resume(record_id=record_id)

    @app.task(name=TIMER, pass_context=True, retry=RETRY)
    async def timer(context: procrastinate.JobContext, record_id: str, stage: str) -> None:
        flows = _flows(context)
        async with _for_team(flows, record_id=record_id) as serves:
            if not serves:
                return
            for conversation_id in await flows.escalations.handle_timer(record_id=record_id, stage=stage):
                await flows.projector.project(conversation_id=conversation_id)

    @app.periodic(cron=f"* * * * * */{max(1, min(reconcile_every, 59))}")
    @app.task(name=RECONCILE, pass_context=True, queueing_lock=RECONCILE)
    async def reconcile(context: procrastinate.JobContext, timestamp: int) -> None:
        await _flows(context).reconciler.reconcile()

    if retention_days > 0:

        @app.periodic(cron=retention_schedule)
        @app.task(name=RETAIN, pass_context=True, queueing_lock=RETAIN)
        async def retain(context: procrastinate.JobContext, timestamp: int) -> None:
            await run_retention(context, _flows(context).turns.store.pool, retention_days)

    return app


@asynccontextmanager
async def _for_team(flows: Flows, *, team_id: str | None = None, record_id: str | None = None) -> AsyncIterator[bool]:
    """Act for the job's team (its own, or its request's conversation's): yields whether that team is installed
    (always, with one token). A job of an uninstalled team does nothing (said once in the log)."""
    gateway = flows.projector.gateway
    if gateway.multi_team and team_id is None and record_id is not None:
        record = await flows.turns.store.get_interrupt(record_id)
        if record is not None:
            team_id = (await flows.turns.store.get_conversation(record.conversation_id)).team_id
    with acting_for(team_id):
        yield await gateway.serves(team_id)


def _flows(context: procrastinate.JobContext) -> Flows:
    if context.job is not None:
        set_ids(job_id=context.job.id)  # each job runs in a task of its own: its log lines carry its id
    flows = context.additional_context.get("flows")
    if not isinstance(flows, Flows):
        raise RuntimeError("the worker was started without the flows in its context")
    return flows


DEFER_SQL = (
    "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW(%s, %s, 0, %s, NULL, %s, NULL)::procrastinate_job_to_defer_v1])"
)
"""One job (queue, task, lock, args), as procrastinate 3.10's `defer` makes it (tests/test_intake_race.py checks)."""


class Jobs:
    """Queues our jobs; each is locked by its conversation id."""

    def __init__(self, app: procrastinate.App, *, stalled_after: float = 30.0) -> None:
        self.app = app
        self.stalled_after = stalled_after

    async def defer_turn(self, conn: Conn, conversation_id: str, *, team_id: str, channel_id: str, ts: str) -> None:
        task = self.app.configure_task(TURN, lock=conversation_id, connection=conn)
        await task.defer_async(team_id=team_id, channel_id=channel_id, ts=ts)

    def turn_job(self) -> tuple[str, str]:
        task = self.app.tasks[TURN]
        return task.queue, task.name

    def wake_here(self) -> None:
        """Wake this process's job workers (`serve` with BOT_WORKERS): a job committed here starts without waiting
        for PostgreSQL's notification to come back (issue 11). Other processes are woken by that notification."""
        for worker in list(getattr(self.app, "here", ())):
            worker.poke()

    async def defer_resume(self, conn: Conn, conversation_id: str, *, record_id: str) -> None:
        """Queued by procrastinate's own SQL function, as its `defer` does, but reading no result: in a pipelined
        transaction (a decision's) it goes out with the statements around it instead of a round trip of its own."""
        task = self.app.tasks[RESUME]
        await conn.execute(DEFER_SQL, (task.queue, task.name, conversation_id, Jsonb({"record_id": record_id})))

    async def defer_timer(self, conn: Conn, *, record_id: str, stage: str, delay: float) -> int:
        """A durable timer: a job scheduled `delay` seconds from now; its id, to cancel it.

        Timers take no conversation lock: a waiting job with a lock would hold back every later job of that
        lock until it is due. A timeout that resumes the graph queues a resume job, which takes the lock.
        """
        task = self.app.configure_task(TIMER, schedule_in={"seconds": delay}, connection=conn)
        return int(await task.defer_async(record_id=record_id, stage=stage))

    async def cancel(self, job_ids: list[int]) -> None:
        for job_id in job_ids:
            await self.app.job_manager.cancel_job_by_id_async(job_id)

    # for the reconciler: never two waiting copies of one job

    async def requeue_turn(self, conversation_id: str, *, team_id: str, channel_id: str, ts: str) -> bool:
        lock = f"turn:{team_id}:{channel_id}:{ts}"
        task = self.app.configure_task(TURN, lock=conversation_id, queueing_lock=lock)
        try:
            await task.defer_async(team_id=team_id, channel_id=channel_id, ts=ts)
        except AlreadyEnqueued:
            return False
        return True

    async def requeue_resume(self, conversation_id: str, *, record_id: str) -> bool:
        task = self.app.configure_task(RESUME, lock=conversation_id, queueing_lock=f"resume:{record_id}")
        try:
            await task.defer_async(record_id=record_id)
        except AlreadyEnqueued:
            return False
        return True

    async def requeue_stalled(self) -> int:
        """Put back in the queue the jobs of workers that stopped (killed, crashed): their locks are freed."""
        stalled = list(await self.app.job_manager.get_stalled_jobs(seconds_since_heartbeat=self.stalled_after))
        for job in stalled:
            log.warning("retrying job %s (%s) of a worker that stopped", job.id, job.task_name)
            await self.app.job_manager.retry_job(job)
        return len(stalled)


async def open_jobs(
    pool: AsyncConnectionPool[Any],
    *,
    reconcile_every: int = 15,
    retention_days: int = 0,
    retention_schedule: str = "17 3 * * *",
) -> procrastinate.App:
    app = build_job_app(
        reconcile_every=reconcile_every, retention_days=retention_days, retention_schedule=retention_schedule
    )
    await app.open_async(pool)
    return app


def worker_options(
    flows: Flows, *, concurrency: int, name: str, stalled_after: float, graceful: float
) -> dict[str, Any]:
    return {
        "update_heartbeat_interval": min(10.0, stalled_after / 4),
        "stalled_worker_timeout": stalled_after,
        "concurrency": concurrency,
        "name": name,
        "wait": True,
        "install_signal_handlers": False,
        "additional_context": {"flows": flows},
        "delete_jobs": "successful",
        "fetch_job_polling_interval": 1.0,
        "shutdown_graceful_timeout": graceful,
    }


async def supervise_worker(app: procrastinate.App, options: dict[str, Any], *, state: dict[str, bool]) -> None:
    """Run a worker until this task is cancelled. A worker that stops by itself — it raises, or returns because
    the database went away under it — is started again, after a pause that grows while it keeps failing.
    `state["up"]` says whether one is running."""
    pause = 0.5
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        state["up"] = True
        try:
            await app.run_worker_async(**options)
            log.error("the job worker stopped; starting it again in %.1f s", pause)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("the job worker stopped (%s: %s); starting it again in %.1f s", type(exc).__name__, exc, pause)
        finally:
            state["up"] = False
        if loop.time() - started > 30:
            pause = 0.5
        await asyncio.sleep(pause)
        pause = min(pause * 2, 10.0)
