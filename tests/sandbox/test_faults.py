"""Injected Web API faults, seen through the real slack_sdk AsyncWebClient (no retry handlers)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncConnectionErrorRetryHandler
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.web.async_client import AsyncWebClient

from bot.dev.sandbox import SandboxClient, SandboxError, SlackSandbox
from bot.dev.sandbox.errors import SlackError
from tests.sandbox.conftest import TOKEN

METADATA = {"event_type": "bot_reply", "event_payload": {"reply_id": "r-1"}}


def bare(sb: SlackSandbox, timeout: float = 5.0, session: aiohttp.ClientSession | None = None) -> AsyncWebClient:
    """A slack_sdk client that never retries, so every fault reaches the test."""
    return AsyncWebClient(token=TOKEN, base_url=sb.api_url, timeout=timeout, retry_handlers=[], session=session)  # type: ignore[arg-type]


async def until(condition: Callable[[], Any], timeout: float = 5.0) -> None:  # noqa: ASYNC109
    """Wait until `condition()` is truthy."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def texts(sb: SlackSandbox) -> list[str]:
    return [m["text"] for m in sb.history("C0GENERAL")]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


@pytest.mark.parametrize(
    ("kind", "status", "error"),
    [
        ("ratelimited", 429, "ratelimited"),
        ("server_error", 500, "internal_error"),
        ("error:message_not_found", 200, "message_not_found"),
    ],
)
async def test_refusing_faults_do_not_store(sb: SlackSandbox, kind: str, status: int, error: str) -> None:
    sb.inject_fault("chat.postMessage", kind, retry_after=7)
    web = bare(sb)
    with pytest.raises(SlackApiError) as info:
        await web.chat_postMessage(channel="C0GENERAL", text="lost")
    response = info.value.response
    assert response.status_code == status and response.data == {"ok": False, "error": error}
    assert response.headers.get("Retry-After") == ("7" if kind == "ratelimited" else None)
    assert texts(sb) == []
    assert (await web.chat_postMessage(channel="C0GENERAL", text="kept"))["ok"]
    assert texts(sb) == ["kept"]
    (faulted, normal) = sb.calls("chat.postMessage")
    assert (faulted["fault"], faulted["status"], faulted["response"]) == (kind, status, {"ok": False, "error": error})
    assert (normal["fault"], normal["status"]) == (None, 200)


async def test_html_error_is_a_502_page_slack_sdk_cannot_parse(
    sb: SlackSandbox, session: aiohttp.ClientSession
) -> None:
    sb.inject_fault("chat.postMessage", "html_error", times=2)
    with pytest.raises(SlackApiError) as info:
        await bare(sb).chat_postMessage(channel="C0GENERAL", text="lost")
    response = info.value.response
    assert response.status_code == 502 and response.data == {}
    assert response.headers["Content-Type"].startswith("text/html")
    form = {"token": TOKEN, "channel": "C0GENERAL", "text": "lost too"}
    async with session.post(f"{sb.api_url}chat.postMessage", data=form) as resp:
        assert (resp.status, resp.content_type) == (502, "text/html")
        assert "502 Bad Gateway" in await resp.text()
    assert texts(sb) == []
    (call, _) = sb.calls("chat.postMessage")
    assert (call["fault"], call["status"]) == ("html_error", 502) and "<html>" in call["response"]["html"]


async def test_timeout_after_store_stores_then_holds_the_answer(sb: SlackSandbox) -> None:
    sb.inject_fault("chat.postMessage", "timeout_after_store", delay=5.0)
    with pytest.raises(asyncio.TimeoutError):
        await bare(sb, timeout=0.5).chat_postMessage(channel="C0GENERAL", text="uncertain", metadata=METADATA)
    assert sb.faults.held == 1
    # The held answer does not block other calls: the bot can look for its message meanwhile.
    history = await bare(sb).conversations_history(channel="C0GENERAL", include_all_metadata=True)
    (found,) = [m for m in history["messages"] if m.get("metadata") == METADATA]
    (call,) = sb.calls("chat.postMessage")
    assert (call["fault"], call["status"]) == ("timeout_after_store", 200)
    assert call["response"]["ok"] and call["response"]["ts"] == found["ts"]


