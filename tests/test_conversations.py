"""Conversations: mentions, DMs, engaged threads, the bot's own messages, replies, failures."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.dev.fake_openai import Reply
from tests.support.harness import Harness
from tests.support.slack import containing, from_bot, thread, visible_text, wait_for_message

GENERAL = "C0GENERAL"


async def settled(slack: Any, harness: Harness) -> None:
    """Wait until the bot has no queued or running job and every delivery was answered."""

    async def idle() -> bool:
        deliveries = await slack.deliveries()
        if any(d.get("status") is None for d in deliveries):
            return False
        async with harness.running[-1].bot.db.pool.connection() as conn:
            cur = await conn.execute("SELECT count(*) AS n FROM procrastinate_jobs WHERE status IN ('todo', 'doing')")
            row = await cur.fetchone()
        return row is not None and row["n"] == 0

    await slack.wait_for(idle, timeout=20)


async def test_a_mention_starts_a_thread_and_replies_continue_it(harness: Harness, slack: Any, openai: Any) -> None:
    openai.reply(Reply(content="Hello Alice!"))
    openai.reply(Reply(content="You said your name is Alice."))
    await harness.start("graphs.assistant:graph")

    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> hi, I'm Alice")
    await wait_for_message(slack, GENERAL, root, containing("Hello Alice!"))
    await slack.post("U0ALICE", GENERAL, "what is my name?", thread_ts=root)
    await wait_for_message(slack, GENERAL, root, containing("You said your name is Alice."))

    history = [m["content"] for m in openai.requests[1].messages if m["role"] == "user"]
    assert history == ["hi, I'm Alice", "what is my name?"]


async def test_a_direct_message_starts_its_own_thread(harness: Harness, slack: Any, openai: Any) -> None:
    openai.reply(Reply(content="First DM answer."))
    openai.reply(Reply(content="Second, separate conversation."))
    await harness.start("graphs.assistant:graph")

    first = await slack.post("U0ALICE", "D0ALICE", "hello")
    await wait_for_message(slack, "D0ALICE", first, containing("First DM answer."))
    second = await slack.post("U0ALICE", "D0ALICE", "a new topic")
    await wait_for_message(slack, "D0ALICE", second, containing("Second, separate conversation."))
    assert [m["content"] for m in openai.requests[1].messages if m["role"] == "user"] == ["a new topic"]


async def test_unaddressed_channel_messages_and_its_own_messages_are_ignored(
    harness: Harness, slack: Any, openai: Any
) -> None:
    openai.reply(Reply(content="Only once."))
    await harness.start("graphs.assistant:graph")
    await slack.post("U0ALICE", GENERAL, "just chatting, no mention")
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> ping")
    await wait_for_message(slack, GENERAL, root, containing("Only once."))
    await settled(slack, harness)
    # The bot's own reply was delivered back to it as a message event and caused nothing.
    assert len(openai.requests) == 1
    assert [from_bot(m) for m in await thread(slack, GENERAL, root)] == [False, True]


async def test_a_redelivered_and_double_delivered_mention_gives_one_turn(
    harness: Harness, slack: Any, sandbox: Any, openai: Any
) -> None:
    openai.reply(Reply(content="One turn."))
    await harness.start("graphs.assistant:graph")
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> hello")
    await wait_for_message(slack, GENERAL, root, containing("One turn."))
    await settled(slack, harness)

    delivered = [d for d in await slack.deliveries() if d.get("ts") == root or root in str(d)]
    kinds = sorted({d["type"] for d in delivered})
    assert kinds == ["app_mention", "message"]
    for delivery in delivered:
        await sandbox.redeliver(delivery["event_id"], reason="http_timeout")
    await settled(slack, harness)

    assert len(openai.requests) == 1
    assert sum("One turn." in visible_text(m) for m in await thread(slack, GENERAL, root)) == 1


async def test_model_text_cannot_ping_the_channel(harness: Harness, slack: Any, openai: Any) -> None:
    openai.reply(Reply(content="Hey <!channel> and <@U0BOB>, look at [this](https://example.com)"))
    await harness.start("graphs.assistant:graph")
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> say something")
    reply = await wait_for_message(slack, GENERAL, root, containing("look at"))
    text = visible_text(reply)
    assert "<!channel>" not in text and "<@U0BOB>" not in text
    assert "&lt;!channel&gt;" in text and "<https://example.com|this>" in text


async def test_a_long_reply_is_posted_in_full(harness: Harness, slack: Any, openai: Any) -> None:
    long_text = "\n\n".join(f"Section {i}. " + "words " * 300 for i in range(30))
    openai.reply(Reply(content=long_text))
    await harness.start("graphs.assistant:graph")
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> write a lot")
    await wait_for_message(slack, GENERAL, root, containing("Section 29."))
    posted = [m for m in await thread(slack, GENERAL, root) if from_bot(m)]
    sections = [b["text"]["text"] for m in posted for b in m["blocks"]]
    assert "".join(sections) == long_text.strip()
    assert len(posted) > 1


async def test_a_model_failure_is_reported_and_the_thread_recovers(harness: Harness, slack: Any, openai: Any) -> None:
    openai.reply(Reply(status=400, error="model overloaded"))
    openai.reply(Reply(content="Back on track."))
    await harness.start("graphs.assistant:graph")
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> hello")
    failure = await wait_for_message(slack, GENERAL, root, containing("The agent hit an error"))
    assert "model overloaded" in visible_text(failure)
    await slack.post("U0ALICE", GENERAL, "try again", thread_ts=root)
    await wait_for_message(slack, GENERAL, root, containing("Back on track."))


async def test_healthz_follows_the_database(harness: Harness) -> None:
    import aiohttp

    process = await harness.start("graphs.feedback_workflow:graph")
    async with aiohttp.ClientSession() as session:
        async with session.get(process.url + "/healthz") as response:
            assert response.status == 200
        await process.bot.db.pool.close()
        async with session.get(process.url + "/healthz") as response:
            assert response.status == 503
    await asyncio.sleep(0)


async def test_a_channel_can_use_another_graph_and_threads_keep_theirs(harness: Harness, slack: Any) -> None:
    feedback, revise = "graphs.feedback_workflow:graph", "graphs.revise_text:graph"
    process = await harness.start(feedback, environ=harness.environ(feedback, BOT_GRAPHS=revise))
    store = process.bot.store
    first = await slack.post("U0ALICE", GENERAL, "<@U0BOT> foo")
    await wait_for_message(slack, GENERAL, first, containing("Please provide feedback: foo bar"))

    await store.set_channel_graph(team_id="T0SANDBOX", channel_id=GENERAL, graph="graphs.revise_text:graph")
    second = await slack.post("U0ALICE", GENERAL, "<@U0BOT> a draft")
    await wait_for_message(slack, GENERAL, second, containing("Please revise this text"))

    await slack.post("U0ALICE", GENERAL, "baz", thread_ts=first)
    await wait_for_message(slack, GENERAL, first, containing("foo bar baz qux"))
