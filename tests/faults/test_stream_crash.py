"""kill -9 while an answer is being streamed: the next process carries the run on, the cut message is removed, and
the thread ends with exactly one complete answer — never the partial one beside it."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest

from bot import text as t
from bot.dev.fake_openai import Reply, ToolCall
from tests.support.drain import wait_drained
from tests.support.harness import Harness
from tests.support.processes import Bots
from tests.support.slack import GENERAL, Message, from_bot, thread, visible_text, wait_for_message

pytestmark = pytest.mark.faults

ASSISTANT = "graphs.assistant:graph"
FAST = {"BOT_STALLED_AFTER": "2", "BOT_RECONCILE_EVERY": "1", "SLACK_TIMEOUT": "2"}
STUCK = {**FAST, "SLACK_TIMEOUT": "30"}
HELD = 60.0
RESTARTED = "I was restarted"
CUT = "The first try at this answer was cut short by a crash and must not stay in the thread at all."
ANSWER = "**Paris** is the capital of France; the second try is the one that stays, whole and formatted."


async def rows(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        cur = await conn.execute(sql)
        return list(await cur.fetchall())


def sections(message: Message) -> str:
    return "".join(b["text"]["text"] for b in message.get("blocks") or [] if b.get("type") == "section")


async def one_answer(harness: Harness, slack: Any, root: str) -> Message:
    """Drained, then: the restart note and the second answer, each once, formatted; nothing cut left over."""
    final = await wait_for_message(slack, GENERAL, root, lambda m: "the one that stays" in sections(m), timeout=60)
    await wait_drained(harness.database_url, slack, timeout=100)
    shown = [m for m in await thread(slack, GENERAL, root) if from_bot(m)]
    texts = [visible_text(m) for m in shown]
    assert [sum(RESTARTED in s for s in texts), sum("the one that stays" in s for s in texts)] == [1, 1]
    assert not [s for s in texts if "first try" in s]
    assert len(shown) == 2 and not [m for m in shown if m.get("is_streaming")]
    assert sections(final) == t.to_mrkdwn(ANSWER)
    assert await rows(harness.database_url, "SELECT key, state FROM lgslack_outbox WHERE state <> 'sent'") == []
    assert await rows(harness.database_url, "SELECT key FROM lgslack_runs WHERE state <> 'ran'") == []
    assert await rows(harness.database_url, "SELECT key FROM lgslack_streams WHERE settled_at IS NULL") == []
    return final


async def test_killed_while_a_stream_is_open_the_cut_message_is_replaced_by_one_answer(
    bots: Bots, harness: Harness, slack: Any, openai: Any
) -> None:
    openai.reply(Reply(content=CUT, chunk_delay=3.0))
    first = await bots.serve(ASSISTANT, **FAST)
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> tell me about Paris")
    cut = await wait_for_message(slack, GENERAL, root, lambda m: bool(m.get("is_streaming")), timeout=30)
    await asyncio.to_thread(first.kill)
    assert "must not stay" not in cut["text"]

    openai.clear()
    openai.reply(Reply(content=ANSWER, chunk_delay=1.5))
    await bots.serve(ASSISTANT, **FAST)
    final = await one_answer(harness, slack, root)

    assert final["ts"] != cut["ts"]
    assert [c["params"]["ts"] for c in await slack.calls("chat.delete")] == [cut["ts"]]
    stopped = [c["params"]["ts"] for c in await slack.calls("chat.stopStream")]
    assert stopped.count(cut["ts"]) == 1 and stopped.count(final["ts"]) == 1
    assert len(openai.requests) == 1  # the second try; the first was on the killed process's model call


async def test_killed_while_its_start_is_unanswered_the_message_is_found_and_removed(
    bots: Bots, harness: Harness, slack: Any, openai: Any
) -> None:
    """Slack stored the stream, but the process died before the ts came back: the row stays `starting`, and the
    message is found in the thread (ours, no outbox key, known to no record) and deleted."""
    await slack.fault("chat.startStream", "timeout_after_store", delay=HELD)
    openai.reply(Reply(content=CUT, chunk_delay=3.0))
    first = await bots.serve(ASSISTANT, **STUCK)
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> tell me about Paris")
    held = await slack.wait_for(lambda: _faulted(slack), timeout=30)
    await asyncio.to_thread(first.kill)
    assert await rows(harness.database_url, "SELECT state, ts FROM lgslack_streams") == [("starting", None)]
    cut = held["response"]["ts"]

    await slack.clear_faults()
    openai.clear()
    openai.reply(Reply(content=ANSWER, chunk_delay=1.5))
    await bots.serve(ASSISTANT, **FAST)
    final = await one_answer(harness, slack, root)

    assert final["ts"] != cut
    assert cut in [c["params"]["ts"] for c in await slack.calls("chat.delete")]


async def _faulted(slack: Any) -> dict[str, Any] | None:
    calls = [c for c in await slack.calls("chat.startStream") if c.get("fault") == "timeout_after_store"]
    return calls[0] if calls else None


async def test_killed_after_a_streamed_message_was_saved_it_is_finished_not_doubled(
    bots: Bots, harness: Harness, slack: Any, openai: Any
) -> None:
    """The model wrote its first message (streamed, saved in the checkpoint) and called a tool; the process dies in
    the next model call. The next process carries the run on: that message is finished in place, not posted again."""
    said = "Let me look up the weather in Paris first, this takes a moment."
    openai.reply(Reply(content=said, tool_calls=[ToolCall("get_weather", {"location": "Paris"})], chunk_delay=1.5))
    openai.reply(Reply(content="too slow", delay=HELD))
    first = await bots.serve(ASSISTANT, **FAST)
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> weather in Paris?")
    streamed = await wait_for_message(slack, GENERAL, root, lambda m: bool(m.get("is_streaming")), timeout=30)
    await slack.wait_for(lambda: len(openai.requests) == 2, timeout=30)
    await asyncio.to_thread(first.kill)

    openai.clear()
    openai.reply(Reply(content="It is mild in Paris today."))
    await bots.serve(ASSISTANT, **FAST)
    await wait_for_message(slack, GENERAL, root, lambda m: "mild in Paris" in visible_text(m), timeout=60)
    await wait_drained(harness.database_url, slack, timeout=100)

    shown = [m for m in await thread(slack, GENERAL, root) if from_bot(m)]
    texts = [visible_text(m) for m in shown]
    assert [sum(x in s for s in texts) for x in (RESTARTED, "weather in Paris first", "mild in Paris")] == [1, 1, 1]
    (kept,) = [m for m in shown if "weather in Paris first" in visible_text(m)]
    assert kept["ts"] == streamed["ts"] and sections(kept) == t.to_mrkdwn(said)
    assert not await slack.calls("chat.delete")
    assert not [m for m in shown if m.get("is_streaming")]
    assert await rows(harness.database_url, "SELECT key FROM lgslack_streams WHERE settled_at IS NULL") == []
