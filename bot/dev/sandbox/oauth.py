"""Installing the app through OAuth, and a second workspace, in the sandbox.

- `GET /oauth/v2/authorize?client_id=…&scope=…&state=…&redirect_uri=…&team=T…` stands for the person clicking
  "Allow" in the workspace `team` (the first one by default): it redirects to `redirect_uri` with a one-time
  `code` and the `state`.
- `oauth.v2.access` (client id and secret as HTTP Basic auth, as slack_sdk sends them) exchanges the code for a
  bot token of that team (`xoxb-<team>-<n>`), or, with `grant_type=refresh_token`, a refresh token for a new
  one. With `rotation` the tokens expire (`expires_in`) and come with a refresh token.
- Every Web API call is checked against the team of its token: a channel or person of another team is
  `channel_not_found` / `user_not_found`, and each logged call says which team's token made it.
- `uninstall(team)` revokes the team's tokens and sends `app_uninstalled` and `tokens_revoked` for it.

The configured `bot_token` stays valid for the first team, so single-token apps work as before.
"""

from __future__ import annotations

import base64
import itertools
import secrets
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from aiohttp import web

from bot.dev.sandbox.errors import SlackError
from bot.dev.sandbox.workspace import APP_ID, BOT_USER_ID, TEAM_ID, TEAM_NAME, TEAM_OF, Workspace, dm_id_for

if TYPE_CHECKING:
    from bot.dev.sandbox.core import SandboxCore

CLIENT_ID = "1000000000.2000000000"
CLIENT_SECRET = "sandbox-client-secret"
SECOND_TEAM_ID = "T0SECOND"
SECOND_TEAM_NAME = "Second"
SECOND_CHANNEL = "C2HQ"
SECOND_USERS = ("U2ANA", "U2BEN")
TEAM_NAMES = {TEAM_ID: TEAM_NAME, SECOND_TEAM_ID: SECOND_TEAM_NAME}
SCOPE_ERROR = "invalid_scope"

# The team of the token of the Web API call being served (for methods that answer about it, like auth.test).
calling_team: ContextVar[str] = ContextVar("sandbox_calling_team", default=TEAM_ID)


def add_second_team(ws: Workspace) -> None:
    """A second workspace in the same sandbox: ana and ben, and #hq with the bot in it (ids C2…/U2…)."""
    for user_id, name in zip(SECOND_USERS, ("ana", "ben"), strict=True):
        if user_id not in ws.users:
            ws.add_user(user_id, name, real_name=f"{name.title()} Second", display_name=name)
        TEAM_OF[user_id] = TEAM_OF[dm_id_for(user_id)] = SECOND_TEAM_ID
    if SECOND_CHANNEL not in ws.channels:
        ws.add_channel(SECOND_CHANNEL, "hq", SECOND_USERS)
    TEAM_OF[SECOND_CHANNEL] = SECOND_TEAM_ID


@dataclass
class Token:
    team_id: str
    expires_at: float | None
    revoked: bool = False


