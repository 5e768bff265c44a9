"""The SQL that claims a job for a worker as it is queued (issue 11: the intake runs the jobs it records when it
has a place free, `bot.jobs.Claims`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def claim_insert(*, lock: str, args: str, source: str = "", condition: str = "TRUE") -> str:
    """The body of a CTE that inserts a job already running (`doing`) for the worker `%(worker)s` (task `%(task)s`
    on queue `%(queue)s`), RETURNING its id; no row, and nothing inserted, unless that worker is registered and no
    job of `lock` waits or runs (procrastinate's unique index of running locks refuses a second in any case).
    `lock` and `args` are SQL expressions over `source` (a FROM clause), `condition` one more condition."""
    return f"""
    INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args, status, worker_id)
    SELECT %(queue)s::text, %(task)s::text, {lock}, {args}, 'doing', %(worker)s::bigint
    {source}
    WHERE %(worker)s::bigint IS NOT NULL AND %(task)s::text IS NOT NULL AND {condition}
      AND EXISTS (SELECT 1 FROM procrastinate_workers w WHERE w.id = %(worker)s::bigint)
      AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs j WHERE j.lock = {lock} AND j.status IN ('todo', 'doing'))
    ON CONFLICT (lock) WHERE status = 'doing' DO NOTHING
    RETURNING id"""


@dataclass(frozen=True)
class Claimed:
    """A job a statement claims for `worker` (task `task`), as a later statement of the same transaction sees it: that
    statement (the job's first read) does its work only if the job is held for the worker, under its lock."""

    worker: int
    task: str

    def held(self, lock: str, **args: str) -> str:
        """The SQL condition: a job of task `task` held (`doing`) for `worker` on `lock`, whose arguments named in
        `args` are the SQL expressions given (as text)."""
        same = "".join(f" AND j.args->>'{name}' = {value}" for name, value in args.items())
        return (
            f"EXISTS (SELECT 1 FROM procrastinate_jobs j WHERE j.lock = {lock} AND j.status = 'doing'"
            f" AND j.worker_id = %(claim_worker)s::bigint AND j.task_name = %(claim_task)s::text{same})"
        )

    def params(self) -> dict[str, Any]:
        return {"claim_worker": self.worker, "claim_task": self.task}
