"""The gateway's reads: threads, permalinks, user groups, names, the bot's identity, and the files people
share (read with the bot token)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp

from bot.slack import files as shared
from bot.slack.web import Calls, NotInstalled, SlackRefused, SlackUnavailable

log = logging.getLogger(__name__)

GROUP_CACHE_SECONDS = 60.0


class Reads(Calls):
    """What Slack can tell: threads, links, groups, names, the bot itself, shared files."""

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
