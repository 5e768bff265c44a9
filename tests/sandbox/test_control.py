"""The control API and SandboxClient, with a bare HTTP receiver standing in for the app."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.dev.sandbox import SandboxClient, SandboxError, SlackSandbox, WaitTimeout
from tests.sandbox.conftest import SECRET, TOKEN


@dataclass
class Receiver:
    """Records signed requests; answers with `status` (and optional headers)."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)

    def events(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests if "event" in r["body"]]


@pytest.fixture
async def receiver(sb: SlackSandbox) -> AsyncIterator[Receiver]:
    rec = Receiver()
    verifier = SignatureVerifier(SECRET)

    async def handle(request: web.Request) -> web.Response:
        raw = await request.text()
        assert verifier.is_valid_request(raw, dict(request.headers))
        if request.content_type == "application/x-www-form-urlencoded":
            body = json.loads(parse_qs(raw)["payload"][0])
        else:
            body = json.loads(raw)
        rec.requests.append({"body": body, "retry": request.headers.get("X-Slack-Retry-Num")})
        return web.Response(status=rec.status, headers=rec.headers)

    app = web.Application()
    app.router.add_post("/slack/events", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    rec.url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    async with SandboxClient(sb.url) as client:
        await client.set_request_url(rec.url)
    try:
        yield rec
    finally:
        await runner.cleanup()


async def test_event_envelope_shape(receiver: Receiver, sb: SlackSandbox, people: SandboxClient) -> None:
    root = await people.post("U0ALICE", "C0GENERAL", "hi")
    ts = await people.post("U0BOB", "C0GENERAL", "in thread <@U0BOT>", thread_ts=root)
    await people.idle()
    envelopes = receiver.events()
    first = envelopes[0]
    assert {k: first[k] for k in ("token", "team_id", "api_app_id", "type", "is_ext_shared_channel")} == {
        "token": "sandbox-verification",
        "team_id": "T0SANDBOX",
        "api_app_id": "A0SANDBOX",
        "type": "event_callback",
        "is_ext_shared_channel": False,
    }
    assert first["authorizations"][0]["user_id"] == "U0BOT" and first["authorizations"][0]["is_bot"] is True
    assert first["event_id"].startswith("Ev") and isinstance(first["event_time"], int) and first["event_context"]
    assert len({e["event_id"] for e in envelopes}) == 3
    mention, message = envelopes[1]["event"], envelopes[2]["event"]
    assert (mention["type"], message["type"]) == ("app_mention", "message")
    for event in (mention, message):
        assert (event["ts"], event["thread_ts"], event["parent_user_id"], event["user"]) == (
            ts,
            root,
            "U0ALICE",
            "U0BOB",
        )


async def test_people_must_be_members_and_the_bot_only_hears_its_channels(
    receiver: Receiver, sb: SlackSandbox, people: SandboxClient
) -> None:
    with pytest.raises(SandboxError, match="not_in_channel"):
        await people.post("U0ALICE", "C0EXPERTS", "let me in")
    sb.workspace.add_channel("C0SECRET", "secret", ["U0ALICE"], bot_member=False)
    await people.post("U0ALICE", "C0SECRET", "<@U0BOT> can you hear me?")
    await people.idle()
    assert receiver.requests == []


async def test_no_retry_header_stops_retries(receiver: Receiver, sb: SlackSandbox, people: SandboxClient) -> None:
    receiver.status, receiver.headers = 500, {"X-Slack-No-Retry": "1"}
    await people.post("U0ALICE", "C0GENERAL", "hi")
    await people.idle()
    assert [(d["status"], d["retry_num"]) for d in await people.deliveries()] == [(500, 0)]


async def test_redeliver_and_rate_limit_over_http(receiver: Receiver, people: SandboxClient, sb: SlackSandbox) -> None:
    await people.post("U0ALICE", "C0GENERAL", "hi")
    await people.idle()
    (delivery,) = await people.deliveries()
    again = await people.redeliver(delivery["event_id"])
    assert again["retry_num"] == 1 and receiver.requests[-1]["retry"] == "1"
    with pytest.raises(SandboxError, match="event_not_found"):
        await people.redeliver("Ev0NOPE")

    await people.rate_limit("auth.test", times=1, retry_after=0)
    web = AsyncWebClient(token=TOKEN, base_url=sb.api_url)
    with pytest.raises(Exception, match="ratelimited"):
        await web.auth_test()
    assert (await web.auth_test())["ok"]
    assert [c["status"] for c in await people.calls("auth.test")] == [429, 200]


async def test_bot_messages_edits_and_deletes_are_delivered(receiver: Receiver, people: SandboxClient) -> None:
    web = AsyncWebClient(token=TOKEN, base_url=people.base_url + "/api/")
    posted = await web.chat_postMessage(channel="C0GENERAL", text="v1")
    await web.chat_update(channel="C0GENERAL", ts=posted["ts"], text="v2")
    await web.chat_delete(channel="C0GENERAL", ts=posted["ts"])
    await people.idle()
    events = [e["event"] for e in receiver.events()]
    assert [(e["type"], e.get("subtype")) for e in events] == [
        ("message", None),
        ("message", "message_changed"),
        ("message", "message_deleted"),
    ]
    assert (events[0]["bot_id"], events[0]["user"]) == ("B0BOT", "U0BOT")
    assert events[1]["message"]["text"] == "v2" and events[1]["previous_message"]["text"] == "v1"
    assert events[2]["deleted_ts"] == posted["ts"]


async def test_reactions_by_people_are_events(receiver: Receiver, people: SandboxClient) -> None:
    ts = await people.post("U0ALICE", "C0GENERAL", "vote")
    await people.react("U0BOB", "C0GENERAL", ts, "+1")
    await people.idle()
    event = receiver.events()[-1]["event"]
    assert (event["type"], event["user"], event["reaction"], event["item"]["ts"]) == (
        "reaction_added",
        "U0BOB",
        "+1",
        ts,
    )
    assert (await people.history("C0GENERAL"))[0]["reactions"][0]["users"] == ["U0BOB"]


async def test_modal_flow_over_raw_http(receiver: Receiver, sb: SlackSandbox, people: SandboxClient) -> None:
    web = AsyncWebClient(token=TOKEN, base_url=sb.api_url)
    blocks = [
        {
            "type": "actions",
            "elements": [{"type": "button", "action_id": "go", "text": {"type": "plain_text", "text": "Go"}}],
        }
    ]
    posted = await web.chat_postMessage(channel="C0GENERAL", text="q", blocks=blocks)
    clicked = await people.click("U0ALICE", "C0GENERAL", posted["ts"], "go")
    options = [{"text": {"type": "plain_text", "text": t}, "value": t.lower()} for t in ("Red", "Blue")]
    view = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Pick"},
        "submit": {"type": "plain_text", "text": "OK"},
        "callback_id": "pick",
        "blocks": [
            {
                "type": "input",
                "block_id": "color",
                "label": {"type": "plain_text", "text": "Color"},
                "element": {"type": "static_select", "action_id": "c", "options": options},
            },
            {
                "type": "input",
                "block_id": "when",
                "optional": True,
                "label": {"type": "plain_text", "text": "When"},
                "element": {"type": "datepicker", "action_id": "d"},
            },
        ],
    }
    opened = await web.views_open(trigger_id=clicked["trigger_id"], view=view)
    result = await people.submit("U0ALICE", {"color": {"c": "Blue"}})
    assert result["ok"] and result["response_action"] is None and result["closed"] == [opened["view"]["id"]]
    submission = receiver.requests[-1]["body"]
    assert submission["type"] == "view_submission"
    assert submission["view"]["state"]["values"] == {
        "color": {"c": {"type": "static_select", "selected_option": options[1]}},
        "when": {"d": {"type": "datepicker", "selected_date": None}},
    }


