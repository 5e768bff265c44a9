"""The Web API clients and the core of the gateway: one shared HTTP session, the client of the current team,
and `_call`, which tells a fault that may pass from one that won't and retries what may be repeated."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.teams import NoTeam, TeamClients, current_team

METADATA_EVENT = "lgslack_post"
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout", "team_added_to_org"}
)


class SlackUnavailable(Exception):
    """Slack did not answer, or answered with a fault that may pass: try again later. The call may have been
    carried out, unless `retry_after` is set: rate limited, not carried out, try again after that many seconds."""

    def __init__(self, description: str, *, retry_after: float | None = None) -> None:
        super().__init__(description)
        self.retry_after = retry_after


class SlackRefused(Exception):
    """Slack answered with an error that another try will not change (`message_not_found`, `channel_not_found`)."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class NotInstalled(SlackRefused):
    """The team has no installation (never installed, or uninstalled): nothing can be sent to it."""

    def __init__(self, team_id: str) -> None:
        super().__init__("not_installed")
        self.team_id = team_id


def open_session(timeout: float) -> aiohttp.ClientSession:
    """The one HTTP session a process shares between its Web API clients (one connection pool, kept alive); slack_sdk
    applies the session's timeout to each call. Close it at shutdown."""
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=max(1, round(timeout))))


def build_client(
    token: str | None,
    base_url: str,
    *,
    timeout: float,
    session: aiohttp.ClientSession | None = None,
    retries: bool = True,
) -> AsyncWebClient:
    """The Web API client. Only rate limits are retried by slack_sdk: every other fault is the gateway's to judge,
    because blindly re-sending a post after a reset connection posts it twice. Without `retries`, a call never
    sleeps in a Retry-After (the gateway's poster). Pass the process's `session` to reuse its connections."""
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        timeout=max(1, round(timeout)),
        session=session,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=3)] if retries else [],
    )


def _retry_after(exc: SlackApiError) -> float:
    for name, value in dict(getattr(exc.response, "headers", None) or {}).items():
        if name.lower() == "retry-after":
            try:
                return max(0.0, float(value[0] if isinstance(value, list | tuple) else value))
            except (TypeError, ValueError):
                break
    return 1.0


def describe(exc: BaseException) -> str:
    """A short, token-free description of a failed call for logs and records."""
    if isinstance(exc, SlackApiError):
        data = exc.response.data
        error = data.get("error") if isinstance(data, dict) else None
        return f"HTTP {exc.response.status_code} {error or 'non-JSON answer'}"
    return type(exc).__name__ + (f": {exc}" if str(exc) else "")


def classify(exc: BaseException) -> SlackUnavailable | SlackRefused:
    """Whether a failed call may succeed later (timeouts, resets, 5xx, rate limits) or never will."""
    if isinstance(exc, SlackApiError):
        data = exc.response.data
        error = data.get("error") if isinstance(data, dict) else None
        status = exc.response.status_code
        if status == 429:
            return SlackUnavailable(describe(exc), retry_after=_retry_after(exc))
        if status >= 500 or error in TRANSIENT_ERRORS or not isinstance(data, dict):
            return SlackUnavailable(describe(exc))
        return SlackRefused(str(error or f"http_{status}"))
    return SlackUnavailable(describe(exc))


TOKEN_ERRORS = frozenset({"invalid_auth", "token_revoked", "token_expired", "account_inactive", "not_authed"})
TRANSPORT_ERRORS = (SlackClientError, aiohttp.ClientError, asyncio.TimeoutError, OSError)


class Calls:
    """The gateway's core (its calls are in bot/slack/messages.py, reads.py and streaming.py). `client` is the
    single-token client, or (with `teams`) a token-less one that only carries the base URL, timeout and session;
    then each call uses the current team's clients."""

    def __init__(
        self, client: AsyncWebClient, retries: int = 2, backoff: float = 0.2, *, teams: TeamClients | None = None
    ) -> None:
        self._client = client
        self.retries = retries
        self.backoff = backoff
        self.teams = teams
        self._groups: dict[tuple[str, str], tuple[float, set[str]]] = {}
        self._me: dict[str, dict[str, str]] = {}
        self._no_status: set[str] = set()
        self._names: dict[tuple[str, str], str] = {}
        self._active: dict[str, tuple[AsyncWebClient, AsyncWebClient]] = {}
        # The same client without slack_sdk's retries: a post never sleeps, so it lasts at most one timeout.
        self._single_poster = AsyncWebClient(
            token=client.token,
            base_url=client.base_url,
            timeout=client.timeout,
            session=client.session,
            retry_handlers=[],
        )

    @property
    def multi_team(self) -> bool:
        """Whether calls are made per team (OAuth installations) rather than with one token."""
        return self.teams is not None

    def _team(self) -> str:
        team = current_team()
        if not team:
            raise NoTeam("a Slack call with no team to act for: no token is guessed in OAuth mode")
        return team

    @property
    def client(self) -> AsyncWebClient:
        """The client for the work in hand: the single token's, or the current team's (loaded by `_call`)."""
        if self.teams is None:
            return self._client
        team = self._team()
        if team not in self._active:
            raise NoTeam(f"team {team}'s client was not loaded before the call")
        return self._active[team][0]

    @property
    def _poster(self) -> AsyncWebClient:
        if self.teams is None:
            return self._single_poster
        return self._active[self._team()][1]

    def _key(self) -> str:
        """The cache key of the current team ("" with one token)."""
        return "" if self.teams is None else self._team()

    async def _ready(self) -> None:
        """Load (or refresh, when its token rotates) the current team's clients; raises NoTeam, NotInstalled."""
        if self.teams is not None:
            team = self._team()
            self._active[team] = await self.teams.clients(team)

    async def serves(self, team_id: str | None) -> bool:
        """Whether work for this team can reach Slack (always, with one token)."""
        if self.teams is None:
            return True
        return bool(team_id) and await self.teams.installed(str(team_id))

    @property
    def timeout(self) -> float:
        """The longest one post can last."""
        return float(self._client.timeout)

    async def _call(self, call: Callable[[], Awaitable[Any]], *, repeatable: bool) -> dict[str, Any]:
        await self._ready()
        attempt = 0
        while True:
            try:
                response = await call()
                return dict(response.data) if isinstance(response.data, dict) else {}
            except TRANSPORT_ERRORS as exc:
                problem = classify(exc)
                if isinstance(problem, SlackRefused) and self.teams is not None and problem.error in TOKEN_ERRORS:
                    self.teams.forget(self._team())  # reinstalled or rotated elsewhere: the next call reads it again
                if isinstance(problem, SlackRefused) or not repeatable or attempt >= self.retries:
                    raise problem from exc
                attempt += 1
                await asyncio.sleep(self.backoff * 2**attempt)
