"""Durable jobs on Postgres (procrastinate): one lock per conversation, so turns of a thread never overlap.

Jobs are queued in the caller's transaction (procrastinate's `connection=`), so a state change and the job that
carries it on commit together. Jobs that meet a database outage are retried with backoff; a periodic
reconciler re-drives anything else a crash left behind.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import procrastinate
import psycopg
from procrastinate import job_context
from procrastinate import jobs as procrastinate_jobs
from procrastinate.exceptions import AlreadyEnqueued, ConnectorException
from procrastinate.worker import Worker
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from bot.logs import set_ids
from bot.records.claims import Claimed, claim_insert
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
QUEUE_FAULTS = (*TRANSIENT, ConnectorException)
"""What procrastinate's own calls raise when the database fails them (it wraps psycopg's errors)."""


def _transient(exc: BaseException) -> bool:
    """A fault that passes (the database away), as opposed to a refusal (a job no longer there)."""
    return isinstance(exc, TRANSIENT) or isinstance(exc.__cause__, TRANSIENT)


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
                await _flows(context).turns.handle_resume(record_id=record_id, first=_first_read(context))

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


def _first_read(context: procrastinate.JobContext) -> Any:
    """What the statement that claimed the job read for it (`Claims`), if it did: the job starts from it."""
    return context.additional_context.get("first_read")


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
        transaction (a decision's) it goes out with the statements around it instead of a round trip of its own. In a
        `claiming` scope, it may be claimed for this process instead (`CLAIM_SQL`), its answer read after the commit."""
        task = self.app.tasks[RESUME]
        claim = _CLAIM.get()
        if claim is not None and claim.job is None:
            # In a `claiming` scope (an intake's decision): the job may be claimed for this process instead.
            args = {"record_id": record_id}
            params = {
                "queue": task.queue,
                "task": task.name,
                "lock": conversation_id,
                "args": Jsonb(args),
                "worker": claim.worker_id,
            }
            claim.cursor = await conn.execute(CLAIM_SQL, params)
            claim.job = (task.name, conversation_id, args)
            if claim.claims is not None:
                # The job's first read, in the same transaction: it reads only if the job was claimed.
                claim.read = await claim.claims.resume_read(conn, record_id)
            return
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


