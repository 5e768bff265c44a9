"""The SQL that claims a job for a worker as it is queued (issue 11: the intake runs the jobs it records when it
has a place free, `bot.jobs.Claims`)."""

from __future__ import annotations


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
