"""The sandbox delivering to a real slack_bolt AsyncApp over HTTP: events, clicks, modals, retries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.dev.sandbox import SandboxClient, SlackSandbox
from tests.sandbox.conftest import SECRET, TOKEN

QUESTION_BLOCKS = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "Approve?"}},
    {
        "type": "actions",
        "block_id": "decide",
        "elements": [
            {"type": "button", "action_id": "open", "text": {"type": "plain_text", "text": "Answer"}, "value": "q1"},
            {"type": "button", "action_id": "skip", "text": {"type": "plain_text", "text": "Skip"}, "value": "q2"},
            {"type": "button", "action_id": "note", "text": {"type": "plain_text", "text": "Note"}, "value": "n"},
        ],
    },
]


def modal(title: str = "Answer", **extra: Any) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "answer_view",
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Send"},
        "blocks": [
            {
                "type": "input",
                "block_id": "answer_block",
                "label": {"type": "plain_text", "text": "Your answer"},
                "element": {"type": "plain_text_input", "action_id": "answer"},
            },
            {
                "type": "actions",
                "block_id": "tools",
                "elements": [{"type": "button", "action_id": "hint", "text": {"type": "plain_text", "text": "Hint"}}],
            },
        ],
        **extra,
    }


@dataclass
class Bot:
    """A minimal Bolt app served over HTTP, recording what its listeners saw."""

    app: AsyncApp
    client: AsyncWebClient
    seen: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    retries: list[tuple[str | None, str | None, str]] = field(default_factory=list)

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.seen]

    def payloads(self, kind: str) -> list[dict[str, Any]]:
        return [body for k, body in self.seen if k == kind]


def build_bot(sb: SlackSandbox) -> Bot:
    client = AsyncWebClient(token=TOKEN, base_url=sb.api_url)
    bot = Bot(app=AsyncApp(signing_secret=SECRET, client=client), client=client)
    app = bot.app

    @app.middleware
    async def slow_and_retries(req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[Any]]) -> Any:
        retry = req.headers.get("x-slack-retry-num", [None])[0]
        reason = req.headers.get("x-slack-retry-reason", [None])[0]
        event = (req.body or {}).get("event") or {}
        bot.retries.append((retry, reason, str(event.get("text"))))
        if "slow" in str(event.get("text")) and retry is None:
            await asyncio.sleep(0.8)
        return await next()

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], say: Any) -> None:
        bot.seen.append(("app_mention", event))
        if "reply" in event["text"]:
            await say(text="on it", thread_ts=event["ts"])

    @app.event("message")
    async def on_message(event: dict[str, Any]) -> None:
        bot.seen.append(("message", event))

    @app.action("open")
    async def on_open(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        bot.seen.append(("block_actions", body))
        await client.views_open(trigger_id=body["trigger_id"], view=modal(notify_on_close=True))

    @app.action("note")
    async def on_note(ack: Any, body: dict[str, Any], respond: Any) -> None:
        await ack()
        bot.seen.append(("block_actions", body))
        await respond(text="only you can see this", response_type="ephemeral")
        await respond(text="noted", replace_original=True)

    @app.action("hint")
    async def on_hint(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        bot.seen.append(("block_actions", body))
        await client.views_update(view_id=body["view"]["id"], view=modal("With hint"), hash=body["view"]["hash"])

    @app.view("answer_view")
    async def on_submit(ack: Any, view: dict[str, Any], body: dict[str, Any]) -> None:
        bot.seen.append(("view_submission", body))
        answer = view["state"]["values"]["answer_block"]["answer"]["value"]
        if answer == "bad":
            await ack(response_action="errors", errors={"answer_block": "Try harder"})
        elif answer == "push":
            await ack(response_action="push", view=modal("Pushed"))
        elif answer == "update":
            await ack(response_action="update", view=modal("Updated"))
        elif answer == "clear":
            await ack(response_action="clear")
        else:
            await ack()

    @app.view_closed("answer_view")
    async def on_closed(ack: Any, body: dict[str, Any]) -> None:
        await ack()
        bot.seen.append(("view_closed", body))

    return bot


@pytest.fixture
async def bot(sb: SlackSandbox) -> AsyncIterator[Bot]:
    bot = build_bot(sb)

    async def handle(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await bot.app.async_dispatch(await to_bolt_request(request)))

    http = web.Application()
    http.router.add_post("/slack/events", handle)
    runner = web.AppRunner(http, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    sb.request_url = f"http://127.0.0.1:{port}/slack/events"
    try:
        yield bot
    finally:
        sb.request_url = None
        await runner.cleanup()


async def post_question(bot: Bot) -> str:
    posted = await bot.client.chat_postMessage(channel="C0GENERAL", text="Approve?", blocks=QUESTION_BLOCKS)
    return str(posted["ts"])


async def test_a_mention_arrives_as_app_mention_then_message(bot: Bot, sb: SlackSandbox, people: SandboxClient) -> None:
    ts = await people.post("U0ALICE", "C0GENERAL", "<@U0BOT> please reply")
    await sb.wait_idle()
    await people.wait_for(lambda: len(bot.seen) >= 2 and any(m.get("bot_id") for m in sb.replies("C0GENERAL", ts)))
    await sb.wait_idle()

    deliveries = await people.deliveries()
    first_two = deliveries[:2]
    assert [(d["type"], d["ts"], d["status"]) for d in first_two] == [("app_mention", ts, 200), ("message", ts, 200)]
    assert first_two[0]["event_id"] != first_two[1]["event_id"]
    assert sorted(bot.kinds()) == ["app_mention", "message"]
    (mention,) = bot.payloads("app_mention")
    (message,) = bot.payloads("message")
    assert mention["user"] == message["user"] == "U0ALICE" and message["channel_type"] == "channel"
    assert message["blocks"][0]["elements"][0]["elements"][0] == {"type": "user", "user_id": "U0BOT"}

    (own,) = [d for d in deliveries if d["user"] == "U0BOT"]
    assert (own["type"], own["status"]) == ("message", 200)
    assert all(d["retry_num"] == 0 and d["ok"] for d in deliveries)


async def test_dm_messages_are_im_events(bot: Bot, sb: SlackSandbox, people: SandboxClient) -> None:
    await people.post("U0CAROL", "D0CAROL", "hello bot")
    await people.wait_for(lambda: bot.payloads("message"))
    (event,) = bot.payloads("message")
    assert (event["channel"], event["channel_type"], event["text"]) == ("D0CAROL", "im", "hello bot")


async def test_wrong_signature_is_refused_and_retried_like_slack(bot: Bot, sb: SlackSandbox) -> None:
    sb.deliverer.signing_secret = "not-the-secret"
    sb.post("U0ALICE", "C0GENERAL", "hello")
    await sb.wait_idle()
    attempts = [(d["retry_num"], d["retry_reason"], d["status"]) for d in sb.deliveries()]
    assert attempts == [(0, None, 401), (1, "http_error", 401), (2, "http_error", 401), (3, "http_error", 401)]
    assert bot.seen == []


async def test_a_slow_answer_is_redelivered_with_retry_headers(bot: Bot, sb: SlackSandbox) -> None:
    ts = sb.post("U0ALICE", "C0GENERAL", "slow one")
    await sb.wait_idle()
    attempts = [(d["ts"], d["retry_num"], d["retry_reason"], d["error"], d["status"]) for d in sb.deliveries()]
    assert attempts == [(ts, 0, None, "http_timeout", None), (ts, 1, "http_timeout", None, 200)]
    assert ("1", "http_timeout", "slow one") in bot.retries


async def test_redeliver_resends_with_the_next_retry_number(bot: Bot, sb: SlackSandbox) -> None:
    sb.post("U0ALICE", "C0GENERAL", "once")
    await sb.wait_idle()
    (first,) = sb.deliveries()
    again = await sb.redeliver(first["event_id"], reason="http_timeout")
    assert (again["event_id"], again["retry_num"], again["status"]) == (first["event_id"], 1, 200)
    assert bot.retries[-1] == ("1", "http_timeout", "once")
    assert (await sb.redeliver(first["event_id"]))["retry_num"] == 2


async def test_click_delivers_block_actions_and_the_trigger_opens_a_modal(
    bot: Bot, sb: SlackSandbox, people: SandboxClient
) -> None:
    ts = await post_question(bot)
    clicked = await people.click("U0BOB", "C0GENERAL", ts, "open", value="q1")
    assert clicked["ok"] and clicked["status"] == 200 and clicked["trigger_id"]

    (body,) = bot.payloads("block_actions")
    assert body["container"] == {"type": "message", "message_ts": ts, "channel_id": "C0GENERAL", "is_ephemeral": False}
    assert body["user"]["id"] == "U0BOB" and body["channel"] == {"id": "C0GENERAL", "name": "general"}
    assert body["message"]["blocks"][1]["block_id"] == "decide"
    action = body["actions"][0]
    assert [action[k] for k in ("action_id", "block_id", "value", "type")] == ["open", "decide", "q1", "button"]
    assert body["response_url"].startswith(f"{sb.url}/response/")

    (view,) = await people.wait_for(lambda: people.views("U0BOB"))
    assert view["callback_id"] == "answer_view" and view["id"].startswith("V")
    assert await people.views("U0ALICE") == []


async def test_clicking_a_missing_button_is_an_error(bot: Bot, people: SandboxClient) -> None:
    ts = await post_question(bot)
    with pytest.raises(Exception, match="action_not_found"):
        await people.click("U0BOB", "C0GENERAL", ts, "nope")


async def test_submission_errors_keep_the_modal_open_until_accepted(
    bot: Bot, sb: SlackSandbox, people: SandboxClient
) -> None:
    await people.click("U0BOB", "C0GENERAL", await post_question(bot), "open")
    await people.wait_for(lambda: people.views("U0BOB"))

    missing = await people.submit("U0BOB", {})
    assert missing["error"] == "required_fields_missing" and "answer_block" in missing["errors"]

    refused = await people.submit("U0BOB", {"answer_block": {"answer": "bad"}})
    assert (refused["status"], refused["response_action"]) == (200, "errors")
    assert refused["errors"] == {"answer_block": "Try harder"}
    (still_open,) = await people.views("U0BOB")
    assert still_open["errors"] == {"answer_block": "Try harder"}

    accepted = await people.submit("U0BOB", {"answer_block": "fine"})
    assert accepted["ok"] and accepted["response_action"] is None and accepted["errors"] == {}
    assert await people.views("U0BOB") == []
    submitted = bot.payloads("view_submission")[-1]
    assert submitted["view"]["state"]["values"] == {
        "answer_block": {"answer": {"type": "plain_text_input", "value": "fine"}}
    }
    assert submitted["view"]["bot_id"] == "B0BOT" and submitted["trigger_id"]


async def test_response_actions_push_update_and_clear(bot: Bot, sb: SlackSandbox, people: SandboxClient) -> None:
    await people.click("U0BOB", "C0GENERAL", await post_question(bot), "open")
    (root,) = await people.wait_for(lambda: people.views("U0BOB"))

    updated = await people.submit("U0BOB", {"answer_block": "update"})
    assert updated["response_action"] == "update"
    assert [(v["id"], v["title"]["text"]) for v in await people.views("U0BOB")] == [(root["id"], "Updated")]

    pushed = await people.submit("U0BOB", {"answer_block": "push"})
    assert pushed["response_action"] == "push"
    assert [v["title"]["text"] for v in await people.views("U0BOB")] == ["Updated", "Pushed"]

    await people.click_view("U0BOB", "hint")
    await people.wait_for(lambda: sb.views("U0BOB")[-1]["title"]["text"] == "With hint")
    clicked = bot.payloads("block_actions")[-1]
    assert clicked["container"]["type"] == "view" and "message" not in clicked

    cleared = await people.submit("U0BOB", {"answer_block": "clear"})
    assert cleared["response_action"] == "clear" and await people.views("U0BOB") == []


async def test_cancel_delivers_view_closed(bot: Bot, people: SandboxClient) -> None:
    await people.click("U0CAROL", "C0GENERAL", await post_question(bot), "open")
    await people.wait_for(lambda: people.views("U0CAROL"))
    closed = await people.cancel("U0CAROL")
    assert closed["ok"] and closed["status"] == 200 and len(closed["closed"]) == 1
    (body,) = bot.payloads("view_closed")
    assert body["view"]["callback_id"] == "answer_view" and body["is_cleared"] is False
    assert await people.views("U0CAROL") == []


async def test_respond_uses_the_response_url(bot: Bot, sb: SlackSandbox, people: SandboxClient) -> None:
    ts = await post_question(bot)
    await people.click("U0ALICE", "C0GENERAL", ts, "note")
    notes = await people.wait_for(lambda: people.ephemerals("C0GENERAL", "U0ALICE"))
    assert [n["text"] for n in notes] == ["only you can see this"]
    await people.wait_for(lambda: sb.history("C0GENERAL")[0]["text"] == "noted")
    await sb.wait_idle()
    assert any(d["subtype"] == "message_changed" and d["ok"] for d in sb.deliveries())


async def test_stale_click_uses_the_message_as_the_person_saw_it(bot: Bot, sb: SlackSandbox) -> None:
    ts = await post_question(bot)
    seen_by_bob = sb.history("C0GENERAL")[0]
    await bot.client.chat_update(channel="C0GENERAL", ts=ts, text="decided", blocks=[])
    answer = seen_by_bob["blocks"][1]["elements"][0]
    result = await sb.deliver_click("U0BOB", "C0GENERAL", seen_by_bob, answer)
    assert result["ok"]
    body = bot.payloads("block_actions")[-1]
    assert body["message"]["text"] == "Approve?" and body["actions"][0]["block_id"] == "decide"


async def test_interactions_without_a_request_url_fail_cleanly(sb: SlackSandbox, people: SandboxClient) -> None:
    web = AsyncWebClient(token=TOKEN, base_url=sb.api_url)
    posted = await web.chat_postMessage(channel="C0GENERAL", text="q", blocks=QUESTION_BLOCKS)
    result = await people.click("U0BOB", "C0GENERAL", posted["ts"], "open")
    assert (result["ok"], result["error"]) == (False, "no_request_url")