class Claims:
    """The jobs an intake process runs itself (issue 11, `BOT_INTAKE_TURNS`): a message taken in, or a decision
    taken, while the intake has a place free gets its job (the turn, the resume) inserted already running (`doing`)
    for this process, by the statement that records it (`Store.take_in`, `Jobs.defer_resume` in a `claiming`
    scope), and run here right after the commit, as a worker would run it, with no hand-over to a worker (no
    notification, no fetch). The job is procrastinate's own row, locked by its conversation like any other, so it
    is claimed only when no other job of the conversation is waiting or running.

    This process is a worker to procrastinate: registered, with a heartbeat. If it dies, the job is a stalled
    job of a stalled worker and the reconciler requeues it (as for a `worker` process); a job that raises is retried
    by the workers with the task's own strategy; one cut short at shutdown is put back in the queue; a job claimed
    for this process and not run here (its id never came back) is put back in the queue by the heartbeat."""

    def __init__(self, app: procrastinate.App, flows: Flows, *, limit: int, stalled_after: float) -> None:
        self.app = app
        self.flows = flows
        self.limit = limit
        self.stalled_after = stalled_after
        self.worker_id: int | None = None
        self.running: dict[int, asyncio.Task[None]] = {}
        self.reserved = 0
        self._heartbeat: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Register this process as a worker, with its heartbeat; until then (or if that fails) nothing is
        claimed."""
        if self.limit <= 0:
            return
        try:
            self.worker_id = await self.app.job_manager.register_worker()
        except QUEUE_FAULTS as exc:
            log.warning("the intake runs no job itself (could not register it as a worker: %s)", exc)
            return
        self._heartbeat = asyncio.create_task(self._beat(), name="intake-heartbeat")

    async def _beat(self) -> None:
        every = min(10.0, self.stalled_after / 4)
        while True:
            await asyncio.sleep(every)
            try:
                await self.beat()
            except Exception as exc:  # the heartbeat never stops while the process runs
                log.warning("the intake's heartbeat failed (%s); trying again in %.0f s", exc, every)

    async def beat(self) -> None:
        """The heartbeat, and the jobs held for this process that it does not run (claimed, but the claim's answer
        was lost): back in the queue."""
        assert self.worker_id is not None
        await self.app.job_manager.update_heartbeat(self.worker_id)
        rows = await self.app.connector.execute_query_all_async(HELD_SQL, worker_id=self.worker_id)
        held = [int(row["id"]) for row in rows]
        if self.reserved:
            return  # a claim is being answered: its job may be one of these
        for job_id in held:
            if job_id not in self.running:
                log.warning("job %s was claimed for the intake and not run here: back in the queue", job_id)
                await self.app.job_manager.retry_job_by_id_async(job_id, retry_at=datetime.datetime.now(datetime.UTC))

    def reserve(self) -> int | None:
        """The worker id to claim a job for, with a place kept for it (give it back with `release` unless the job
        was claimed and `start`ed); None: this process runs no more jobs now."""
        if self.worker_id is None or self._heartbeat is None or self._heartbeat.done():
            return None
        if len(self.running) + self.reserved >= self.limit:
            return None
        self.reserved += 1
        return self.worker_id

    def release(self) -> None:
        self.reserved -= 1

    async def resume_read(self, conn: Conn, record_id: str) -> Callable[[], Awaitable[Any]] | None:
        """The first read of the resume job of `record_id` claimed for this process, sent in the transaction that
        claims it, right after the claim (`Turns.resume_read`); what reads it after the commit, or None: the job
        reads it itself."""
        if self.worker_id is None or self.flows is None:
            return None
        return await self.flows.turns.resume_read(conn, Claimed(self.worker_id, RESUME), record_id)

    def start(
        self, job_id: int, task_name: str, lock: str, kwargs: dict[str, Any], *, first: Any = None
    ) -> asyncio.Task[None]:
        """Run the claimed job `job_id` of task `task_name` (its place was reserved); `first`: what the statement
        that claimed it read for it (`resume_read`), if it did. Returns the task running it."""
        self.reserved -= 1
        job = procrastinate_jobs.Job(
            id=job_id,
            status="doing",
            queue=self.app.tasks[task_name].queue,
            lock=lock,
            queueing_lock=None,
            task_name=task_name,
            task_kwargs=kwargs,
            worker_id=self.worker_id,
        )
        # A task of its own, outside any claiming scope of its caller's.
        task = asyncio.create_task(self._run(job, first), name=f"intake-job:{job_id}", context=contextvars.Context())
        self.running[job_id] = task
        task.add_done_callback(lambda _: self.running.pop(job_id, None))
        return task

    async def _run(self, job: procrastinate_jobs.Job, first: Any = None) -> None:
        task = self.app.tasks[job.task_name]
        context = job_context.JobContext(
            app=self.app,
            worker_name="intake",
            job=job,
            start_timestamp=time.time(),
            additional_context={"flows": self.flows, "first_read": first},
            abort_reason=lambda: None,
        )
        try:
            await task.func(context, **job.task_kwargs)
        except asyncio.CancelledError:
            # Cut short at shutdown: back in the queue for a worker (if that fails too, it is a stalled job).
            with _quiet_fault():
                await self.app.job_manager.retry_job(job)
            raise
        except Exception as exc:
            retry = task.get_retry_exception(exception=exc, job=job)
            if retry is not None:
                decision = retry.retry_decision
                log.warning("job %s failed (%s: %s); the workers retry it", job.id, type(exc).__name__, exc)
                await self._settle(
                    lambda: self.app.job_manager.retry_job(
                        job,
                        retry_at=decision.retry_at,
                        priority=decision.priority,
                        queue=decision.queue,
                        lock=decision.lock,
                    )
                )
            else:
                log.error("job %s failed", job.id, exc_info=exc)
                await self._settle(
                    lambda: self.app.job_manager.finish_job(job, procrastinate_jobs.Status.FAILED, delete_job=False)
                )
        else:
            await self._settle(
                lambda: self.app.job_manager.finish_job(job, procrastinate_jobs.Status.SUCCEEDED, delete_job=True)
            )

    async def _settle(self, step: Callable[[], Awaitable[None]]) -> None:
        """Record how the job ended, however long the database takes to answer: until then the job is this live
        worker's, and no one else would carry it on. Cut short (shutdown), it is left as a stalled job."""
        pause = 0.5
        while True:
            try:
                await step()
                return
            except QUEUE_FAULTS as exc:
                if not _transient(exc):
                    log.error("could not record a job's end: %s", exc)
                    return
                log.warning("could not record a job's end (%s); trying again in %.1f s", exc, pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 10.0)

    async def close(self, grace: float) -> None:
        """Let the jobs running here finish within `grace` seconds, then cut them short (their jobs go back to the
        queue), and unregister: a job this process still held is then a stalled job, requeued by the reconciler."""
        if self.running:
            await asyncio.wait(set(self.running.values()), timeout=grace)
        for task in list(self.running.values()):
            task.cancel()
        if self.running:
            await asyncio.wait(set(self.running.values()), timeout=3)
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        if self.worker_id is not None:
            with _quiet_fault():
                await self.app.job_manager.unregister_worker(self.worker_id)
            self.worker_id = None


