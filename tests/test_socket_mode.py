"""`python -m bot socket` end to end: the real slack_sdk Socket Mode client against the sandbox's websocket."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.dev.sandbox import SlackSandbox
from tests.support.database import free_port
from tests.support.drain import wait_drained
from tests.support.harness import Harness
from tests.support.processes import BotProcess
from tests.support.slack import ANSWER_BUTTON, GENERAL, containing, visible_text, wait_for_message
from tests.support.socket_mode import healthz, read_until, spawn_socket_bot, start_socket_bot, stop

FORM = "tests.support.graphs:form"
WRONG = {"field:destination": "L", "field:nights": "45"}
WRONG_ERRORS = {"field:destination": "Write at least 2 characters.", "field:nights": "The largest allowed is 30."}
RIGHT = {"field:destination": "Lisbon", "field:nights": "4"}


@pytest.fixture
async def socket_bot(harness: Harness) -> AsyncIterator[BotProcess]:
    bot = await start_socket_bot(harness, FORM)
    try:
        yield bot
    finally:
        assert await stop(bot) == 0


async def ask(slack: Any, text: str) -> tuple[str, dict[str, Any]]:
    root = await slack.post("U0ALICE", GENERAL, f"<@U0BOT> {text}")
    request = await wait_for_message(slack, GENERAL, root, containing(f"Plan the trip: {text}"))
    return root, request


async def answer(slack: Any, root: str, request: dict[str, Any]) -> dict[str, Any]:
    """Click Answer, submit a wrong form (refused in the ack), then a right one; the graph's result."""
    clicked = await slack.click("U0BOB", GENERAL, request["ts"], ANSWER_BUTTON)
    assert clicked["ok"] and clicked["status"] == 200, clicked
    (modal,) = await slack.wait_for(lambda: slack.views("U0BOB"))
    refused = await slack.submit("U0BOB", WRONG)
    assert (refused["ok"], refused["response_action"], refused["errors"]) == (True, "errors", WRONG_ERRORS)
    assert [v["id"] for v in await slack.views("U0BOB")] == [modal["id"]]
    accepted = await slack.submit("U0BOB", RIGHT)
    assert (accepted["ok"], accepted["response_action"], accepted["closed"]) == (True, None, [modal["id"]])
    result = await wait_for_message(slack, GENERAL, root, containing("destination"))
    shown = visible_text(result).replace("&quot;", '"')
    assert '"destination": "Lisbon"' in shown and '"nights": 4' in shown
    return result


def acks(sandbox: SlackSandbox, kind: str) -> list[dict[str, Any] | None]:
    """What the acks of the `kind` envelopes carried, in order."""
    return [e.payload for e in sandbox.socket_mode.envelopes if e.type == kind]


async def test_a_conversation_runs_over_socket_mode(harness: Harness, slack: Any, socket_bot: BotProcess) -> None:
    sandbox = harness.sandbox
    assert sandbox.request_url is None and sandbox.socket_mode.active()

    root, request = await ask(slack, "Lisbon in spring")
    await answer(slack, root, request)
    await wait_drained(harness.database_url, slack)

    envelopes = sandbox.socket_mode.envelopes
    assert all(e.acked and e.error is None for e in envelopes), [e.to_dict() for e in envelopes]
    assert {e.type for e in envelopes} == {"events_api", "interactive"}
    assert all((e.retry_attempt, e.retry_reason) == (0, "") for e in envelopes if e.type == "events_api")
    # block_actions, then the refused view_submission whose ack carried the errors, then the accepted one
    assert acks(sandbox, "interactive") == [None, {"response_action": "errors", "errors": WRONG_ERRORS}, None]
    kinds = [(d["kind"], d["type"], d["ok"]) for d in sandbox.deliveries() if d["kind"] == "interaction"]
    assert kinds == [("interaction", t, True) for t in ("block_actions", "view_submission", "view_submission")]
    assert [c["method"] for c in sandbox.calls("apps.connections.open")] == ["apps.connections.open"]


async def test_the_bot_reconnects_when_slack_asks_and_carries_on(
    harness: Harness, slack: Any, socket_bot: BotProcess
) -> None:
    sandbox = harness.sandbox
    (first,) = sandbox.socket_mode.live()
    root, request = await ask(slack, "Lisbon in spring")

    assert await sandbox.socket_mode.disconnect("refresh_requested") == 1
    # the click goes out while the bot is reconnecting: the sandbox waits for the new connection
    await answer(slack, root, request)

    (second,) = sandbox.socket_mode.live()
    assert second.id != first.id
    assert [e.connection for e in sandbox.socket_mode.envelopes if e.type == "interactive"] == [second.id] * 3
    assert len(sandbox.calls("apps.connections.open")) == 2
    # the bot closes the old connection itself, without waiting for the sandbox to
    await slack.wait_for(lambda: [c.id for c in sandbox.socket_mode.connections] == [second.id])

    # the next event after the reconnection starts a new conversation
    root2, _ = await ask(slack, "Porto in autumn")
    assert root2 != root
    await wait_drained(harness.database_url, slack)
    assert all(e.acked for e in sandbox.socket_mode.envelopes), [e.to_dict() for e in sandbox.socket_mode.envelopes]


async def test_socket_serves_healthz_and_no_events_endpoint(harness: Harness, socket_bot: BotProcess) -> None:
    assert await healthz(socket_bot.url) == (200, {"ok": True})
    async with aiohttp.ClientSession() as session, session.post(socket_bot.url + "/slack/events", data="{}") as resp:
        assert resp.status == 404


async def test_without_slack_the_socket_says_one_line_per_attempt_and_stops_on_sigterm(harness: Harness) -> None:
    process = await spawn_socket_bot(harness, FORM, SLACK_API_URL=f"http://127.0.0.1:{free_port()}/api/")
    assert process.stderr is not None
    try:
        said = await read_until(process.stderr, "can't connect")
    except BaseException:
        process.kill()
        raise
    process.terminate()
    rest = (await process.stderr.read()).decode(errors="replace").splitlines()
    assert await process.wait() == 0
    (line,) = [s for s in said + rest if "can't connect" in s]
    assert "Socket Mode: can't connect to Slack (ClientConnectorError: Cannot connect to host 127.0.0.1" in line
    assert line.endswith("retrying in 10 s")
    assert not [s for s in said + rest if "Traceback" in s or s.startswith(" ")], json.dumps(said + rest, indent=1)
