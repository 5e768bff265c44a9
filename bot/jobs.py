"""Durable jobs on Postgres (procrastinate): one lock per conversation, so turns of a thread never overlap."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import procrastinate
from psycopg_pool import AsyncConnectionPool

from bot.engine import Engine

log = logging.getLogger(__name__)

TURN = "lgslack.turn"
RESUME = "lgslack.resume"
TIMER = "lgslack.timer"


def build_job_app() -> procrastinate.App:
    """The procrastinate app with our tasks; open it on the shared pool with `open_jobs`."""
    app = procrastinate.App(connector=procrastinate.PsycopgConnector())

    @app.task(name=TURN, pass_context=True)
    async def turn(context: procrastinate.JobContext, team_id: str, channel_id: str, ts: str) -> None:
        await _engine(context).handle_turn(team_id=team_id, channel_id=channel_id, ts=ts)

    @app.task(name=RESUME, pass_context=True)
    async def resume(context: procrastinate.JobContext, record_id: str) -> None:
        await _engine(context).handle_resume(record_id=record_id)

    @app.task(name=TIMER, pass_context=True)
    async def timer(context: procrastinate.JobContext, record_id: str, stage: str) -> None:
        await _engine(context).handle_timer(record_id=record_id, stage=stage)

    return app


def _engine(context: procrastinate.JobContext) -> Engine:
    engine = context.additional_context.get("engine")
    if not isinstance(engine, Engine):
        raise RuntimeError("the worker was started without an engine in its context")
    return engine


class Jobs:
    """Defers our jobs; each is locked by its conversation id."""

    def __init__(self, app: procrastinate.App) -> None:
        self.app = app

    async def defer_turn(self, conversation_id: str, *, team_id: str, channel_id: str, ts: str) -> None:
        await self.app.configure_task(TURN, lock=conversation_id).defer_async(
            team_id=team_id, channel_id=channel_id, ts=ts
        )

    async def defer_resume(self, conversation_id: str, *, record_id: str) -> None:
        await self.app.configure_task(RESUME, lock=conversation_id).defer_async(record_id=record_id)

    async def defer_timer(self, *, record_id: str, stage: str, delay: float) -> int:
        """A durable timer: a job scheduled `delay` seconds from now; its id, to cancel it.

        Timers take no conversation lock: a waiting job with a lock would hold back every later job of that
        lock until it is due. A timeout that resumes the graph queues a resume job, which takes the lock.
        """
        task = self.app.configure_task(TIMER, schedule_in={"seconds": delay})
        return int(await task.defer_async(record_id=record_id, stage=stage))

    async def cancel(self, job_ids: list[int]) -> None:
        for job_id in job_ids:
            await self.app.job_manager.cancel_job_by_id_async(job_id)


async def open_jobs(pool: AsyncConnectionPool[Any]) -> procrastinate.App:
    app = build_job_app()
    await app.open_async(pool)
    return app


def start_worker(
    app: procrastinate.App, engine: Engine, *, concurrency: int, name: str, stalled_after: float = 60.0
) -> asyncio.Task[None]:
    """Run a worker in this event loop until the task is cancelled."""
    options: dict[str, Any] = {
        "update_heartbeat_interval": min(10.0, stalled_after / 4),
        "stalled_worker_timeout": stalled_after,
        "concurrency": concurrency,
        "name": name,
        "wait": True,
        "install_signal_handlers": False,
        "additional_context": {"engine": engine},
        "delete_jobs": "successful",
        "fetch_job_polling_interval": 1.0,
    }
    return asyncio.create_task(app.run_worker_async(**options), name=f"worker:{name}")


async def recover_stalled(app: procrastinate.App, *, stalled_after: float) -> int:
    """Put back in the queue the jobs of workers that stopped (killed, crashed): their locks are freed."""
    stalled = list(await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after))
    for job in stalled:
        log.warning("retrying job %s (%s) of a worker that stopped", job.id, job.task_name)
        await app.job_manager.retry_job(job)
    return len(stalled)


async def keep_recovering(app: procrastinate.App, *, stalled_after: float) -> None:
    while True:
        try:
            await recover_stalled(app, stalled_after=stalled_after)
        except Exception:
            log.exception("could not look for stalled jobs")
        await asyncio.sleep(stalled_after / 2)