@dataclass
class ClaimScope:
    """What a `claiming` scope started: the task running the job it claimed for this process, once it has ended
    (None: nothing was claimed, the job went to the queue)."""

    running: asyncio.Task[None] | None = None


@dataclass
class Claim:
    """A place this process keeps for a job it may claim in a `claiming` scope: the worker id to claim for, and the
    claiming statement's cursor (its answer is read once the transaction has committed)."""

    worker_id: int
    cursor: Any = None
    job: tuple[str, str, dict[str, Any]] | None = None
    """The claimed job's task, lock and arguments."""
    claims: Claims | None = None
    read: Callable[[], Awaitable[Any]] | None = None
    """What reads the claimed job's first read (`Claims.resume_read`), sent in the claiming transaction."""

    async def claimed(self) -> int | None:
        """The id of the job claimed in this scope (None: none was, or it went to the queue instead)."""
        if self.cursor is None:
            return None
        row = await self.cursor.fetchone()
        return int(row["claimed"]) if row and row["claimed"] is not None else None


_CLAIM: contextvars.ContextVar[Claim | None] = contextvars.ContextVar("lgslack_claim", default=None)


@asynccontextmanager
async def claiming(claims: Claims | None) -> AsyncIterator[ClaimScope]:
    """A scope in which a resume job queued (`Jobs.defer_resume`, once) may be claimed for this process, if it has
    a place free (`Claims`): it runs here once the scope ends with its transaction committed (the scope's `running`).
    A scope that raises starts nothing (a job it claimed anyway is put back in the queue by the heartbeat)."""
    scope = ClaimScope()
    worker = claims.reserve() if claims is not None else None
    if claims is None or worker is None:
        yield scope
        return
    claim = Claim(worker, claims=claims)
    token = _CLAIM.set(claim)
    ended = False
    try:
        yield scope
        ended = True
    finally:
        _CLAIM.reset(token)
        job_id, first = None, None
        if ended and claim.job is not None:
            try:
                job_id = await claim.claimed()
            except Exception:
                log.warning("could not read a claimed job's id; the heartbeat puts it back in the queue", exc_info=True)
            if job_id is not None and claim.read is not None:
                try:
                    first = await claim.read()
                except Exception:
                    log.warning("could not read a claimed job's first read; the job reads it again", exc_info=True)
        if job_id is not None and claim.job is not None:
            scope.running = claims.start(job_id, *claim.job, first=first)
        else:
            claims.release()


HELD_SQL = "SELECT id FROM procrastinate_jobs WHERE worker_id = %(worker_id)s AND status = 'doing'"
"""The jobs held for a worker."""

CLAIM_SQL = f"""
WITH claimed AS ({claim_insert(lock="%(lock)s::text", args="%(args)s")}
), deferred AS (
    SELECT procrastinate_defer_jobs_v1(ARRAY[ROW(
        %(queue)s::text, %(task)s::text, 0, %(lock)s::text, NULL, %(args)s, NULL
    )::procrastinate_job_to_defer_v1]) AS ids
    WHERE NOT EXISTS (SELECT 1 FROM claimed)
)
SELECT (SELECT id FROM claimed) AS claimed, (SELECT ids FROM deferred) AS jobs
"""
"""A job inserted running for `worker` when nothing else of its lock waits or runs (and the unique index of
running locks agrees), else queued as procrastinate's `defer` queues it (`DEFER_SQL`)."""


@contextmanager
def _quiet_fault() -> Iterator[None]:
    """A step whose failure something else makes up for (the stalled jobs' requeue): logged, not raised."""
    try:
        yield
    except QUEUE_FAULTS as exc:
        log.warning("the job queue could not be told (%s); the reconciler will requeue the job", exc)
