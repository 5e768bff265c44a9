"""The gateway: every Slack Web API call the bot makes goes through here, so retries and idempotency live in
one place.

Calls that are safe to repeat (updates, reads, reactions) are retried on transient faults. `chat.postMessage`
is not: after an uncertain outcome (a timeout, a reset connection, a 5xx) the message may be in Slack already,
so `post` carries an idempotency key in the message metadata and `find_posted` looks for it before the caller
posts again. A 429 is retried by slack_sdk itself, honouring Retry-After (Slack did nothing with the call), except
for a post: the outbox holds a row for one post at a time (a lease as long as one call), and a post asleep in a
Retry-After longer than that would go out after another attempt took the row and posted it. A rate-limited post
raises, with the Retry-After for the caller to wait out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.slack import files as shared
from bot.slack.teams import NoTeam, TeamClients, current_team
from bot.types import SlackMessage

log = logging.getLogger(__name__)

METADATA_EVENT = "lgslack_post"
GROUP_CACHE_SECONDS = 60.0
StatusOutcome = Literal["shown", "refused", "failed"]
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


class Gateway:
    """`client` is the single-token client, or (with `teams`) a token-less one that only carries the base URL,
    timeout and session; then each call uses the current team's clients."""

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

    # posting, idempotently

    async def post(self, key: str, *, channel: str, thread_ts: str | None, message: SlackMessage) -> str:
        """Post once; the key goes into the message metadata so `find_posted` can tell it was stored."""
        response = await self._call(
            lambda: self._poster.chat_postMessage(
                channel=channel,
                thread_ts=thread_ts,
                text=message.text,
                blocks=message.blocks or None,
                unfurl_links=False,
                unfurl_media=False,
                metadata={"event_type": METADATA_EVENT, "event_payload": {"key": key}},
            ),
            repeatable=False,
        )
        return str(response["ts"])

    async def find_posted(self, key: str, *, channel: str, thread_ts: str | None, since: float) -> str | None:
        """The ts of the message posted with this key, if Slack has it."""
        oldest = f"{since - 60:.6f}"
        if thread_ts:
            response = await self._call(
                lambda: self.client.conversations_replies(
                    channel=channel, ts=thread_ts, oldest=oldest, include_all_metadata=True, limit=1000
                ),
                repeatable=True,
            )
        else:
            response = await self._call(
                lambda: self.client.conversations_history(
                    channel=channel, oldest=oldest, include_all_metadata=True, limit=1000
                ),
                repeatable=True,
            )
        for found in response.get("messages") or []:
            metadata = found.get("metadata") or {}
            if metadata.get("event_type") == METADATA_EVENT and (metadata.get("event_payload") or {}).get("key") == key:
                return str(found["ts"])
        return None

    # calls that may be repeated

    async def update(self, *, channel: str, ts: str, message: SlackMessage) -> None:
        await self._call(
            lambda: self.client.chat_update(channel=channel, ts=ts, text=message.text, blocks=message.blocks),
            repeatable=True,
        )

    async def ephemeral(self, *, channel: str, user: str, text: str, thread_ts: str | None = None) -> None:
        """A note for one person; best effort (it is an answer to them, not a record)."""
        try:
            await self._call(
                lambda: self.client.chat_postEphemeral(channel=channel, user=user, text=text, thread_ts=thread_ts),
                repeatable=False,
            )
        except (SlackUnavailable, SlackRefused) as exc:
            log.warning("could not tell %s: %s", user, exc)

    async def open_view(self, *, trigger_id: str, view: dict[str, Any]) -> None:
        await self._call(lambda: self.client.views_open(trigger_id=trigger_id, view=view), repeatable=False)

    async def publish_home(self, *, user: str, view: dict[str, Any]) -> None:
        """Publish a person's App Home tab (views.publish): safe to repeat, the last one published is shown."""
        await self._call(lambda: self.client.views_publish(user_id=user, view=view), repeatable=True)

    async def respond(self, url: str, message: SlackMessage, *, replace: bool = False) -> bool:
        """Answer a slash command or a click to the person alone, through its response_url; best effort."""
        hook = AsyncWebhookClient(
            url, timeout=max(1, round(self.timeout)), proxy=self._client.proxy or None, session=self._client.session
        )
        try:
            response = await hook.send(
                text=message.text,
                blocks=message.blocks or None,
                response_type="ephemeral",
                replace_original=True if replace else None,
            )
        except TRANSPORT_ERRORS as exc:
            log.warning("could not answer through a response_url: %s", describe(exc))
            return False
        if response.status_code != 200:
            log.warning("a response_url answered HTTP %s", response.status_code)
            return False
        return True

    async def react(self, *, channel: str, ts: str, name: str, add: bool) -> None:
        """A reaction as a progress sign: best effort, never in the way of the work."""
        try:
            if add:
                await self._call(
                    lambda: self.client.reactions_add(channel=channel, timestamp=ts, name=name), repeatable=False
                )
            else:
                await self._call(
                    lambda: self.client.reactions_remove(channel=channel, timestamp=ts, name=name), repeatable=False
                )
        except (SlackUnavailable, SlackRefused) as exc:
            log.debug("could not change the %s reaction: %s", name, exc)

    async def permalink(self, channel: str, ts: str) -> str | None:
        try:
            response = await self._call(
                lambda: self.client.chat_getPermalink(channel=channel, message_ts=ts), repeatable=True
            )
        except (SlackUnavailable, SlackRefused):
            return None
        return str(response.get("permalink") or "") or None

    async def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """The messages of a thread, or nothing if Slack can't say now."""
        try:
            response = await self._call(
                lambda: self.client.conversations_replies(channel=channel, ts=ts, limit=50), repeatable=True
            )
        except (SlackUnavailable, SlackRefused):
            return []
        return list(response.get("messages") or [])

    async def group_members(self, group_id: str) -> set[str]:
        key = (self._key(), group_id)
        cached = self._groups.get(key)
        if cached and time.monotonic() - cached[0] < GROUP_CACHE_SECONDS:
            return cached[1]
        response = await self._call(lambda: self.client.usergroups_users_list(usergroup=group_id), repeatable=True)
        members = set(response.get("users") or [])
        self._groups[key] = (time.monotonic(), members)
        return members

    # the assistant features: status, title, suggested prompts (best effort: what Slack shows, not records)

    def status_refused(self, channel: str) -> bool:
        """Whether Slack refused a status in this channel before (remembered in memory, per channel)."""
        return channel in self._no_status

    async def set_status(
        self, *, channel: str, thread_ts: str, status: str, loading_messages: Sequence[str] = ()
    ) -> StatusOutcome:
        """Show what the agent does on a thread (`status` "" clears it): "shown", "refused" (Slack won't show a
        status in this channel, e.g. `not_allowed` or `missing_scope`: remembered, the caller falls back to a
        reaction) or "failed" (a fault that may pass). One try, no Retry-After sleep: it never holds up a run."""
        if channel in self._no_status:
            return "refused"
        try:
            await self._call(
                lambda: self._poster.assistant_threads_setStatus(
                    channel_id=channel,
                    thread_ts=thread_ts,
                    status=status,
                    loading_messages=list(loading_messages) or None,
                ),
                repeatable=False,
            )
        except SlackRefused as exc:
            log.info("Slack refused a status in %s (%s): a reaction shows the work there", channel, exc.error)
            self._no_status.add(channel)
            return "refused"
        except SlackUnavailable as exc:
            log.debug("could not set the status of %s/%s: %s", channel, thread_ts, exc)
            return "failed"
        return "shown"

    async def set_title(self, *, channel: str, thread_ts: str, title: str) -> None:
        """An assistant thread's title; best effort."""
        try:
            await self._call(
                lambda: self.client.assistant_threads_setTitle(channel_id=channel, thread_ts=thread_ts, title=title),
                repeatable=True,
            )
        except (SlackUnavailable, SlackRefused) as exc:
            log.warning("could not set the title of %s/%s: %s", channel, thread_ts, exc)

    async def set_suggested_prompts(
        self, *, channel: str, thread_ts: str, prompts: Sequence[Mapping[str, str]], title: str | None = None
    ) -> None:
        """The prompts an assistant thread offers; best effort."""
        try:
            await self._call(
                lambda: self.client.assistant_threads_setSuggestedPrompts(
                    channel_id=channel, thread_ts=thread_ts, prompts=[dict(p) for p in prompts], title=title
                ),
                repeatable=True,
            )
        except (SlackUnavailable, SlackRefused) as exc:
            log.warning("could not set the suggested prompts of %s/%s: %s", channel, thread_ts, exc)

    async def user_name(self, user_id: str) -> str | None:
        """A person's display name (users.info, cached), or None when Slack can't say."""
        key = (self._key(), user_id)
        if key in self._names:
            return self._names[key]
        try:
            response = await self._call(lambda: self.client.users_info(user=user_id), repeatable=True)
        except (SlackUnavailable, SlackRefused) as exc:
            log.debug("could not look up %s: %s", user_id, exc)
            return None
        user = response.get("user") or {}
        profile = user.get("profile") or {}
        name = profile.get("display_name") or profile.get("real_name") or user.get("name")
        if not isinstance(name, str) or not name:
            return None
        self._names[key] = name
        return name

    # streamed messages (bot/flow/streams.py): starts and appends are never blindly repeated (an append that
    # reached Slack would show twice); a stop, an update and a delete may be.

    async def start_stream(
        self,
        *,
        channel: str,
        thread_ts: str,
        markdown_text: str,
        recipient_team_id: str | None = None,
        recipient_user_id: str | None = None,
    ) -> str:
        """chat.startStream: a reply in the thread that grows until stopped; its ts. Outside a DM Slack needs the
        person it is for (`recipient_*`). One try; a rate limit raises with its Retry-After."""
        response = await self._call(
            lambda: self._poster.chat_startStream(
                channel=channel,
                thread_ts=thread_ts,
                markdown_text=markdown_text,
                recipient_team_id=recipient_team_id,
                recipient_user_id=recipient_user_id,
            ),
            repeatable=False,
        )
        return str(response["ts"])

    async def append_stream(self, *, channel: str, ts: str, markdown_text: str) -> None:
        """chat.appendStream; one try."""
        await self._call(
            lambda: self._poster.chat_appendStream(channel=channel, ts=ts, markdown_text=markdown_text),
            repeatable=False,
        )

    async def stop_stream(
        self, *, channel: str, ts: str, markdown_text: str | None = None, key: str | None = None
    ) -> None:
        """chat.stopStream, with the last text and our key in the metadata (a stopped message is known as ours). A
        message no longer streaming (stopped before) counts as stopped."""
        metadata = {"event_type": METADATA_EVENT, "event_payload": {"key": key}} if key else None
        try:
            await self._call(
                lambda: self.client.chat_stopStream(
                    channel=channel, ts=ts, markdown_text=markdown_text or None, metadata=metadata
                ),
                repeatable=True,
            )
        except SlackRefused as exc:
            if exc.error not in ("message_not_in_streaming_state", "message_not_found"):
                raise

    async def delete(self, *, channel: str, ts: str) -> None:
        """chat.delete; a message already gone counts as deleted."""
        try:
            await self._call(lambda: self.client.chat_delete(channel=channel, ts=ts), repeatable=True)
        except SlackRefused as exc:
            if exc.error != "message_not_found":
                raise

    async def identity(self) -> dict[str, str]:
        """The bot's own `user_id` and `bot_id` (auth.test, asked once per team)."""
        key = self._key()
        if key not in self._me:
            response = await self._call(lambda: self.client.auth_test(), repeatable=True)
            self._me[key] = {k: str(response.get(k) or "") for k in ("user_id", "bot_id")}
        return dict(self._me[key])

    async def thread_since(self, channel: str, thread_ts: str, *, since: float) -> list[dict[str, Any]]:
        """The thread's messages from `since` (epoch seconds) on, with their metadata; raises when Slack can't say."""
        response = await self._call(
            lambda: self.client.conversations_replies(
                channel=channel, ts=thread_ts, oldest=f"{since:.6f}", include_all_metadata=True, limit=1000
            ),
            repeatable=True,
        )
        return list(response.get("messages") or [])

    # files people share

    async def file_info(self, file_id: str) -> dict[str, Any]:
        """A file's object (files.info), for one Slack sent only as an id."""
        response = await self._call(lambda: self.client.files_info(file=file_id), repeatable=True)
        found = response.get("file")
        return dict(found) if isinstance(found, dict) else {}

    async def read_files(self, files: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each file as the graph gets it: a text file with its content (read with the bot token, at most
        `files.MAX_CONTENT` bytes), or with the reason it couldn't be read. A file already read is kept as is;
        nothing here raises, so a file never costs the message."""
        if all(f.get("read") for f in files):
            return files
        try:
            await self._ready()
        except NotInstalled as exc:
            return [f if f.get("read") else self._unread(f, exc) for f in files]
        own = self.client.session is None or self.client.session.closed
        session = aiohttp.ClientSession() if own else self.client.session
        assert session is not None
        try:
            return [f if f.get("read") else await self._read_file(session, f) for f in files]
        finally:
            if own:
                await session.close()

    async def _read_file(self, session: aiohttp.ClientSession, file: dict[str, Any]) -> dict[str, Any]:
        if file.get("check"):
            try:
                described = shared.describe(await self.file_info(str(file["id"])))
            except (SlackUnavailable, SlackRefused) as exc:
                return {**file, "read": True, "error": f"Slack did not describe it ({exc})"}
            file = {**(described or file), "check": False}
        if not shared.is_text(file):
            return {**file, "read": True}
        url = file.get("download") or file.get("url")
        if not url:
            return {**file, "read": True, "error": "Slack gave no URL for it"}
        attempt = 0
        while True:
            try:
                data, cut = await shared.read(
                    session,
                    str(url),
                    token=str(self.client.token or ""),
                    api_url=self.client.base_url,
                    timeout=self.timeout,
                    proxy=self.client.proxy or None,
                    ssl=True if self.client.ssl is None else self.client.ssl,
                    expect_html=str(file.get("mimetype") or "").startswith("text/html"),
                )
            except shared.Transient as exc:
                if attempt >= self.retries:
                    return self._unread(file, exc)
                attempt += 1
                await asyncio.sleep(self.backoff * 2**attempt)
            except shared.FileUnreadable as exc:
                return self._unread(file, exc)
            else:
                content = shared.decode(data, complete=not cut)
                return {**file, "read": True, "content": content, **({"truncated": True} if cut else {})}

    @staticmethod
    def _unread(file: dict[str, Any], exc: Exception) -> dict[str, Any]:
        log.warning("could not read the content of file %s: %s", file.get("id"), exc)
        return {**file, "read": True, "error": str(exc)}
