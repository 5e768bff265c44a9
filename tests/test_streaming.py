"""Streamed answers: the model's words reach the thread while it writes, at most about once a second, and the
answer ends as one complete, formatted message — through the sandbox, with the scripted model streaming slowly."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bot import text as t
from bot.db import open_database
from bot.dev.fake_openai import FakeOpenAI, Reply, ToolCall
from bot.dev.sandbox.workspace import TEAM_ID
from bot.flow.streams import Streamer
from bot.records.streams import Streams
from bot.runner import Delta
from bot.slack.gateway import Gateway
from bot.slack.web import build_client
from bot.store import Store
from tests.support.drain import wait_drained
from tests.support.harness import BOT_TOKEN, Harness
from tests.support.langgraph_server import REPO, langgraph_dev, scripted_model
from tests.support.slack import (
    ANSWER_BUTTON,
    GENERAL,
    Message,
    buttons,
    containing,
    from_bot,
    thread,
    typed_answer,
    visible_text,
    wait_for_message,
)

ASSISTANT = "graphs.assistant:graph"
ANSWER = "**Paris** is the capital of France. It is lovely in spring, <!channel> — ask me about the museums next."
FAST = {"BOT_STALLED_AFTER": "2", "BOT_RECONCILE_EVERY": "1"}


async def bot_messages(slack: Any, root: str) -> list[Message]:
    return [m for m in await thread(slack, GENERAL, root) if from_bot(m)]


async def rows(database_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        cur = await conn.execute(sql, params)
        return list(await cur.fetchall())


def spaced(times: list[float]) -> bool:
    """Each call at least about a second after the one before (Slack's rate limits)."""
    return all(later - earlier >= 0.95 for earlier, later in itertools.pairwise(times))


def sections(message: Message) -> str:
    return "".join(b["text"]["text"] for b in message.get("blocks") or [] if b.get("type") == "section")


def streaming(*words: str) -> Any:
    """A bot message still being streamed that shows `words`."""
    return lambda m: bool(m.get("is_streaming")) and all(w in m.get("text", "") for w in words)


def finished(text: str) -> Any:
    """The answer as the outcome leaves it: no longer streaming, formatted in sections."""
    return lambda m: not m.get("is_streaming") and text in sections(m)


async def test_the_answer_is_written_in_the_thread_and_ends_as_one_formatted_message(
    harness: Harness, slack: Any, openai: Any
) -> None:
    # Three pieces 1.5 s apart: the first words are shown about a second after they come, long before the last.
    openai.reply(Reply(content=ANSWER, chunk_delay=1.5))
    await harness.start(ASSISTANT)
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> tell me about Paris")

    partial = await wait_for_message(slack, GENERAL, root, streaming("**Paris**"), timeout=20)
    assert "museums" not in partial["text"]  # the model is still writing
    assert "&lt;!channel&gt;" in partial["text"] or "channel" not in partial["text"]

    final = await wait_for_message(slack, GENERAL, root, finished("museums next."), timeout=20)
    assert final["ts"] == partial["ts"]
    assert sections(final) == t.to_mrkdwn(ANSWER)
    assert "<!channel>" not in visible_text(final)
    await wait_drained(harness.database_url, slack)
    assert [m["ts"] for m in await bot_messages(slack, root)] == [final["ts"]]

    (start,) = await slack.calls("chat.startStream")
    assert start["params"]["thread_ts"] == root
    assert (start["params"]["recipient_team_id"], start["params"]["recipient_user_id"]) == (TEAM_ID, "U0ALICE")
    assert start["params"]["markdown_text"].startswith("**Paris**")
    appends = await slack.calls("chat.appendStream")
    (stop,) = await slack.calls("chat.stopStream")
    assert stop["params"]["ts"] == final["ts"] and stop["response"]["ok"] is True
    streamed = start["params"]["markdown_text"] + "".join(a["params"]["markdown_text"] for a in appends)
    assert streamed + stop["params"].get("markdown_text", "") == t.escape(ANSWER)
    times = [start["at"], *(a["at"] for a in appends)]
    assert spaced(times)
    assert [c["params"]["ts"] for c in await slack.calls("chat.update")] == [final["ts"]]
    assert not [c for c in await slack.calls("chat.postMessage") if c["params"].get("thread_ts") == root]
    settled = "SELECT state, ts, settled_at IS NOT NULL FROM lgslack_streams"
    assert await rows(harness.database_url, settled) == [("stopped", final["ts"], True)]


async def test_appends_come_at_most_once_a_second_and_carry_every_word(
    harness: Harness, slack: Any, sandbox: Any
) -> None:
    """The streamer itself against the sandbox: forty pieces over about four seconds."""
    db = await open_database(harness.database_url, Path(".data"))
    try:
        root = await slack.post("U0ALICE", GENERAL, "a thread to stream into")
        conversation = await Store(db.pool).save_conversation(
            team_id=TEAM_ID, channel_id=GENERAL, thread_ts=root, graph=ASSISTANT, started_by="U0ALICE"
        )
        gateway = Gateway(build_client(BOT_TOKEN, sandbox.api_url, timeout=5))
        streamer = Streamer(
            gateway=gateway, streams=Streams(db.pool), conversation=conversation, run_key="turn:x", recipient="U0ALICE"
        )
        pieces = [f"word{i} " for i in range(40)]
        began = time.monotonic()
        for piece in pieces:
            await streamer.sink(Delta("m1", piece, "model"))
            await asyncio.sleep(0.1)  # the model writing
        elapsed = time.monotonic() - began
        await streamer.sink(Delta("m1", "", "model", last=True))
        await streamer.close()
    finally:
        await db.close()

    (start,) = await slack.calls("chat.startStream")
    appends = await slack.calls("chat.appendStream")
    (stop,) = await slack.calls("chat.stopStream")
    times = [start["at"], *(a["at"] for a in appends)]
    assert spaced(times)
    assert 2 <= len(appends) <= elapsed
    text = start["params"]["markdown_text"] + "".join(a["params"]["markdown_text"] for a in appends)
    assert text + stop["params"].get("markdown_text", "") == "".join(pieces)
    (message,) = [m for m in await thread(slack, GENERAL, root) if from_bot(m)]
    assert message["text"] == "".join(pieces) and not message.get("is_streaming")
    assert message["metadata"]["event_payload"]["key"] == "stream:turn:x:m1"


async def test_where_slack_refuses_to_stream_one_message_is_posted_and_updated(
    harness: Harness, slack: Any, openai: Any
) -> None:
    await slack.fault("chat.startStream", "error:not_allowed")
    openai.reply(Reply(content=ANSWER, chunk_delay=1.5))
    await harness.start(ASSISTANT)
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> tell me about Paris")

    partial = await wait_for_message(slack, GENERAL, root, containing("*Paris*"), timeout=20)
    assert "museums" not in visible_text(partial)
    final = await wait_for_message(slack, GENERAL, root, finished("museums next."), timeout=20)
    assert final["ts"] == partial["ts"]
    assert sections(final) == t.to_mrkdwn(ANSWER)
    await wait_drained(harness.database_url, slack)
    assert [m["ts"] for m in await bot_messages(slack, root)] == [final["ts"]]

    assert [c["response"].get("error") for c in await slack.calls("chat.startStream")] == ["not_allowed"]
    (post,) = [c for c in await slack.calls("chat.postMessage") if c["params"].get("thread_ts") == root]
    assert post["params"]["metadata"]["event_payload"]["key"].startswith("stream:turn:")
    updates = [c["at"] for c in await slack.calls("chat.update") if c["params"]["ts"] == final["ts"]]
    times = [post["at"], *updates[:-1]]  # the last update is the final answer, from the outbox
    assert spaced(times)
    assert not await slack.calls("chat.appendStream")
    assert await rows(harness.database_url, "SELECT mode, ts FROM lgslack_streams") == [("post", final["ts"])]


async def test_an_interrupt_raised_after_streamed_text_still_posts_its_request(
    harness: Harness, slack: Any, openai: Any
) -> None:
    text = "Let me ask a colleague about the office, this takes a moment."
    ask = ToolCall("human_assistance", {"query": "Which office does Alice work from?"})
    openai.reply(Reply(content=text, tool_calls=[ask], chunk_delay=1.2))
    openai.reply(Reply(content="Alice works from Lyon."))
    await harness.start(ASSISTANT)
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> where does Alice work?")

    partial = await wait_for_message(slack, GENERAL, root, streaming("Let me ask"), timeout=20)
    request = await wait_for_message(slack, GENERAL, root, containing("Which office does Alice work from?"))
    assert buttons(request)
    said = await wait_for_message(slack, GENERAL, root, finished("this takes a moment."))
    assert said["ts"] == partial["ts"]
    assert [m["ts"] for m in await bot_messages(slack, root)] == [said["ts"], request["ts"]]
    assert len(await slack.calls("chat.stopStream")) == 1

    await slack.click("U0BOB", GENERAL, request["ts"], ANSWER_BUTTON)
    await slack.wait_for(lambda: slack.views("U0BOB"))
    await slack.submit("U0BOB", typed_answer("Lyon"))
    await wait_for_message(slack, GENERAL, root, containing("Alice works from Lyon."), timeout=20)
    await wait_drained(harness.database_url, slack)
    shown = [visible_text(m) for m in await bot_messages(slack, root)]
    assert sum("this takes a moment." in s for s in shown) == 1
    assert sum("Alice works from Lyon." in s for s in shown) == 1


async def test_a_run_that_fails_after_streaming_shows_only_its_failure_and_its_retry_shows_the_text_once(
    harness: Harness, slack: Any, openai: Any
) -> None:
    text = "Let me look up the weather in Paris for you, this takes a moment."
    openai.reply(Reply(content=text, tool_calls=[ToolCall("get_weather", {"location": "Paris"})], chunk_delay=1.2))
    openai.reply(Reply(status=400, error="model overloaded"))
    openai.reply(Reply(content="It is mild in Paris today."))
    await harness.start(ASSISTANT)
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> weather in Paris?")

    partial = await wait_for_message(slack, GENERAL, root, streaming("Let me look up"), timeout=20)
    failure = await wait_for_message(slack, GENERAL, root, containing("The agent hit an error"), timeout=20)
    await wait_drained(harness.database_url, slack)
    assert [m["ts"] for m in await bot_messages(slack, root)] == [failure["ts"]]
    assert [c["params"]["ts"] for c in await slack.calls("chat.delete")] == [partial["ts"]]

    await slack.click("U0ALICE", GENERAL, failure["ts"], "lgslack.retry")
    await wait_for_message(slack, GENERAL, root, containing("It is mild in Paris today."), timeout=20)
    await wait_drained(harness.database_url, slack)
    shown = [visible_text(m) for m in await bot_messages(slack, root)]
    assert [sum("this takes a moment." in s for s in shown), sum("mild in Paris" in s for s in shown)] == [1, 1]


async def test_a_start_whose_answer_was_lost_is_removed_and_the_answer_posted_once(
    harness: Harness, slack: Any, openai: Any
) -> None:
    """Slack stored the stream but its answer never came back: the row stays `starting`; the answer is posted, and
    the message the lost start made is found in the thread and deleted once no start call can still be going."""
    await slack.fault("chat.startStream", "timeout_after_store", delay=30)
    openai.reply(Reply(content=ANSWER, chunk_delay=1.5))
    await harness.start(ASSISTANT, environ=harness.environ(ASSISTANT, SLACK_TIMEOUT="1", **FAST))
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> tell me about Paris")

    final = await wait_for_message(slack, GENERAL, root, finished("museums next."), timeout=30)
    await wait_drained(harness.database_url, slack, timeout=60)
    assert [m["ts"] for m in await bot_messages(slack, root)] == [final["ts"]]
    (start,) = await slack.calls("chat.startStream")
    (deleted,) = await slack.calls("chat.delete")
    assert deleted["params"]["ts"] == start["response"]["ts"] != final["ts"]
    assert sections(final) == t.to_mrkdwn(ANSWER)
    assert await rows(harness.database_url, "SELECT state, ts FROM lgslack_streams") == [("starting", None)]


# the same on a LangGraph Server (`runs.stream` with `messages-tuple`)


@pytest.fixture(scope="module")
def model() -> Iterator[FakeOpenAI]:
    yield from scripted_model()


@pytest.fixture(scope="module")
def langgraph_server(model: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from langgraph_dev(REPO / "langgraph.json", model, tmp_path_factory.mktemp("langgraph"))


async def test_on_a_langgraph_server_the_answer_is_streamed_and_ends_as_one_message(
    harness: Harness, slack: Any, langgraph_server: str, model: FakeOpenAI
) -> None:
    model.clear()
    model.reply(Reply(content=ANSWER, chunk_delay=1.5))
    environ = harness.environ(ASSISTANT, LANGGRAPH_URL=langgraph_server, LANGGRAPH_ASSISTANT_ID="assistant")
    await harness.start(ASSISTANT, environ=environ)
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> tell me about Paris")

    partial = await wait_for_message(slack, GENERAL, root, streaming("**Paris**"), timeout=30)
    assert "museums" not in partial["text"]
    final = await wait_for_message(slack, GENERAL, root, finished("museums next."), timeout=30)
    assert final["ts"] == partial["ts"]
    assert sections(final) == t.to_mrkdwn(ANSWER)
    await wait_drained(harness.database_url, slack)
    assert [m["ts"] for m in await bot_messages(slack, root)] == [final["ts"]]
    (start,) = await slack.calls("chat.startStream")
    assert (start["params"]["recipient_team_id"], start["params"]["recipient_user_id"]) == (TEAM_ID, "U0ALICE")
    assert [c["params"]["ts"] for c in await slack.calls("chat.stopStream")] == [final["ts"]]
    assert await rows(harness.database_url, "SELECT state, ts FROM lgslack_streams") == [("stopped", final["ts"])]


async def test_on_a_langgraph_server_the_status_names_the_tool_the_model_calls(
    harness: Harness, slack: Any, langgraph_server: str, model: FakeOpenAI
) -> None:
    model.clear()
    model.reply(Reply(tool_calls=[ToolCall("get_weather", {"location": "Boston"})], delay=1.0))
    model.reply(Reply(content="It's rainy in Boston.", delay=1.5))
    environ = harness.environ(ASSISTANT, LANGGRAPH_URL=langgraph_server, LANGGRAPH_ASSISTANT_ID="assistant")
    await harness.start(ASSISTANT, environ=environ)
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> how is the weather in Boston?")

    await wait_for_message(slack, GENERAL, root, finished("It's rainy in Boston."), timeout=30)
    # The server's tool callbacks are out of reach: the tool is read from the run's stream of updates.
    statuses = [s["status"] for s in await slack.status_history(GENERAL, root)]
    assert statuses[:2] == ["is thinking…", "is using get_weather…"], statuses