async def test_a_held_answer_arrives_after_the_delay(sb: SlackSandbox) -> None:
    sb.inject_fault("chat.postMessage", "timeout_after_store", delay=0.3)
    started = time.monotonic()
    posted = await bare(sb).chat_postMessage(channel="C0GENERAL", text="slow")
    assert posted["ok"] and time.monotonic() - started >= 0.3
    assert texts(sb) == ["slow"] and sb.faults.held == 0


async def test_reset_after_store_drops_the_connection(sb: SlackSandbox) -> None:
    sb.inject_fault("chat.postMessage", "reset_after_store")
    with pytest.raises(aiohttp.ClientConnectionError):
        await bare(sb).chat_postMessage(channel="C0GENERAL", text="stored anyway")
    assert texts(sb) == ["stored anyway"]
    (call,) = sb.calls("chat.postMessage")
    assert (call["fault"], call["status"], call["response"]["ok"]) == ("reset_after_store", None, True)


async def test_slack_sdk_default_retry_reposts_after_a_reset(sb: SlackSandbox) -> None:
    sb.inject_fault("chat.postMessage", "reset_after_store")
    retry = AsyncConnectionErrorRetryHandler(interval_calculator=FixedValueRetryIntervalCalculator(0.0))
    web = AsyncWebClient(token=TOKEN, base_url=sb.api_url, retry_handlers=[retry])
    assert (await web.chat_postMessage(channel="C0GENERAL", text="twice"))["ok"]
    assert texts(sb) == ["twice", "twice"]


async def test_times_count_down_and_faults_queue_per_method(sb: SlackSandbox) -> None:
    sb.inject_fault("chat.postMessage", "ratelimited", times=2, retry_after=0)
    sb.inject_fault("chat.postMessage", "server_error")
    web = bare(sb)
    with pytest.raises(SlackApiError, match="invalid_auth"):
        await AsyncWebClient(token="xoxb-wrong", base_url=sb.api_url).chat_postMessage(channel="C0GENERAL", text="x")
    assert (await web.conversations_info(channel="C0GENERAL"))["ok"]
    statuses = []
    for _ in range(4):
        try:
            statuses.append((await web.chat_postMessage(channel="C0GENERAL", text="t")).status_code)
        except SlackApiError as exc:
            statuses.append(exc.response.status_code)
    assert statuses == [429, 429, 500, 200] and texts(sb) == ["t"]
    assert [c["fault"] for c in sb.calls("chat.postMessage")] == [
        None,
        "ratelimited",
        "ratelimited",
        "server_error",
        None,
    ]


async def chaos_run(sb: SlackSandbox, session: aiohttp.ClientSession, calls: int) -> list[str | None]:
    web = bare(sb, session=session)
    for i in range(calls):
        try:
            await web.chat_postMessage(channel="C0GENERAL", text=str(i))
        except (SlackApiError, aiohttp.ClientError):
            pass
    return [c.fault for c in sb.call_log if c.method == "chat.postMessage"]


async def test_chaos_faults_a_seeded_fraction(sb: SlackSandbox, session: aiohttp.ClientSession) -> None:
    sb.chaos(0.25, seed=42, chaos_delay=0.0)
    faults = await chaos_run(sb, session, 200)
    hit = [f for f in faults if f is not None]
    assert 30 <= len(hit) <= 70
    assert set(hit) == {"ratelimited", "server_error", "html_error", "timeout_after_store", "reset_after_store"}
    processed = sum(1 for f in faults if f is None or f.endswith("_after_store"))
    assert len(sb.history("C0GENERAL")) == processed
    for _ in range(20):
        assert (await bare(sb).auth_test())["ok"]

    sb.reset()
    sb.chaos(0.25, seed=42, chaos_delay=0.0)
    assert await chaos_run(sb, session, 200) == faults

    sb.chaos(0)
    assert (await chaos_run(sb, session, 20))[200:] == [None] * 20


async def test_chaos_limited_to_methods_and_kinds(sb: SlackSandbox) -> None:
    sb.chaos(1.0, seed=1, methods=["conversations.info"], kinds=["error:channel_not_found"])
    web = bare(sb)
    with pytest.raises(SlackApiError, match="channel_not_found"):
        await web.conversations_info(channel="C0GENERAL")
    assert (await web.chat_postMessage(channel="C0GENERAL", text="fine"))["ok"]
    sb.inject_fault("conversations.info", "server_error")
    with pytest.raises(SlackApiError) as info:
        await web.conversations_info(channel="C0GENERAL")
    assert info.value.response.status_code == 500