async def test_wait_helpers(sb: SlackSandbox, people: SandboxClient) -> None:
    web = AsyncWebClient(token=TOKEN, base_url=sb.api_url)
    root = await people.post("U0ALICE", "C0GENERAL", "question")

    async def answer_later() -> None:
        await asyncio.sleep(0.1)
        await web.chat_postMessage(channel="C0GENERAL", thread_ts=root, text="first")
        await web.chat_postMessage(channel="C0GENERAL", thread_ts=root, text="the answer")

    task = asyncio.create_task(answer_later())
    reply = await people.wait_for_reply("C0GENERAL", root, lambda m: "answer" in m["text"], timeout=5)
    await task
    assert reply["text"] == "the answer" and reply["thread_ts"] == root

    with pytest.raises(WaitTimeout) as info:
        await people.wait_for(lambda: people.views("U0ALICE"), timeout=0.2)
    assert info.value.last == [] and isinstance(info.value, TimeoutError)


async def test_reading_routes_and_reset(sb: SlackSandbox, people: SandboxClient) -> None:
    ids = {c["id"] for c in await people.channels()}
    assert {"C0GENERAL", "C0EXPERTS", "D0ALICE", "D0BOB", "D0CAROL"} <= ids
    ts = await people.post("U0ALICE", "C0GENERAL", "hello")
    assert (await people.message("C0GENERAL", ts))["text"] == "hello"
    assert [m["text"] for m in await people.history("C0GENERAL")] == ["hello"]
    await people.reset()
    assert await people.history("C0GENERAL") == [] and await people.deliveries() == []
    with pytest.raises(SandboxError, match="channel_not_found"):
        await people.history("C0NOPE")


async def test_standalone_module_serves() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.dev.sandbox",
        "--port",
        "0",
        "--bot-token",
        "xoxb-cli",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
        url = line.strip().rsplit(" ", 1)[-1]
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{url}/api/auth.test", headers={"Authorization": "Bearer xoxb-cli"}) as resp:
                assert (await resp.json())["user_id"] == "U0BOT"
    finally:
        proc.terminate()
        await proc.communicate()
