"""Value types and ports shared by the Slack edge, the flows and the jobs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import psycopg
from psycopg_pool import PoolTimeout

Conn = psycopg.AsyncConnection[Any]
DATABASE_ERRORS = (psycopg.OperationalError, PoolTimeout)
"""The database went away: a job is retried (procrastinate) and picks up where the records say it was."""


@dataclass(frozen=True)
class Refused:
    """The person's action did nothing; `text` (mrkdwn) is shown to them alone, `plain` inside a modal."""

    text: str
    plain: str


@dataclass(frozen=True)
class Accepted:
    """The action was taken and is durable; `keys` are the outbox rows that show it, to send now."""

    keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class Where:
    """The message a button or modal came from: it must be the request's own message."""

    channel_id: str | None
    message_ts: str | None


class Deferrer(Protocol):
    """Queues the durable jobs, each in the caller's transaction; implemented by bot.jobs on procrastinate."""

    async def defer_turn(self, conn: Conn, conversation_id: str, *, team_id: str, channel_id: str, ts: str) -> None: ...

    async def defer_resume(self, conn: Conn, conversation_id: str, *, record_id: str) -> None: ...

    async def defer_timer(self, conn: Conn, *, record_id: str, stage: str, delay: float) -> int: ...

    async def cancel(self, job_ids: list[int]) -> None: ...