async def test_clear_faults_and_reset(sb: SlackSandbox) -> None:
    web = bare(sb)
    sb.inject_fault("chat.postMessage", "server_error", times=5)
    sb.chaos(1.0, seed=3)
    sb.clear_faults()
    assert (await web.chat_postMessage(channel="C0GENERAL", text="a"))["ok"]
    sb.inject_fault("chat.postMessage", "server_error", times=5)
    sb.chaos(1.0, seed=3)
    sb.reset()
    assert (await web.chat_postMessage(channel="C0GENERAL", text="b"))["ok"]
    assert [c["fault"] for c in sb.calls()] == [None]


async def test_reset_drops_held_answers(sb: SlackSandbox) -> None:
    sb.inject_fault("chat.postMessage", "timeout_after_store", delay=30.0)
    call = asyncio.create_task(bare(sb, timeout=30.0).chat_postMessage(channel="C0GENERAL", text="held"))
    await until(lambda: sb.faults.held == 1)
    sb.reset()
    with pytest.raises(aiohttp.ClientConnectionError):
        await asyncio.wait_for(call, 5.0)


async def test_stop_does_not_wait_for_held_answers() -> None:
    sandbox = SlackSandbox(bot_token=TOKEN)
    await sandbox.start()
    sandbox.inject_fault("chat.postMessage", "timeout_after_store", delay=30.0)
    call = asyncio.create_task(bare(sandbox, timeout=30.0).chat_postMessage(channel="C0GENERAL", text="held"))
    await until(lambda: sandbox.faults.held == 1)
    started = time.monotonic()
    await sandbox.stop()
    assert time.monotonic() - started < 0.9  # the runner would wait its 1 s shutdown timeout for a live handler
    with pytest.raises(aiohttp.ClientConnectionError):
        await asyncio.wait_for(call, 5.0)


def test_invalid_faults_are_refused(sb: SlackSandbox) -> None:
    for bad in [
        lambda: sb.inject_fault("chat.postMessage", "meteor"),
        lambda: sb.inject_fault("chat.postMessage", "error:"),
        lambda: sb.inject_fault("chat.postMessage", "server_error", times=0),
        lambda: sb.chaos(1.5),
        lambda: sb.chaos(0.5, kinds=[]),
    ]:
        with pytest.raises(SlackError, match="invalid_arguments"):
            bad()
    assert sb.faults.pending == {} and sb.faults.chaos is None


async def test_faults_over_the_control_api(sb: SlackSandbox, people: SandboxClient) -> None:
    web = bare(sb)
    await people.fault("chat.postMessage", "error:is_archived", times=2)
    for _ in range(2):
        with pytest.raises(SlackApiError, match="is_archived"):
            await web.chat_postMessage(channel="C0GENERAL", text="x")
    await people.fault("chat.postMessage", "ratelimited", retry_after=9)
    await people.chaos(1.0, seed=5, methods=["conversations.info"], kinds=["server_error"])
    with pytest.raises(SlackApiError) as info:
        await web.chat_postMessage(channel="C0GENERAL", text="x")
    assert info.value.response.headers["Retry-After"] == "9"
    with pytest.raises(SlackApiError, match="internal_error"):
        await web.conversations_info(channel="C0GENERAL")
    await people.clear_faults()
    assert (await web.conversations_info(channel="C0GENERAL"))["ok"]
    await people.fault("chat.postMessage", "timeout_after_store", delay=0.0)
    assert (await web.chat_postMessage(channel="C0GENERAL", text="y"))["ok"]
    calls = await people.calls("chat.postMessage")
    assert [c["fault"] for c in calls] == [
        "error:is_archived",
        "error:is_archived",
        "ratelimited",
        "timeout_after_store",
    ]
    with pytest.raises(SandboxError, match="invalid_arguments"):
        await people.fault("chat.postMessage", "meteor")
    with pytest.raises(SandboxError, match="invalid_arguments"):
        await people.request("POST", "chaos", json={"rate": "lots"})
