"""The sandbox's web page: static files, the live feed (Server-Sent Events), the graph chooser, saved state."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.dev.sandbox import GraphOption, SandboxClient, SlackSandbox
from tests.sandbox.conftest import SECRET, TOKEN


class Events:
    """Reads a /control/stream response event by event."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def next(self, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            data: list[str] = []
            while True:
                line = (await self.response.content.readline()).decode().rstrip("\n")
                if line.startswith("data: "):
                    data.append(line[6:])
                elif not line and data:
                    return dict(json.loads("\n".join(data)))

    async def until(self, kind: str, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
        while True:
            event = await self.next(timeout)
            if event["type"] == kind:
                return event

    async def message(self, ts: str) -> dict[str, Any]:
        """The next `message` event about message `ts`."""
        while True:
            event = await self.until("message")
            if event["message"]["ts"] == ts:
                return dict(event["message"])


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def stream(sb: SlackSandbox, http: aiohttp.ClientSession) -> AsyncIterator[Events]:
    async with http.get(f"{sb.url}/control/stream") as response:
        assert response.headers["Content-Type"] == "text/event-stream"
        yield Events(response)


async def test_the_page_is_served_to_browsers_and_json_to_api_clients(
    sb: SlackSandbox, http: aiohttp.ClientSession
) -> None:
    async with http.get(sb.url + "/", headers={"Accept": "text/html,application/xhtml+xml"}) as page:
        assert page.status == 200 and page.content_type == "text/html"
        html = await page.text()
    assert '<script type="module" src="/web/app.js">' in html
    async with http.get(sb.url + "/") as about:
        assert (await about.json())["sandbox"] is True
    for name, kind in (
        ("app.js", "javascript"),
        ("blocks.js", "javascript"),
        ("text.js", "javascript"),
        ("app.css", "css"),
    ):
        async with http.get(f"{sb.url}/web/{name}") as asset:
            assert asset.status == 200 and kind in asset.content_type
            assert asset.headers["Cache-Control"] == "no-cache"
    for bad in ("nope.js", "..%2Fpage.py", "__init__.py"):
        async with http.get(f"{sb.url}/web/{bad}") as missing:
            assert missing.status == 404


async def test_the_stream_starts_with_a_snapshot_then_sends_each_change(
    sb: SlackSandbox, http: aiohttp.ClientSession, web: AsyncWebClient
) -> None:
    ts = sb.post("U0ALICE", "C0GENERAL", "before anyone listened")
    async with http.get(f"{sb.url}/control/stream") as response:
        await check_stream(sb, Events(response), web, ts)


async def check_stream(sb: SlackSandbox, stream: Events, web: AsyncWebClient, ts: str) -> None:
    snapshot = await stream.next()
    assert snapshot["type"] == "snapshot"
    assert {u["name"] for u in snapshot["users"]} >= {"agent", "alice", "bob", "carol"}
    assert {c["id"] for c in snapshot["channels"]} >= {"C0GENERAL", "C0EXPERTS", "D0ALICE"}
    assert [m["text"] for m in snapshot["messages"]["C0GENERAL"]] == ["before anyone listened"]
    assert snapshot["graphs"] == {"enabled": False, "options": [], "channels": {}}

    sb.set_label("model", "offline demo model")
    assert (await stream.until("labels"))["labels"] == {"model": "offline demo model"}

    reply = sb.post("U0BOB", "C0GENERAL", "a reply", thread_ts=ts)
    event = await stream.until("message")
    assert event["channel"] == "C0GENERAL" and event["message"]["ts"] == reply
    parent = await stream.until("message")
    assert parent["message"]["ts"] == ts and parent["message"]["reply_count"] == 1

    posted = await web.chat_postMessage(channel="C0GENERAL", text="working on it", thread_ts=ts)
    assert (await stream.until("message"))["message"]["text"] == "working on it"
    await web.chat_update(channel="C0GENERAL", ts=posted["ts"], text="done")
    changed = await stream.message(posted["ts"])
    assert changed["text"] == "done" and "edited" in changed

    await web.reactions_add(channel="C0GENERAL", timestamp=ts, name="hourglass_flowing_sand")
    reacted = await stream.message(ts)
    assert reacted["reactions"][0]["name"] == "hourglass_flowing_sand"

    await web.assistant_threads_setStatus(channel_id="C0GENERAL", thread_ts=ts, status="is thinking…")
    assert await stream.until("status") == {
        "type": "status",
        "channel": "C0GENERAL",
        "thread_ts": ts,
        "status": "is thinking…",
    }

    await web.chat_postEphemeral(channel="C0GENERAL", user="U0CAROL", text="just for you", thread_ts=ts)
    shown = await stream.until("ephemeral")
    assert shown["user"] == "U0CAROL" and shown["message"]["is_ephemeral"] is True

    await web.chat_delete(channel="C0GENERAL", ts=posted["ts"])
    assert await stream.until("message_deleted") == {
        "type": "message_deleted",
        "channel": "C0GENERAL",
        "ts": posted["ts"],
    }


async def test_views_are_streamed_as_each_persons_modal_stack(sb: SlackSandbox, stream: Events) -> None:
    await stream.until("snapshot")
    view = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Answer"},
        "submit": {"type": "plain_text", "text": "Send"},
        "blocks": [
            {
                "type": "input",
                "block_id": "answer",
                "label": {"type": "plain_text", "text": "Your answer"},
                "element": {"type": "plain_text_input", "action_id": "value"},
            }
        ],
    }
    opened = sb.modals.open("U0BOB", view)
    event = await stream.until("views")
    assert event["user"] == "U0BOB" and [v["id"] for v in event["views"]] == [opened["id"]]
    await sb.cancel("U0BOB")
    assert (await stream.until("views"))["views"] == []


