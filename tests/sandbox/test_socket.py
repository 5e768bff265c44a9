"""The sandbox's Socket Mode: apps.connections.open, hello, envelopes and acks, retries, disconnects — spoken by a
bare websocket (to see the protocol exactly) and by Bolt's real Socket Mode handler."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.dev.sandbox import SandboxClient, SlackSandbox
from bot.dev.sandbox.delivery import interaction_body
from bot.dev.sandbox.socket_mode import envelope_for
from tests.sandbox.conftest import TOKEN
from tests.sandbox.test_bolt import QUESTION_BLOCKS, Bot, build_bot, modal, post_question

APP_TOKEN = "xapp-sandbox"


async def open_url(sb: SlackSandbox, token: str = APP_TOKEN) -> str:
    """apps.connections.open through slack_sdk, as the Socket Mode client calls it."""
    response = await AsyncWebClient(base_url=sb.api_url).apps_connections_open(app_token=token)
    return str(response["url"])


class Socket:
    """A bare Socket Mode connection: read what the sandbox sends, ack by hand."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.session, self.ws = session, ws

    @classmethod
    async def connect(cls, sb: SlackSandbox) -> Socket:
        session = aiohttp.ClientSession()
        return cls(session, await session.ws_connect(await open_url(sb)))

    async def next(self, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
        message = await self.ws.receive(timeout=timeout)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        data: dict[str, Any] = json.loads(message.data)
        return data

    async def ack(self, envelope: dict[str, Any], payload: dict[str, Any] | None = None) -> None:
        await self.ws.send_json({"envelope_id": envelope["envelope_id"], **({"payload": payload} if payload else {})})

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()


@pytest.fixture
async def socket(sb: SlackSandbox) -> AsyncIterator[Socket]:
    connection = await Socket.connect(sb)
    try:
        yield connection
    finally:
        await connection.close()


async def test_apps_connections_open_wants_the_app_level_token(sb: SlackSandbox) -> None:
    for token, error in ((TOKEN, "not_allowed_token_type"), ("xapp-someone-else", "invalid_auth")):
        with pytest.raises(SlackApiError) as refused:
            await open_url(sb, token)
        assert refused.value.response["error"] == error
    async with aiohttp.ClientSession() as session, session.post(sb.api_url + "apps.connections.open") as response:
        assert (response.status, await response.json()) == (200, {"ok": False, "error": "not_authed"})

    url = await open_url(sb)
    assert url.startswith(f"ws://127.0.0.1:{sb.port}/link/?ticket=") and url.endswith("&app_id=A0SANDBOX")
    assert [c["response"]["ok"] for c in sb.calls("apps.connections.open")] == [False, False, False, True]
    assert all("token" not in c["params"] for c in sb.calls("apps.connections.open"))
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as unknown:
            await session.ws_connect(url.split("?")[0] + "?ticket=made-up")
        assert unknown.value.status == 401


async def test_events_come_as_envelopes_and_unacked_ones_come_again(sb: SlackSandbox, socket: Socket) -> None:
    hello = await socket.next()
    assert (hello["type"], hello["num_connections"], hello["connection_info"]) == ("hello", 1, {"app_id": "A0SANDBOX"})
    assert sb.request_url is None and sb.socket_mode.active()

    ts = sb.post("U0ALICE", "C0GENERAL", "<@U0BOT> hi")
    first = await socket.next()
    assert {k: v for k, v in first.items() if k not in ("envelope_id", "payload")} == {
        "type": "events_api",
        "accepts_response_payload": False,
        "retry_attempt": 0,
        "retry_reason": "",
    }
    assert first["payload"]["type"] == "event_callback"
    assert (first["payload"]["event"]["type"], first["payload"]["event"]["ts"]) == ("app_mention", ts)
    # not acked within the delivery timeout: the next event goes out, and the unacked one again after a while
    message = await socket.next()
    assert (message["payload"]["event"]["type"], message["retry_attempt"]) == ("message", 0)
    await socket.ack(message)
    again = await socket.next()
    assert again["payload"] == first["payload"] and again["envelope_id"] != first["envelope_id"]
    assert (again["retry_attempt"], again["retry_reason"]) == (1, "timeout")
    await socket.ack(again)
    await sb.wait_idle()

    attempts = [(d["type"], d["retry_num"], d["retry_reason"], d["error"], d["status"]) for d in sb.deliveries()]
    assert attempts == [
        ("app_mention", 0, None, "timeout", None),
        ("message", 0, None, None, 200),
        ("app_mention", 1, "timeout", None, 200),
    ]
    assert [(e.acked, e.error) for e in sb.socket_mode.envelopes] == [(False, "timeout"), (True, None), (True, None)]


async def test_an_interactions_ack_payload_is_its_answer(sb: SlackSandbox, socket: Socket) -> None:
    await socket.next()  # hello
    web = AsyncWebClient(token=TOKEN, base_url=sb.api_url)
    posted = await web.chat_postMessage(channel="C0GENERAL", text="Approve?", blocks=QUESTION_BLOCKS)
    await socket.ack(await socket.next())  # the bot's own message event

    clicking = asyncio.create_task(sb.click("U0BOB", "C0GENERAL", str(posted["ts"]), "open"))
    click = await socket.next()
    assert (click["type"], click["accepts_response_payload"]) == ("interactive", False)
    assert "retry_attempt" not in click and click["payload"]["type"] == "block_actions"
    await socket.ack(click)
    clicked = await clicking
    assert (clicked["ok"], clicked["status"]) == (True, 200)

    await web.views_open(trigger_id=click["payload"]["trigger_id"], view=modal())
    submitting = asyncio.create_task(sb.submit("U0BOB", {"answer_block": "x"}))
    submission = await socket.next()
    assert (submission["type"], submission["accepts_response_payload"]) == ("interactive", True)
    assert submission["payload"]["type"] == "view_submission"
    await socket.ack(submission, {"response_action": "errors", "errors": {"answer_block": "Too short"}})
    refused = await submitting
    assert (refused["response_action"], refused["errors"]) == ("errors", {"answer_block": "Too short"})
    (still_open,) = sb.views("U0BOB")
    assert still_open["errors"] == {"answer_block": "Too short"}

    submitting = asyncio.create_task(sb.submit("U0BOB", {"answer_block": "long enough"}))
    await socket.ack(await socket.next())
    accepted = await submitting
    assert (accepted["ok"], accepted["response_action"], sb.views("U0BOB")) == (True, None, [])


async def test_a_disconnect_asks_for_a_new_connection_and_deliveries_wait_for_it(
    sb: SlackSandbox, socket: Socket
) -> None:
    sb.deliverer.timeout = 5.0
    sb.socket_mode.grace = 0.2
    await socket.next()  # hello
    assert await sb.socket_mode.disconnect() == 1
    disconnect = await socket.next()
    assert (disconnect["type"], disconnect["reason"]) == ("disconnect", "refresh_requested")
    assert sb.socket_mode.live() == []

    ts = sb.post("U0ALICE", "C0GENERAL", "hello")
    closing = await socket.ws.receive(timeout=5)  # the old connection is closed after the grace period
    assert closing.type == aiohttp.WSMsgType.CLOSE
    fresh = await Socket.connect(sb)
    try:
        hello = await fresh.next()
        assert (hello["type"], hello["num_connections"]) == ("hello", 1)
        event = await fresh.next()  # the event waited for the new connection
        assert (event["payload"]["event"]["ts"], event["retry_attempt"]) == (ts, 0)
        await fresh.ack(event)
        await sb.wait_idle()
    finally:
        await fresh.close()
    assert [(d["retry_num"], d["ok"]) for d in sb.deliveries()] == [(0, True)]


async def test_with_socket_mode_on_and_no_connection_events_are_retried_then_dropped(sb: SlackSandbox) -> None:
    sb.socket_mode.enabled = True
    sb.deliverer.timeout = 0.05
    sb.post("U0ALICE", "C0GENERAL", "anyone?")
    await sb.wait_idle()
    attempts = [(d["retry_num"], d["error"]) for d in sb.deliveries()]
    assert attempts == [(n, "socket_not_connected") for n in range(4)]


async def test_with_a_request_url_the_socket_stays_unused(sb: SlackSandbox, socket: Socket) -> None:
    sb.request_url = f"{sb.url}/nowhere"
    assert not sb.socket_mode.active()
    sb.post("U0ALICE", "C0GENERAL", "hello")
    await sb.wait_idle()
    assert sb.deliveries()[0]["status"] == 404 and sb.socket_mode.envelopes == []


def test_a_slash_command_becomes_a_slash_commands_envelope() -> None:
    form = "command=%2Fagent&text=help&user_id=U0ALICE&channel_id=C0GENERAL&trigger_id=T1"
    assert envelope_for(form, {"Content-Type": "application/x-www-form-urlencoded"}) == {
        "type": "slash_commands",
        "payload": {
            "command": "/agent",
            "text": "help",
            "user_id": "U0ALICE",
            "channel_id": "C0GENERAL",
            "trigger_id": "T1",
        },
        "accepts_response_payload": True,
    }
    shortcut = {"type": "shortcut", "callback_id": "ask"}
    assert envelope_for(interaction_body(shortcut), {"Content-Type": "application/x-www-form-urlencoded"}) == {
        "type": "interactive",
        "payload": shortcut,
        "accepts_response_payload": False,
    }


async def test_the_control_api_shows_connections_and_disconnects(sb: SlackSandbox, socket: Socket) -> None:
    await socket.next()  # hello
    async with aiohttp.ClientSession(base_url=sb.url) as http:
        async with http.get("/control/socket_mode") as response:
            state = await response.json()
        assert (state["active"], [c["retiring"] for c in state["connections"]]) == (True, [False])
        async with http.post("/control/socket_mode/disconnect", json={"reason": "warning"}) as response:
            assert await response.json() == {"ok": True, "told": 1}
        assert (await socket.next())["reason"] == "warning"
        async with http.post("/control/socket_mode", json={"enabled": False}) as response:
            assert (await response.json())["active"] is False


# ---- Bolt's own Socket Mode handler ---------------------------------------------------------


@pytest.fixture
async def bolt(sb: SlackSandbox) -> AsyncIterator[Bot]:
    bot = build_bot(sb)
    handler = AsyncSocketModeHandler(bot.app, APP_TOKEN)
    await handler.connect_async()
    await sb.socket_mode.wait_connected()
    try:
        yield bot
    finally:
        await handler.close_async()


async def test_bolt_gets_events_clicks_and_answers_modals_over_the_socket(
    bolt: Bot, sb: SlackSandbox, people: SandboxClient
) -> None:
    ts = await people.post("U0ALICE", "C0GENERAL", "<@U0BOT> please reply")
    await people.wait_for(lambda: len(bolt.seen) >= 2 and any(m.get("bot_id") for m in sb.replies("C0GENERAL", ts)))
    await people.click("U0BOB", "C0GENERAL", await post_question(bolt), "open")
    await people.wait_for(lambda: people.views("U0BOB"))
    refused = await people.submit("U0BOB", {"answer_block": "bad"})
    assert (refused["status"], refused["response_action"], refused["errors"]) == (
        200,
        "errors",
        {"answer_block": "Try harder"},
    )
    pushed = await people.submit("U0BOB", {"answer_block": "push"})
    assert [v["title"]["text"] for v in await people.views("U0BOB")] == ["Answer", "Pushed"]
    assert pushed["response_action"] == "push"
    await sb.wait_idle()

    assert (
        sorted(k for k in bolt.kinds() if k != "message") == ["app_mention", "block_actions"] + ["view_submission"] * 2
    )
    # Bolt turns retry_attempt 0 into its retry header
    assert bolt.retries[:2] == [("0", "", "<@U0BOT> please reply")] * 2
    assert all(d["ok"] for d in sb.deliveries())
    assert all(e.acked for e in sb.socket_mode.envelopes)
