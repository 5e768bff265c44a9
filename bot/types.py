"""Value types and ports shared by the Slack edge, the flows, the records and the renderers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
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

    def turn_job(self) -> tuple[str, str]:
        """The queue and task name of a turn job, for intake to queue it in the statement that records its message."""
        ...

    def wake_here(self) -> None:
        """Wake this process's job workers, if it runs any, for jobs it has just committed."""
        ...

    async def defer_resume(self, conn: Conn, conversation_id: str, *, record_id: str) -> None: ...

    async def defer_timer(self, conn: Conn, *, record_id: str, stage: str, delay: float) -> int: ...

    async def cancel(self, job_ids: list[int]) -> None: ...


# What a request asks and what an answer gives back (the renderers in bot.interrupts produce and read these).

Progress = Mapping[str, Mapping[str, Any]]
"""Decisions already taken on the items of a multi-item request: key → {decision, text, user, verdict}."""


class InvalidAction(ValueError):
    """A button or modal that this request does not offer (stale or forged)."""


@dataclass(frozen=True)
class Request:
    """What an interrupt asks: its value and, when given, the JSON schema its answer must match."""

    value: Any
    schema: dict[str, Any] | None = None


@dataclass(frozen=True)
class Verdict:
    """One decision, as the audit records it."""

    decision: str
    action: str | None = None
    edited_args: Any = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "action": self.action,
            "edited_args": self.edited_args,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Answer:
    """The final answer: the value the graph resumes with, how to show it, and what to audit."""

    value: Any
    text: str
    verdicts: tuple[Verdict, ...] = ()


@dataclass(frozen=True)
class Step:
    """A decision on one item of a request with several; the request resumes once all are decided."""

    key: str
    decision: Any
    text: str
    verdict: Verdict


@dataclass(frozen=True)
class OpenModal:
    view: dict[str, Any]


Errors = dict[str, str]


@dataclass(frozen=True)
class SlackMessage:
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """As the outbox stores it; `SlackMessage(**stored)` reads it back."""
        return {"text": self.text, "blocks": self.blocks}