async def test_reset_tells_the_page_to_start_again(sb: SlackSandbox, stream: Events) -> None:
    await stream.until("snapshot")
    async with SandboxClient(sb.url) as people:
        await people.reset()
    assert (await stream.until("reset"))["type"] == "reset"


class Chooser:
    def __init__(self) -> None:
        self.chosen: dict[str, str] = {}

    async def options(self) -> Sequence[GraphOption]:
        return [GraphOption("g.a:graph", "a", "the default"), GraphOption("g.b:graph", "b", "another", ("try me",))]

    async def current(self, channel: str) -> str | None:
        return self.chosen.get(channel, "g.a:graph")

    async def choose(self, channel: str, graph: str | None) -> None:
        if graph not in (None, "g.a:graph", "g.b:graph"):
            raise ValueError(f"unknown graph {graph}")
        if graph is None:
            self.chosen.pop(channel, None)
        else:
            self.chosen[channel] = graph


async def test_graphs_are_chosen_per_channel_through_the_apps_chooser(http: aiohttp.ClientSession) -> None:
    chooser = Chooser()
    async with SlackSandbox(signing_secret=SECRET, bot_token=TOKEN, graph_chooser=chooser) as sb:
        async with http.get(f"{sb.url}/control/graphs", params={"channel": "#general"}) as response:
            state = await response.json()
        assert state["current"] == "g.a:graph"
        assert state["options"][1] == {
            "id": "g.b:graph",
            "label": "b",
            "description": "another",
            "examples": ["try me"],
        }
        async with http.get(f"{sb.url}/control/stream") as live:
            events = Events(live)
            assert (await events.next())["graphs"]["channels"]["C0GENERAL"] == "g.a:graph"
            body = {"channel": "C0GENERAL", "graph": "g.b:graph"}
            async with http.post(f"{sb.url}/control/graphs", json=body) as response:
                assert await response.json() == {"ok": True, "channel": "C0GENERAL", "current": "g.b:graph"}
            assert await events.until("graph") == {"type": "graph", "channel": "C0GENERAL", "graph": "g.b:graph"}
        assert chooser.chosen == {"C0GENERAL": "g.b:graph"}
        async with http.post(f"{sb.url}/control/graphs", json={"channel": "C0GENERAL", "graph": "nope"}) as response:
            assert response.status == 400 and (await response.json())["error"] == "invalid_graph"
        async with http.post(f"{sb.url}/control/graphs", json={"channel": "C0NOPE", "graph": None}) as response:
            assert (await response.json())["error"] == "channel_not_found"
        async with http.post(f"{sb.url}/control/graphs", json={"channel": "C0GENERAL", "graph": None}) as response:
            assert (await response.json())["current"] == "g.a:graph"


async def test_without_a_chooser_there_is_nothing_to_choose(sb: SlackSandbox, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{sb.url}/control/graphs") as response:
        assert await response.json() == {"ok": True, "enabled": False, "options": [], "channels": {}}
    async with http.post(f"{sb.url}/control/graphs", json={"channel": "C0GENERAL", "graph": "x:y"}) as response:
        assert response.status == 400 and (await response.json())["error"] == "not_supported"


async def test_messages_are_kept_in_the_state_file_between_runs(tmp_path: Path) -> None:
    state = tmp_path / "sandbox.json"
    async with SlackSandbox(signing_secret=SECRET, bot_token=TOKEN, state_file=state) as first:
        root = first.post("U0ALICE", "C0GENERAL", "remember me")
        first.post("U0BOB", "C0GENERAL", "me too", thread_ts=root)
    assert state.is_file()
    async with SlackSandbox(signing_secret=SECRET, bot_token=TOKEN, state_file=state) as second:
        assert [m["text"] for m in second.replies("C0GENERAL", root)] == ["remember me", "me too"]
        assert second.history("C0GENERAL")[0]["reply_count"] == 1
        later = second.post("U0ALICE", "C0GENERAL", "new")
        assert float(later) > float(root)
    state.write_text("not json")
    async with SlackSandbox(signing_secret=SECRET, bot_token=TOKEN, state_file=state) as third:
        assert third.history("C0GENERAL") == []


async def test_stopping_ends_live_streams(http: aiohttp.ClientSession) -> None:
    sb = SlackSandbox(signing_secret=SECRET, bot_token=TOKEN)
    await sb.start()
    async with http.get(f"{sb.url}/control/stream") as live:
        await Events(live).next()
        async with asyncio.timeout(5):
            await sb.stop()
        assert sb.feed.subscribers == 0
