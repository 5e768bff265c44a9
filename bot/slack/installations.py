"""Installations of the app in many workspaces (OAuth), kept in our PostgreSQL, and each team's Web API clients.

`PgInstallationStore` and `PgOAuthStateStore` are the stores Bolt's OAuth flow and authorization use
(slack_sdk's `AsyncInstallationStore` / `AsyncOAuthStateStore`), so installations survive restarts and are shared
by every process. `Installations` gives the gateway a team's clients: looked up once, cached, re-read every
`recheck` seconds (an uninstall in another process is noticed) and, with token rotation, refreshed before the
token expires (`oauth.v2.access` with the refresh token; the new token saved before it is used).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from slack_sdk.errors import SlackTokenRotationError
from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.web import NotInstalled, SlackUnavailable, build_client

log = logging.getLogger(__name__)

ROTATE_MINUTES = 120
"""Refresh a rotating token this long before it expires (Bolt's default)."""


def _key(enterprise_id: str | None, team_id: str | None) -> tuple[str, str]:
    return enterprise_id or "", team_id or ""


def _plain(data: dict[str, Any]) -> dict[str, Any]:
    """A copy that JSON can hold: datetimes as epoch seconds (whole ones for expiry times, as slack_sdk wants)."""
    plain: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, datetime):
            value = int(value.timestamp()) if key.endswith("expires_at") else value.timestamp()
        plain[key] = value
    return plain


class PgInstallationStore(AsyncInstallationStore):
    """One row per workspace (or org): its latest bot installation. We use bot tokens only."""

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self.pool = pool

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_save(self, installation: Installation) -> None:
        data = _plain(installation.to_dict_for_copying())
        bot = _plain(installation.to_bot().to_dict_for_copying()) if installation.bot_token else None
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO lgslack_installations (enterprise_id, team_id, installation, bot, installed_at)"
                " VALUES (%s, %s, %s, %s, now()) ON CONFLICT (enterprise_id, team_id) DO UPDATE"
                " SET installation = EXCLUDED.installation, bot = EXCLUDED.bot, installed_at = now()",
                (*_key(installation.enterprise_id, installation.team_id), Jsonb(data), Jsonb(bot) if bot else None),
            )
        log.info("installed in team %s", installation.team_id)

    async def async_save_bot(self, bot: Bot) -> None:
        """A refreshed bot token (rotation): the installation row keeps the rest."""
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE lgslack_installations SET bot = %s WHERE enterprise_id = %s AND team_id = %s",
                (Jsonb(_plain(bot.to_dict_for_copying())), *_key(bot.enterprise_id, bot.team_id)),
            )

    async def _row(self, enterprise_id: str | None, team_id: str | None) -> dict[str, Any] | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT installation, bot FROM lgslack_installations WHERE enterprise_id = %s AND team_id = %s",
                _key(enterprise_id, team_id),
            )
            return await cur.fetchone()

    async def async_find_bot(
        self, *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False
    ) -> Bot | None:
        row = await self._row(enterprise_id, None if is_enterprise_install else team_id)
        if row is None or not row["bot"]:
            return None
        return Bot(**row["bot"])

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        row = await self._row(enterprise_id, None if is_enterprise_install else team_id)
        if row is None:
            return None
        installation = Installation(**row["installation"])
        if user_id is not None and installation.user_id != user_id:
            return None
        if row["bot"]:  # the bot token as last rotated
            bot = Bot(**row["bot"])
            installation.bot_token = bot.bot_token
            installation.bot_refresh_token = bot.bot_refresh_token
            installation.bot_token_expires_at = bot.bot_token_expires_at
        return installation

    async def async_delete_bot(
        self, *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False
    ) -> None:
        await self.async_delete_all(enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        if user_id is None:  # a person's own tokens are never stored: only the workspace's row goes
            await self.async_delete_all(enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                "DELETE FROM lgslack_installations WHERE enterprise_id = %s AND team_id = %s",
                _key(enterprise_id, team_id),
            )


class PgOAuthStateStore(AsyncOAuthStateStore):
    """OAuth `state` values, each good once and for `expiration_seconds`, in PostgreSQL (any process may get the
    redirect)."""

    def __init__(self, pool: AsyncConnectionPool[Any], *, expiration_seconds: int = 600) -> None:
        self.pool = pool
        self.expiration_seconds = expiration_seconds

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        state = secrets.token_urlsafe(24)
        async with self.pool.connection() as conn:
            await conn.execute("DELETE FROM lgslack_oauth_states WHERE expires_at < now()")
            await conn.execute(
                "INSERT INTO lgslack_oauth_states (state, expires_at) VALUES (%s, now() + make_interval(secs => %s))",
                (state, self.expiration_seconds),
            )
        return state

    async def async_consume(self, state: str) -> bool:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "DELETE FROM lgslack_oauth_states WHERE state = %s RETURNING expires_at > now() AS fresh", (state,)
            )
            row = await cur.fetchone()
        return bool(row and row["fresh"])


