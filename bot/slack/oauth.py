"""Many workspaces: Bolt's OAuth flow (`/slack/install`, `/slack/oauth_redirect`) over our PostgreSQL stores, the
team of each request set for the gateway, and uninstalls.

Enabled when SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are set; otherwise the bot runs with its one token.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from psycopg_pool import AsyncConnectionPool
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.slack.installations import Installations, PgInstallationStore, PgOAuthStateStore
from bot.slack.teams import enter_team

log = logging.getLogger(__name__)

BOT_SCOPES = (
    "app_mentions:read",
    "channels:history",
    "groups:history",
    "im:history",
    "chat:write",
    "reactions:write",
    "users:read",
    "assistant:write",
    "usergroups:read",
    "files:read",
    "commands",
)
"""What an install asks for: what manifest.yml lists."""


def authorization_url(api_url: str) -> str:
    """Slack's authorize page next to its Web API (https://slack.com/api/ → https://slack.com/oauth/v2/authorize)."""
    base = api_url.rstrip("/")
    base = base.removesuffix("/api")
    return f"{base}/oauth/v2/authorize"


@dataclass
class Oauth:
    """The pieces an OAuth-mode bot is built with."""

    store: PgInstallationStore
    flow: AsyncOAuthFlow
    installations: Installations


def build_oauth(
    settings: Settings, pool: AsyncConnectionPool[Any], client: AsyncWebClient, session: aiohttp.ClientSession
) -> Oauth:
    """The installation and state stores, Bolt's OAuth flow and the per-team clients. `client` is the token-less
    client Bolt uses for `oauth.v2.access` and `auth.test` (so SLACK_API_URL applies)."""
    assert settings.slack_client_id and settings.slack_client_secret
    store = PgInstallationStore(pool)
    oauth_settings = AsyncOAuthSettings(
        client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret,
        scopes=list(BOT_SCOPES),
        redirect_uri=settings.slack_redirect_uri,
        install_page_rendering_enabled=False,
        authorization_url=authorization_url(settings.slack_api_url),
        installation_store=store,
        installation_store_bot_only=True,
        state_store=PgOAuthStateStore(pool),
    )
    rotator = AsyncTokenRotator(
        client_id=settings.slack_client_id, client_secret=settings.slack_client_secret, client=client
    )
    installations = Installations(
        store, base_url=settings.slack_api_url, timeout=settings.slack_timeout, session=session, rotator=rotator
    )
    return Oauth(store=store, flow=AsyncOAuthFlow(client=client, settings=oauth_settings), installations=installations)


UNINSTALL_EVENTS = ("app_uninstalled", "tokens_revoked")


def app_options(oauth: Oauth | None) -> dict[str, Any]:
    """AsyncApp's arguments for OAuth mode: authorization from our installation store (bot tokens only, its
    auth.test answer cached per token), after a check that drops requests of a team without an installation."""
    if oauth is None:
        return {}
    settings = oauth.flow.settings

    async def installed_team(
        context: AsyncBoltContext, body: dict[str, Any], next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        """A request of a team that removed the app is acknowledged and ignored (the team is named once in the
        log); the uninstall events themselves go on to their listeners."""
        team = context.team_id
        kind = (body.get("event") or {}).get("type") if isinstance(body, dict) else None
        if team and kind not in UNINSTALL_EVENTS and not await oauth.installations.installed(team):
            return BoltResponse(status=200, body="")
        await next()
        return None

    authorize = AsyncInstallationStoreAuthorize(
        logger=log,
        installation_store=oauth.store,
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        token_rotation_expiration_minutes=settings.token_rotation_expiration_minutes,
        bot_only=True,
        cache_enabled=True,
        client=oauth.flow.client,
    )
    return {
        "installation_store": oauth.store,
        "installation_store_bot_only": True,
        "oauth_flow": oauth.flow,
        "authorize": authorize,
        "before_authorize": installed_team,
    }


async def forget_team(pool: AsyncConnectionPool[Any], team_id: str) -> int:
    """What waits to be shown in an uninstalled team will never be: its pending outbox rows are marked dropped
    (nobody retries them) and its unfinished messages done. Returns the rows marked."""
    async with pool.connection() as conn, conn.transaction():
        cur = await conn.execute(
            "UPDATE lgslack_outbox SET state = 'dropped', error = 'app uninstalled', leased_until = NULL"
            " WHERE state = 'pending' AND (conversation_id IN"
            " (SELECT id FROM lgslack_conversations WHERE team_id = %s) OR key LIKE %s)",
            (team_id, f"home:{team_id}:%"),
        )
        dropped = cur.rowcount
        await conn.execute(
            "UPDATE lgslack_inbound SET status = 'done' WHERE team_id = %s AND status <> 'done'", (team_id,)
        )
    return max(0, dropped)


def register(app: AsyncApp, oauth: Oauth, pool: AsyncConnectionPool[Any]) -> None:
    """The team middleware (first, so every listener acts for the team of its request) and the uninstall events.
    Register before any other listener or middleware."""

    async def team_context(context: AsyncBoltContext, next: Callable[[], Awaitable[None]]) -> None:
        # Bolt runs middleware one after another, then the listeners, in this task: the team is set for the rest
        # of it (and for the tasks listeners start), not reset when this returns.
        enter_team(context.team_id)
        await next()

    app.middleware(team_context)

    async def uninstall(team_id: str | None, enterprise_id: str | None, why: str) -> None:
        if not team_id:
            return
        await oauth.store.async_delete_all(enterprise_id=enterprise_id, team_id=team_id)
        oauth.installations.forget(team_id)
        dropped = await forget_team(pool, team_id)
        log.warning("%s in team %s: installation removed, %d message(s) left unsent", why, team_id, dropped)

    @app.event("app_uninstalled")
    async def app_uninstalled(context: AsyncBoltContext) -> None:
        await uninstall(context.team_id, context.enterprise_id, "app uninstalled")

    @app.event("tokens_revoked")
    async def tokens_revoked(event: dict[str, Any], context: AsyncBoltContext) -> None:
        if (event.get("tokens") or {}).get("bot"):
            await uninstall(context.team_id, context.enterprise_id, "bot token revoked")


def add_routes(web_app: web.Application, app: AsyncApp) -> None:
    """GET /slack/install (redirects to Slack's authorize page) and GET /slack/oauth_redirect (Slack sends the
    installer back here: the code is exchanged and the installation stored)."""
    flow = app.oauth_flow
    if flow is None:
        return

    async def install(request: web.Request) -> web.Response:
        bolt_request = AsyncBoltRequest(body="", query=request.query_string, headers=dict(request.headers))
        return await to_aiohttp_response(await flow.handle_installation(bolt_request))

    async def redirect(request: web.Request) -> web.Response:
        bolt_request = AsyncBoltRequest(body="", query=request.query_string, headers=dict(request.headers))
        return await to_aiohttp_response(await flow.handle_callback(bolt_request))

    web_app.router.add_get(flow.install_path, install)
    web_app.router.add_get(flow.redirect_uri_path, redirect)
