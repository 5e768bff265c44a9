"""The team the work in hand is for, so the gateway uses that team's token only (many workspaces, OAuth).

Set where work enters: `enter_team` in a Bolt middleware (each request), `acting_for` around each job and each
outbox row. Tasks started inside inherit it (asyncio copies the context). With one token it is not needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol

from slack_sdk.web.async_client import AsyncWebClient


class NoTeam(RuntimeError):
    """A call in OAuth mode with no team to act for: a bug at a boundary, never answered with some other token."""


_TEAM: ContextVar[str | None] = ContextVar("lgslack_team", default=None)


def current_team() -> str | None:
    """The team the work in hand is for (set with `acting_for`)."""
    return _TEAM.get()


def enter_team(team_id: str | None) -> None:
    """Make the rest of this task's Slack calls (and those of tasks it starts) for `team_id`: for a boundary that
    can't wrap the work in `acting_for`, such as a Bolt middleware; every request sets it anew."""
    _TEAM.set(team_id or None)


@contextmanager
def acting_for(team_id: str | None) -> Iterator[None]:
    """Make the Slack calls of this block (and of tasks it starts) for `team_id`."""
    token = _TEAM.set(team_id or None)
    try:
        yield
    finally:
        _TEAM.reset(token)


class TeamClients(Protocol):
    """Per-team clients (bot/slack/installations.py): the current token of a team's installation."""

    async def clients(self, team_id: str) -> tuple[AsyncWebClient, AsyncWebClient]:
        """(client, poster) for the team; raises NotInstalled."""
        ...

    async def installed(self, team_id: str) -> bool: ...

    def forget(self, team_id: str) -> None:
        """Drop the team's cached clients (its token was refused: read the installation again)."""
        ...