class OAuth:
    """The sandbox's app installations: codes, tokens and refresh tokens, per team."""

    def __init__(self, core: SandboxCore, *, rotation: bool = False, expires_in: int = 43200) -> None:
        self.core = core
        self.client_id = CLIENT_ID
        self.client_secret = CLIENT_SECRET
        self.rotation = rotation
        self.expires_in = expires_in
        """Seconds a rotating token got by an install lasts (set it short to make the app refresh it at once)."""
        self.refreshed_expires_in = 43200
        """Seconds a rotating token got by a refresh lasts."""
        self.redirect_uri: str | None = None
        """The app's configured redirect URL, used when the authorize link has none."""
        self.codes: dict[str, tuple[str, str | None, str]] = {}
        self.tokens: dict[str, Token] = {}
        self.refresh_tokens: dict[str, str] = {}
        self._serial = itertools.count(1)

    def add_second_team(self) -> None:
        """Add the second workspace (`SECOND_TEAM_ID`) to the sandbox's."""
        add_second_team(self.core.workspace)

    # ---- which team a token, channel or person belongs to --------------------------------------

    def team_of_token(self, token: str) -> str | None:
        if token == self.core.bot_token:
            return TEAM_ID
        found = self.tokens.get(token)
        if found is None or found.revoked:
            return None
        if found.expires_at is not None and found.expires_at < time.time():
            return None
        return found.team_id

    def check(self, team_id: str, params: dict[str, Any]) -> None:
        """Refuse a call about a channel or a person of another team, as Slack does."""
        for key in ("channel", "channel_id"):
            value = params.get(key)
            if isinstance(value, str) and value and TEAM_OF.get(value, TEAM_ID) != team_id:
                if value in self.core.workspace.channels:
                    raise SlackError("channel_not_found")
        for key in ("user", "user_id"):
            value = params.get(key)
            if isinstance(value, str) and value and TEAM_OF.get(value, TEAM_ID) != team_id:
                if value in self.core.workspace.users and value != BOT_USER_ID:
                    raise SlackError("user_not_found")

    # ---- the install ---------------------------------------------------------------------------

    async def authorize(self, request: web.Request) -> web.StreamResponse:
        """The person allows the app: back to the app's redirect URL with a code."""
        query = request.query
        if query.get("client_id") != self.client_id:
            return web.Response(status=400, text="invalid client_id")
        team_id = query.get("team") or TEAM_ID
        if team_id not in TEAM_NAMES:
            return web.Response(status=400, text="no such workspace")
        redirect_uri = query.get("redirect_uri") or self.redirect_uri
        if not redirect_uri:
            return web.Response(status=400, text="redirect_uri missing (the sandbox has no app settings)")
        code = secrets.token_hex(8)
        self.codes[code] = (team_id, redirect_uri, query.get("user") or "")
        state = query.get("state") or ""
        joiner = "&" if "?" in redirect_uri else "?"
        raise web.HTTPFound(f"{redirect_uri}{joiner}{urlencode({'code': code, 'state': state})}")

    def _client_ok(self, request: web.Request, params: dict[str, Any]) -> bool:
        client_id, client_secret = params.get("client_id"), params.get("client_secret")
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                client_id, _, client_secret = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                return False
        return client_id == self.client_id and client_secret == self.client_secret

    def _issue(self, team_id: str, refresh_token: str | None) -> dict[str, Any]:
        token = f"xoxb-{team_id.lower()}-{next(self._serial)}-{secrets.token_hex(4)}"
        expires_in = self.refreshed_expires_in if refresh_token else self.expires_in
        expires_at = time.time() + expires_in if self.rotation else None
        self.tokens[token] = Token(team_id=team_id, expires_at=expires_at)
        answer: dict[str, Any] = {"access_token": token, "token_type": "bot"}
        if self.rotation:
            refresh_token = refresh_token or f"xoxe-1-{team_id.lower()}-{secrets.token_hex(8)}"
            self.refresh_tokens[refresh_token] = team_id
            answer.update(refresh_token=refresh_token, expires_in=expires_in)
        return answer

    def access(self, request: web.Request, params: dict[str, Any]) -> dict[str, Any]:
        """oauth.v2.access: a code (or a refresh token) for a bot token."""
        if not self._client_ok(request, params):
            raise SlackError("invalid_client_id")
        if params.get("grant_type") == "refresh_token":
            refresh_token = str(params.get("refresh_token") or "")
            team_id = self.refresh_tokens.get(refresh_token)
            if team_id is None:
                raise SlackError("invalid_refresh_token")
            return {**self._issue(team_id, refresh_token), "team": {"id": team_id, "name": TEAM_NAMES[team_id]}}
        found = self.codes.pop(str(params.get("code") or ""), None)
        if found is None:
            raise SlackError("invalid_code")
        team_id, redirect_uri, user = found
        if params.get("redirect_uri") and params.get("redirect_uri") != redirect_uri:
            raise SlackError("bad_redirect_uri")
        return {
            **self._issue(team_id, None),
            "scope": "chat:write,app_mentions:read",
            "bot_user_id": BOT_USER_ID,
            "app_id": APP_ID,
            "team": {"id": team_id, "name": TEAM_NAMES[team_id]},
            "enterprise": None,
            "is_enterprise_install": False,
            "authed_user": {"id": user or "U0ALICE"},
        }

    def uninstall(self, team_id: str) -> None:
        """The workspace removes the app: its tokens stop working, and the app is told."""
        for token in self.tokens.values():
            if token.team_id == team_id:
                token.revoked = True
        for refresh_token, team in list(self.refresh_tokens.items()):
            if team == team_id:
                del self.refresh_tokens[refresh_token]
        now = f"{time.time():.6f}"
        self.core.emit_for(team_id, {"type": "tokens_revoked", "tokens": {"bot": [BOT_USER_ID]}, "event_ts": now})
        self.core.emit_for(team_id, {"type": "app_uninstalled", "event_ts": now})

    def tokens_of(self, team_id: str) -> list[str]:
        return [token for token, found in self.tokens.items() if found.team_id == team_id]

    def routes(self) -> list[web.RouteDef]:
        async def uninstall(request: web.Request) -> web.Response:
            self.uninstall(request.match_info["team"])
            return web.json_response({"ok": True})

        return [
            web.get("/oauth/v2/authorize", self.authorize),
            web.post("/control/uninstall/{team}", uninstall),
        ]


__all__ = ["CLIENT_ID", "CLIENT_SECRET", "SECOND_CHANNEL", "SECOND_TEAM_ID", "SECOND_USERS", "OAuth"]