@dataclass
class _Entry:
    client: AsyncWebClient
    poster: AsyncWebClient
    expires_at: float | None
    loaded_at: float


class Installations:
    """Each team's clients for the gateway (`TeamClients`), sharing the process's HTTP session."""

    def __init__(
        self,
        store: PgInstallationStore,
        *,
        base_url: str,
        timeout: float,
        session: aiohttp.ClientSession | None,
        rotator: AsyncTokenRotator | None = None,
        rotate_minutes: int = ROTATE_MINUTES,
        recheck: float = 60.0,
    ) -> None:
        self.store = store
        self.base_url = base_url
        self.timeout = timeout
        self.session = session
        self.rotator = rotator
        self.rotate_minutes = rotate_minutes
        self.recheck = recheck
        self._cache: dict[str, _Entry] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._missing: set[str] = set()

    def forget(self, team_id: str) -> None:
        """Drop a team's cached clients (uninstalled)."""
        self._cache.pop(team_id, None)

    def _fresh(self, entry: _Entry) -> bool:
        now = time.time()
        if entry.expires_at is not None and entry.expires_at - now <= self.rotate_minutes * 60:
            return False
        return time.monotonic() - entry.loaded_at < self.recheck

    async def installed(self, team_id: str) -> bool:
        try:
            await self.clients(team_id)
        except NotInstalled:
            return False
        return True

    async def clients(self, team_id: str) -> tuple[AsyncWebClient, AsyncWebClient]:
        entry = self._cache.get(team_id)
        if entry is not None and self._fresh(entry):
            return entry.client, entry.poster
        async with self._locks.setdefault(team_id, asyncio.Lock()):
            entry = self._cache.get(team_id)
            if entry is None or not self._fresh(entry):
                entry = await self._load(team_id)
            return entry.client, entry.poster

    async def _load(self, team_id: str) -> _Entry:
        bot = await self.store.async_find_bot(enterprise_id=None, team_id=team_id)
        if bot is None:
            self._cache.pop(team_id, None)
            if team_id not in self._missing:
                self._missing.add(team_id)
                log.warning("team %s has no installation: its work is not sent to Slack", team_id)
            raise NotInstalled(team_id)
        self._missing.discard(team_id)
        if bot.bot_refresh_token and self.rotator is not None:
            try:
                refreshed = await self.rotator.perform_bot_token_rotation(
                    bot=bot, minutes_before_expiration=self.rotate_minutes
                )
            except SlackTokenRotationError as exc:
                raise SlackUnavailable(f"could not refresh team {team_id}'s token ({exc.api_error})") from None
            if refreshed is not None:
                await self.store.async_save_bot(refreshed)
                log.info("refreshed the bot token of team %s", team_id)
                bot = refreshed
        expires = float(bot.bot_token_expires_at) if bot.bot_token_expires_at else None
        entry = _Entry(
            client=build_client(bot.bot_token, self.base_url, timeout=self.timeout, session=self.session),
            poster=build_client(
                bot.bot_token, self.base_url, timeout=self.timeout, session=self.session, retries=False
            ),
            expires_at=expires,
            loaded_at=time.monotonic(),
        )
        self._cache[team_id] = entry
        return entry
