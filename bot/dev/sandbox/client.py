"""`SandboxClient`: an async HTTP client for the sandbox's control API (usable from any process)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp

T = TypeVar("T")


class SandboxError(Exception):
    """The control API answered ``{"ok": false, ...}``."""

    def __init__(self, error: str, response: dict[str, Any]) -> None:
        super().__init__(f"{error}: {response}")
        self.error = error
        self.response = response


class WaitTimeout(TimeoutError):
    """`SandboxClient.wait_for` gave up; `last` holds the last value the condition returned."""

    def __init__(self, message: str, last: Any) -> None:
        super().__init__(message)
        self.last = last


class SandboxClient:
    """Act as people in the sandbox and read what Slack would show, over HTTP.

    ``async with SandboxClient(sb.url) as slack: ts = await slack.post("U0ALICE", "C0GENERAL", "hi")``
    """

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SandboxClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the underlying HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def request(
        self, method: str, route: str, *, json: dict[str, Any] | None = None, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Call a control route; raises `SandboxError` when the answer is not ok."""
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        url = f"{self.base_url}/control/{route}"
        async with self._http().request(method, url, json=json, params=query) as resp:
            data: dict[str, Any] = await resp.json(content_type=None)
        if not data.get("ok"):
            raise SandboxError(str(data.get("error")), data)
        return data

    # ---- acting as people -------------------------------------------------------------------

    async def post(
        self,
        user: str,
        channel: str,
        text: str = "",
        thread_ts: str | None = None,
        *,
        blocks: list[dict[str, Any]] | None = None,
        files: list[dict[str, Any]] | None = None,
    ) -> str:
        """Post `text` as `user` (delivers message / app_mention events); returns the message ts.

        `blocks` replaces the rich_text block made from the text (which may then be empty); `files` shares files
        (``{"name", "content" | "content_base64", "mimetype"?, "url_private"?, ...}``, see `bot.dev.sandbox.files`).
        """
        body: dict[str, Any] = {"user": user, "channel": channel, "text": text, "thread_ts": thread_ts}
        if blocks is not None:
            body["blocks"] = blocks
        if files is not None:
            body["files"] = files
        return str((await self.request("POST", "messages", json=body))["ts"])

    async def click(
        self,
        user: str,
        channel: str,
        ts: str,
        action_id: str,
        value: Any = None,
        *,
        block_id: str | None = None,
    ) -> dict[str, Any]:
        """Click a button (or pick option `value`) in a message; waits for the app's HTTP answer.

        Returns ``{"ok", "status", "trigger_id", ...}``; not raising when the app answered non-2xx.
        """
        body = {
            "user": user,
            "channel": channel,
            "ts": ts,
            "action_id": action_id,
            "value": value,
            "block_id": block_id,
        }
        return await self._interaction("click", body)

    async def click_view(
        self, user: str, action_id: str, value: Any = None, *, view_id: str | None = None
    ) -> dict[str, Any]:
        """Click a button inside one of `user`'s open modals (default: the top one)."""
        body = {"user": user, "view_id": view_id, "action_id": action_id, "value": value}
        return await self._interaction("click", body)

    async def submit(self, user: str, values: dict[str, Any], view_id: str | None = None) -> dict[str, Any]:
        """Submit `user`'s modal with `values` ({block_id: {action_id: value}} or {block_id: value}).

        Returns ``{"ok", "status", "response_action", "errors", ...}``.
        """
        return await self._interaction("submit", {"user": user, "values": values, "view_id": view_id})

    async def cancel(self, user: str) -> dict[str, Any]:
        """Close `user`'s top modal (view_closed is delivered if the view asked for it)."""
        return await self._interaction("cancel", {"user": user})

    async def react(self, user: str, channel: str, ts: str, name: str, *, remove: bool = False) -> None:
        """Add (or remove) `user`'s emoji reaction on a message."""
        body = {"user": user, "channel": channel, "ts": ts, "name": name, "remove": remove}
        await self.request("POST", "react", json=body)

    async def command(self, user: str, channel: str, text: str = "", command: str = "/agent") -> dict[str, Any]:
        """Type a slash command in a channel; waits for the app's HTTP answer (shown to `user` alone).

        Returns ``{"ok", "status", "response_url", "trigger_id", "answer"}``; later answers through the
        response_url appear as `user`'s ephemeral messages in the channel (and in `command_responses`)."""
        body = {"user": user, "channel": channel, "text": text, "command": command}
        return await self._interaction("command", body)

    async def open_home(self, user: str, tab: str = "home") -> str:
        """Open the app's Home tab as `user` (delivers app_home_opened); returns the event_id."""
        return str((await self.request("POST", "home_opened", json={"user": user, "tab": tab}))["event_id"])

    async def click_home(
        self, user: str, action_id: str, value: Any = None, *, block_id: str | None = None
    ) -> dict[str, Any]:
        """Click a button in `user`'s Home tab; waits for the app's HTTP answer."""
        body = {"user": user, "action_id": action_id, "value": value, "block_id": block_id}
        return await self._interaction("click_home", body)

    async def forge_home_click(self, user: str, element: dict[str, Any]) -> dict[str, Any]:
        """Deliver a click on `element` (a button dict) from `user`'s Home tab, whether the tab shows it or not."""
        body = {"user": user, "forge": {"block": {"block_id": "forged"}, "element": element}}
        return await self._interaction("click_home", body)

    async def start_assistant_thread(self, user: str, context_channel: str | None = None) -> dict[str, Any]:
        """`user` opens the app's assistant pane (looking at `context_channel`): a new assistant thread in their DM
        and the ``assistant_thread_started`` event. Returns ``{channel, thread_ts, event_id}``."""
        body = {"user": user, "context_channel": context_channel}
        found = await self.request("POST", "assistant_thread", json=body)
        return {key: found[key] for key in ("channel", "thread_ts", "event_id")}

    async def change_assistant_context(
        self, user: str, channel: str, thread_ts: str, context_channel: str | None
    ) -> str:
        """With the assistant thread open, `user` moves to `context_channel`; returns the event_id."""
        body = {"user": user, "channel": channel, "thread_ts": thread_ts, "context_channel": context_channel}
        return str((await self.request("POST", "assistant_context", json=body))["event_id"])

    async def send_event(self, event: dict[str, Any]) -> str:
        """Deliver any event (its inner object, with a `type`) as Slack would; returns the event_id."""
        return str((await self.request("POST", "event", json={"event": event}))["event_id"])

    async def _interaction(self, route: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}/control/{route}"
        async with self._http().post(url, json=body) as resp:
            data: dict[str, Any] = await resp.json(content_type=None)
        if resp.status == 400:
            raise SandboxError(str(data.get("error")), data)
        return data

    # ---- reading ------------------------------------------------------------------------------

    async def channels(self) -> list[dict[str, Any]]:
        """All channels (including DMs) with their members."""
        return list((await self.request("GET", "channels"))["channels"])

    async def history(self, channel: str) -> list[dict[str, Any]]:
        """Top-level messages, oldest first (parents carry reply_count)."""
        return list((await self.request("GET", "history", params={"channel": channel}))["messages"])

    async def replies(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """The thread rooted at `ts`, oldest first (parent first)."""
        return list((await self.request("GET", "replies", params={"channel": channel, "ts": ts}))["messages"])

    async def message(self, channel: str, ts: str) -> dict[str, Any]:
        """One message by channel and ts."""
        return dict((await self.request("GET", "message", params={"channel": channel, "ts": ts}))["message"])

    async def ephemerals(self, channel: str, user: str) -> list[dict[str, Any]]:
        """Ephemeral messages shown to `user` in `channel`."""
        params = {"channel": channel, "user": user}
        return list((await self.request("GET", "ephemerals", params=params))["messages"])

    async def views(self, user: str) -> list[dict[str, Any]]:
        """`user`'s open modals, root first, top last."""
        return list((await self.request("GET", "views", params={"user": user}))["views"])

    async def home(self, user: str) -> dict[str, Any] | None:
        """`user`'s Home tab as the app last published it (views.publish), or None."""
        view = (await self.request("GET", "home", params={"user": user}))["view"]
        return dict(view) if view else None

    async def home_publishes(self, user: str) -> int:
        """How many times the app published `user`'s Home tab."""
        return int((await self.request("GET", "home", params={"user": user}))["publishes"])

    async def command_responses(self, user: str | None = None) -> list[dict[str, Any]]:
        """Every answer to a slash command (``{via: "ack" | "response_url", user, channel, command, body}``)."""
        return list((await self.request("GET", "command_responses", params={"user": user}))["responses"])

    async def status(self, channel: str, thread_ts: str) -> str:
        """The assistant status of a thread ('' when cleared)."""
        params = {"channel": channel, "thread_ts": thread_ts}
        return str((await self.request("GET", "status", params=params))["status"])

    async def assistant_thread(self, channel: str, thread_ts: str) -> dict[str, Any]:
        """An assistant thread as its person sees it: ``{status, title, suggested_prompts}``."""
        params = {"channel": channel, "thread_ts": thread_ts}
        found = await self.request("GET", "status", params=params)
        return {key: found[key] for key in ("status", "title", "suggested_prompts")}

    async def status_history(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        """Every status the app set on a thread, oldest first: ``{status, loading_messages, ok}`` per
        assistant.threads.setStatus call ("" clears it)."""
        return [
            {
                "status": call["params"].get("status") or "",
                "loading_messages": list(call["params"].get("loading_messages") or []),
                "ok": bool(call["response"].get("ok")),
            }
            for call in await self.calls("assistant.threads.setStatus")
            if call["params"].get("channel_id") == channel and call["params"].get("thread_ts") == thread_ts
        ]

    async def calls(self, method: str | None = None) -> list[dict[str, Any]]:
        """The Web API call log, optionally for one method."""
        return list((await self.request("GET", "calls", params={"method": method}))["calls"])

    async def downloads(self) -> list[dict[str, Any]]:
        """Every request for a shared file's bytes: ``{file, path, authorized, status, fault?, at}``."""
        return list((await self.request("GET", "downloads"))["downloads"])

    async def deliveries(self) -> list[dict[str, Any]]:
        """The delivery log (event_id, type, retry_num, status, elapsed, ...)."""
        return list((await self.request("GET", "deliveries"))["deliveries"])

    # ---- knobs ---------------------------------------------------------------------------------

    async def set_request_url(self, url: str | None) -> None:
        """Tell the sandbox where to deliver events and interactions."""
        await self.request("POST", "config", json={"request_url": url})

    async def rate_limit(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """Make the next `times` calls of Web API `method` answer 429."""
        await self.request("POST", "rate_limit", json={"method": method, "times": times, "retry_after": retry_after})

    async def fault(self, method: str, kind: str, *, times: int = 1, retry_after: int = 1, delay: float = 30.0) -> None:
        """Make the next `times` calls of Web API `method` suffer fault `kind` (``ratelimited``,
        ``server_error``, ``html_error``, ``timeout_after_store``, ``reset_after_store``, ``error:<code>``)."""
        body = {"method": method, "kind": kind, "times": times, "retry_after": retry_after, "delay": delay}
        await self.request("POST", "fault", json=body)

    async def chaos(
        self,
        rate: float,
        *,
        seed: int | None = None,
        methods: list[str] | None = None,
        kinds: list[str] | None = None,
        delay: float = 30.0,
        retry_after: int = 1,
    ) -> None:
        """Fault each Web API call (of `methods`; default all but auth.test) with probability `rate`;
        ``chaos(0)`` turns it off."""
        body = {
            "rate": rate,
            "seed": seed,
            "methods": methods,
            "kinds": kinds,
            "delay": delay,
            "retry_after": retry_after,
        }
        await self.request("POST", "chaos", json=body)

    async def clear_faults(self) -> None:
        """Drop pending faults and turn chaos off."""
        await self.request("POST", "clear_faults")

    async def redeliver(self, event_id: str, reason: str = "http_timeout") -> dict[str, Any]:
        """Re-send an event with the next X-Slack-Retry-Num; returns the delivery record."""
        body = {"event_id": event_id, "reason": reason}
        return dict((await self.request("POST", "redeliver", json=body))["delivery"])

    async def idle(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until the sandbox has attempted every queued event delivery."""
        await self.request("POST", "idle", json={"timeout": timeout})

    async def reset(self) -> None:
        """Forget all messages, modals and logs (users and channels stay)."""
        await self.request("POST", "reset")

    # ---- waiting -------------------------------------------------------------------------------

    async def wait_for(
        self,
        fn: Callable[[], Awaitable[T | None] | T | None],
        timeout: float = 10.0,  # noqa: ASYNC109
        interval: float = 0.05,
    ) -> T:
        """Poll `fn` (async or sync) until it returns something truthy; return that value.

        Raises `WaitTimeout` (a `TimeoutError`) carrying the last value seen.
        """
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            result = fn()
            last = await result if inspect.isawaitable(result) else result
            if last:
                return last
            if time.monotonic() >= deadline:
                raise WaitTimeout(f"condition not met within {timeout}s; last value: {last!r}", last)
            await asyncio.sleep(interval)

    async def wait_for_reply(
        self,
        channel: str,
        thread_ts: str,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> dict[str, Any]:
        """Wait for the first reply in a thread (the parent excluded) matching `predicate`."""

        async def find() -> dict[str, Any] | None:
            for message in await self.replies(channel, thread_ts):
                if message["ts"] != thread_ts and (predicate is None or predicate(message)):
                    return message
            return None

        return await self.wait_for(find, timeout=timeout)
