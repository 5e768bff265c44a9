"""The control routes of slash commands and Home tabs (`bot.dev.sandbox.commands`), and the commands' response_url."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from bot.dev.sandbox.control import Control, _required
from bot.dev.sandbox.errors import SlackError


class SurfaceControl(Control):
    """Control routes for commands and Home tabs, and the commands' response_url endpoint."""

    def surface_routes(self) -> list[web.RouteDef]:
        post = {"command": self.command, "home_opened": self.home_opened, "click_home": self.click_home}
        get = {"home": self.home, "command_responses": self.command_responses}
        defs = [web.post(f"/control/{name}", self._wrap(fn)) for name, fn in post.items()]
        defs += [web.get(f"/control/{name}", self._wrap(fn)) for name, fn in get.items()]
        defs.append(web.post("/commands/response/{token}", self.command_response))
        return defs

    async def command(self, args: dict[str, Any]) -> dict[str, Any]:
        """``POST /control/command {user, channel, text?, command?}`` -> ``{ok, status, response_url, answer}``."""
        _required(args, "user", "channel")
        return await self.core.surfaces.command(
            args["user"], args["channel"], str(args.get("text") or ""), str(args.get("command") or "/agent")
        )

    async def home_opened(self, args: dict[str, Any]) -> dict[str, Any]:
        """``POST /control/home_opened {user, tab?}`` -> ``{ok, event_id}``: delivers app_home_opened."""
        _required(args, "user")
        return {"event_id": self.core.surfaces.open_home(args["user"], str(args.get("tab") or "home"))}

    async def click_home(self, args: dict[str, Any]) -> dict[str, Any]:
        """``POST /control/click_home {user, action_id, value?, block_id?}`` -> ``{ok, status, trigger_id}``.
        With ``forge: {block, element}`` the click is delivered as given, whatever the tab shows."""
        _required(args, "user")
        surfaces = self.core.surfaces
        forged = args.get("forge")
        if isinstance(forged, dict):
            view = surfaces.homes.get(args["user"]) or {"id": "V0SBXFORGED", "type": "home", "blocks": []}
            return await surfaces.deliver_home_click(
                args["user"], view, dict(forged.get("block") or {}), dict(forged.get("element") or {})
            )
        _required(args, "action_id")
        return await surfaces.click_home(args["user"], args["action_id"], args.get("value"), args.get("block_id"))

    async def home(self, args: dict[str, Any]) -> dict[str, Any]:
        """``GET /control/home?user=U`` -> ``{ok, view, publishes}``: the Home tab as last published (None if
        never) and how many times it was published."""
        _required(args, "user")
        surfaces = self.core.surfaces
        count = sum(1 for p in surfaces.publishes if p["user"] == args["user"])
        return {"view": surfaces.homes.get(args["user"]), "publishes": count}

    async def command_responses(self, args: dict[str, Any]) -> dict[str, Any]:
        """``GET /control/command_responses?user=U`` -> every answer to a command (the ack's, the response_url's)."""
        user = args.get("user")
        return {"responses": [r for r in self.core.surfaces.responses if not user or r["user"] == user]}

    async def command_response(self, request: web.Request) -> web.Response:
        """``POST /commands/response/{token}``: the app answers a command through its response_url."""
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            return web.json_response({"ok": False, "error": "invalid_json"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"ok": False, "error": "invalid_json"}, status=400)
        try:
            self.core.surfaces.respond(request.match_info["token"], body)
        except SlackError as exc:
            status = 404 if exc.code in ("expired_url", "used_url") else 400
            return web.json_response(exc.to_response(), status=status)
        return web.json_response({"ok": True})
