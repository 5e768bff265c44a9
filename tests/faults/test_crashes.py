"""kill -9 at the worst moments: a new process carries on from the records, and nothing is lost or done twice.

Each test runs the bot as a real process, holds it at a chosen point (a slow model, a Slack call that hangs),
kills it with SIGKILL, starts another against the same database and sandbox, and checks the thread once the bot
has nothing left to do: one reply per turn, one resume per decision, one copy of every message. The survivor
must then stop cleanly on SIGTERM.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable
from typing import Any

import psycopg
import pytest
from langchain_core.messages import ToolMessage
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

from bot.dev.fake_openai import Reply, ToolCall, echo_responder
from tests.support.drain import wait_drained
from tests.support.harness import Harness
from tests.support.processes import BotProcess, Bots
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

pytestmark = pytest.mark.faults

ASSISTANT = "graphs.assistant:graph"
FEEDBACK = "graphs.feedback_workflow:graph"
FAST = {"BOT_STALLED_AFTER": "2", "BOT_RECONCILE_EVERY": "1", "SLACK_TIMEOUT": "2", "BOT_STATUS_DELAY_MS": "0"}
"""Quick to notice a dead worker, quick to give up on Slack; the "working" reaction (or status) is shown as a run
starts and taken off once its outcome is recorded, before it is shown: holding those calls stops a process there."""
STUCK = {**FAST, "SLACK_TIMEOUT": "30"}
"""A process that waits on a held Slack call for longer than the test takes to kill it."""
HELD = 60.0
"""How long the sandbox holds a faulted call: longer than any test waits before its kill."""
LEASE_WAIT = 100.0
"""A message whose sender was killed mid-call is sent again only once its outbox lease (60 s) has run out."""
RESTARTED = "I was restarted"
EMAIL = {"to": "bob@example.com", "subject": "Lunch", "body": "Noon at the usual place?"}
UNSENT = "SELECT attempts FROM lgslack_outbox WHERE state = 'pending'"
DECISIONS = "SELECT user_id, decision FROM lgslack_decisions"
VIEW_SENT = "SELECT key FROM lgslack_outbox WHERE key LIKE 'view:%%' AND state = 'sent'"


# reading the records and the thread


async def rows(database_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        cur = await conn.execute(sql, params)
        return list(await cur.fetchall())


async def when(database_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]] | None:
    """The rows of `sql`, or None while there are none: a condition for `slack.wait_for`."""
    return await rows(database_url, sql, *params) or None


async def faulted(slack: Any, method: str, fault: str) -> list[dict[str, Any]] | None:
    """The calls of `method` that met `fault` so far, or None."""
    return [c for c in await slack.calls(method) if c.get("fault") == fault] or None


async def bot_messages(slack: Any, root: str) -> list[str]:
    return [visible_text(m) for m in await thread(slack, GENERAL, root) if from_bot(m)]


def count(texts: list[str], text: str) -> int:
    return sum(text in shown for shown in texts)


def user_texts(openai: Any) -> list[list[str]]:
    """What the person said, as each model request carried it."""
    return [[m["content"] for m in r.messages if m["role"] == "user"] for r in openai.requests]


async def assert_nothing_lost_nothing_twice(database_url: str, slack: Any, *roots: str) -> None:
    """Drained, then: every message's turn done, every run ran, every outbox row sent, every decision resumed,
    and no bot message shown twice in any thread."""
    await wait_drained(database_url, slack, timeout=LEASE_WAIT)
    assert await rows(database_url, "SELECT ts, status FROM lgslack_inbound WHERE status <> 'done'") == []
    assert await rows(database_url, "SELECT key, state, error FROM lgslack_runs WHERE state <> 'ran'") == []
    assert await rows(database_url, "SELECT key, state, error FROM lgslack_outbox WHERE state <> 'sent'") == []
    unresumed = "SELECT id FROM lgslack_interrupts WHERE state = 'decided' AND resumed_at IS NULL"
    assert await rows(database_url, unresumed) == []
    for root in roots:
        shown = Counter(await bot_messages(slack, root))
        assert [text for text, n in shown.items() if n > 1] == []


async def answer_the_question(slack: Any, root: str, answer: str) -> Message:
    """Bob answers the feedback question with its Answer button and modal."""
    question = await wait_for_message(slack, GENERAL, root, containing("Please provide feedback: foo bar"))
    await slack.click("U0BOB", GENERAL, question["ts"], ANSWER_BUTTON)
    await slack.wait_for(lambda: slack.views("U0BOB"))
    outcome = await slack.submit("U0BOB", typed_answer(answer))
    assert not outcome.get("errors"), outcome
    return question


async def current(slack: Any, root: str, ts: str) -> Message:
    return next(m for m in await thread(slack, GENERAL, root) if m["ts"] == ts)


# turns


async def follow_up_waits(harness: Harness, slack: Any, root: str) -> None:
    """A follow-up arrives while the model thinks: it waits behind the turn (same conversation lock)."""
    follow_up = await slack.post("U0ALICE", GENERAL, "are you there?", thread_ts=root)
    queued = "SELECT 1 FROM lgslack_inbound WHERE ts = %s AND status = 'queued'"
    await slack.wait_for(lambda: when(harness.database_url, queued, follow_up))


async def carried_on_with_the_follow_up(
    harness: Harness, slack: Any, openai: Any, root: str, starting: Awaitable[BotProcess]
) -> BotProcess:
    """The process `starting` carries on the cut turn once (saying it was restarted), then the follow-up."""
    openai.clear()
    openai.reply(Reply(content="Hello after the restart."), Reply(content="Still here."))
    started = await starting
    await wait_for_message(slack, GENERAL, root, containing("Still here."), timeout=30)
    await assert_nothing_lost_nothing_twice(harness.database_url, slack, root)
    shown = await bot_messages(slack, root)
    replies = [text for message in shown for text in ("Hello after the restart.", "Still here.") if text in message]
    assert replies == ["Hello after the restart.", "Still here."]
    assert count(shown, RESTARTED) == 1
    assert user_texts(openai) == [["hello"], ["hello", "are you there?"]]
    return started


async def test_killed_in_the_model_call_the_turn_is_carried_on_once_before_the_next(
    bots: Bots, harness: Harness, slack: Any, openai: Any
) -> None:
    openai.reply(Reply(content="too slow", delay=HELD))
    first = await bots.serve(ASSISTANT, **FAST)
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> hello")
    await slack.wait_for(lambda: len(openai.requests) == 1, timeout=20)
    await slack.wait_for(lambda: when(harness.database_url, "SELECT 1 FROM checkpoints"))
    await follow_up_waits(harness, slack, root)
    first.kill()

    second = await carried_on_with_the_follow_up(harness, slack, openai, root, bots.serve(ASSISTANT, **FAST))
    await bots.stop(second)


async def test_killed_after_the_outcome_was_recorded_before_it_was_shown_the_reply_comes_once(
    bots: Bots, harness: Harness, slack: Any, openai: Any
) -> None:
    openai.reply(Reply(content="Done thinking."))
    # After recording the outcome and before sending it, the turn takes its "working" reaction off: hold that.
    await slack.fault("assistant.threads.setStatus", "error:not_allowed")  # a reaction, not a status, in #general
    await slack.fault("reactions.remove", "timeout_after_store", delay=HELD)
    first = await bots.serve(ASSISTANT, **STUCK)
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> think about it")
    await slack.wait_for(lambda: faulted(slack, "reactions.remove", "timeout_after_store"), timeout=20)
    assert await rows(harness.database_url, UNSENT) == [(0,)]
    first.kill()

    second = await bots.serve(ASSISTANT, **FAST)
    await wait_for_message(slack, GENERAL, root, containing("Done thinking."), timeout=30)
    await assert_nothing_lost_nothing_twice(harness.database_url, slack, root)

    shown = await bot_messages(slack, root)
    assert [count(shown, text) for text in ("Done thinking.", RESTARTED)] == [1, 0]
    assert len(openai.requests) == 1
    await bots.stop(second)


async def test_killed_with_two_replies_in_flight_each_is_posted_once(
    bots: Bots, harness: Harness, slack: Any, openai: Any
) -> None:
    """One reply rate-limited (Slack did nothing; slack_sdk sleeps its Retry-After), one stored by Slack whose
    answer never came back: after the restart the first is posted, the second found by its key, not re-posted."""
    openai.responder = echo_responder
    await slack.fault("chat.postMessage", "ratelimited", retry_after=30)
    await slack.fault("chat.postMessage", "timeout_after_store", delay=HELD)
    first = await bots.serve(ASSISTANT, **STUCK)
    roots = [await slack.post("U0ALICE", GENERAL, f"<@U0BOT> {word}") for word in ("one", "two")]
    await slack.wait_for(lambda: faulted(slack, "chat.postMessage", "ratelimited"), timeout=20)
    await slack.wait_for(lambda: faulted(slack, "chat.postMessage", "timeout_after_store"), timeout=20)
    first.kill()
    await slack.clear_faults()
    (limited,) = [c["params"]["thread_ts"] for c in await slack.calls("chat.postMessage") if c["status"] == 429]

    second = await bots.serve(ASSISTANT, **FAST)
    for root, word in zip(roots, ("one", "two"), strict=True):
        await wait_for_message(slack, GENERAL, root, containing(f"echo: {word}"), timeout=LEASE_WAIT)
    await assert_nothing_lost_nothing_twice(harness.database_url, slack, *roots)

    for root, word in zip(roots, ("one", "two"), strict=True):
        shown = await bot_messages(slack, root)
        assert [count(shown, f"echo: {word}"), count(shown, RESTARTED)] == [1, 0]
    posts = Counter(c["params"]["thread_ts"] for c in await slack.calls("chat.postMessage"))
    stored = next(root for root in roots if root != limited)
    assert posts == {limited: 2, stored: 1}
    assert len(openai.requests) == 2
    await bots.stop(second)


# decisions


@pytest.mark.parametrize("by", ["modal", "reply"])
@pytest.mark.parametrize(
    ("held", "run_state"),
    [
        pytest.param("reactions.add", "running", id="claimed-not-resumed"),
        pytest.param("reactions.remove", "ran", id="resumed-not-shown"),
    ],
)
async def test_killed_around_the_resume_the_graph_resumes_once(
    bots: Bots, harness: Harness, slack: Any, held: str, run_state: str, by: str
) -> None:
    """The resume puts a "working" reaction on the request before it resumes the graph, and takes it off after
    recording the outcome, before showing it: holding either call stops the process just there. Answered in the
    modal, the resume is its own job; by a reply in the thread, the reply's job runs it on (its own job waits)."""
    await slack.fault("assistant.threads.setStatus", "error:not_allowed")  # a reaction, not a status, in #general
    first = await bots.serve(FEEDBACK, **STUCK)
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> foo")
    asked = await wait_for_message(slack, GENERAL, root, containing("Please provide feedback: foo bar"), timeout=20)
    await slack.fault(held, "timeout_after_store", delay=HELD)
    if by == "modal":
        question = await answer_the_question(slack, root, "baz")
    else:
        question = asked
        await slack.post("U0BOB", GENERAL, "baz", thread_ts=root)
    await slack.wait_for(lambda: faulted(slack, held, "timeout_after_store"), timeout=20)
    await slack.wait_for(lambda: when(harness.database_url, VIEW_SENT), timeout=20)
    assert await rows(harness.database_url, "SELECT state FROM lgslack_runs WHERE kind = 'resume'") == [(run_state,)]
    first.kill()

    second = await bots.serve(FEEDBACK, **FAST)
    await wait_for_message(slack, GENERAL, root, containing("foo bar baz qux"), timeout=30)
    await assert_nothing_lost_nothing_twice(harness.database_url, slack, root)

    shown = await bot_messages(slack, root)
    assert [count(shown, text) for text in ("foo bar baz qux", RESTARTED)] == [1, 0]
    records = "SELECT state, decided_by, resumed_at IS NOT NULL FROM lgslack_interrupts"
    assert await rows(harness.database_url, records) == [("decided", "U0BOB", True)]
    assert await rows(harness.database_url, DECISIONS) == [("U0BOB", "answer")]
    assert not buttons(await current(slack, root, question["ts"]))
    await bots.stop(second)


async def test_killed_after_slack_stored_the_question_the_answer_still_shows_on_it(
    bots: Bots, harness: Harness, slack: Any
) -> None:
    await slack.fault("chat.postMessage", "timeout_after_store", delay=HELD)
    first = await bots.serve(FEEDBACK, **STUCK)
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> foo")
    await slack.wait_for(lambda: faulted(slack, "chat.postMessage", "timeout_after_store"), timeout=20)
    first.kill()

    second = await bots.serve(FEEDBACK, **FAST)
    # Bob answers the question he sees before the new process has found out where it was posted.
    question = await answer_the_question(slack, root, "baz")
    await wait_for_message(slack, GENERAL, root, containing("foo bar baz qux"), timeout=30)
    await assert_nothing_lost_nothing_twice(harness.database_url, slack, root)

    shown = await bot_messages(slack, root)
    assert [count(shown, text) for text in ("Please provide feedback: foo bar", "foo bar baz qux")] == [1, 1]
    assert await rows(harness.database_url, DECISIONS) == [("U0BOB", "answer")]
    decided = await current(slack, root, question["ts"])
    assert not buttons(decided), "the answered question still shows its Answer button"
    assert "<@U0BOB>" in visible_text(decided)
    await bots.stop(second)


async def tool_results(database_url: str, thread_id: str, call_id: str) -> int:
    """How many results of one tool call the thread's checkpoint holds."""
    from graphs.assistant import graph

    async with AsyncPostgresSaver.from_conn_string(database_url) as saver:
        state = await graph.copy(update={"checkpointer": saver}).aget_state({"configurable": {"thread_id": thread_id}})
    return sum(isinstance(m, ToolMessage) and m.tool_call_id == call_id for m in state.values["messages"])


async def test_killed_mid_resume_after_an_approved_tool_ran_the_tool_ran_once(
    bots: Bots, harness: Harness, slack: Any, openai: Any
) -> None:
    openai.reply(Reply(tool_calls=[ToolCall("send_email", EMAIL, id="call_email")]))
    openai.reply(Reply(content="too slow", delay=HELD))
    first = await bots.serve(ASSISTANT, **FAST)
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> email bob about lunch")
    request = await wait_for_message(slack, GENERAL, root, containing("The agent asks for approval"), timeout=20)
    await slack.click("U0BOB", GENERAL, request["ts"], "lgslack.act:approve:0")
    await slack.wait_for(lambda: len(openai.requests) == 2, timeout=20)
    await slack.wait_for(lambda: when(harness.database_url, VIEW_SENT), timeout=20)
    first.kill()

    openai.clear()
    openai.reply(Reply(content="Sent it."))
    second = await bots.serve(ASSISTANT, **FAST)
    await wait_for_message(slack, GENERAL, root, containing("Sent it."), timeout=30)
    await assert_nothing_lost_nothing_twice(harness.database_url, slack, root)

    shown = await bot_messages(slack, root)
    assert [count(shown, text) for text in ("Sent it.", RESTARTED)] == [1, 1]
    (after,) = openai.requests
    assert [m["content"] for m in after.tool_messages] == ["Email sent to bob@example.com with subject 'Lunch'."]
    decisions = await rows(harness.database_url, "SELECT user_id, decision, action FROM lgslack_decisions")
    assert decisions == [("U0BOB", "approve", "send_email")]
    records = "SELECT state, resumed_at IS NOT NULL FROM lgslack_interrupts"
    assert await rows(harness.database_url, records) == [("decided", True)]
    ((thread_id,),) = await rows(harness.database_url, "SELECT thread_id FROM lgslack_conversations")
    assert await tool_results(harness.database_url, thread_id, "call_email") == 1
    assert "Approved" in visible_text(await current(slack, root, request["ts"]))
    await bots.stop(second)


# processes


async def test_a_killed_worker_loses_nothing_while_the_front_door_keeps_recording(
    bots: Bots, harness: Harness, slack: Any, openai: Any
) -> None:
    openai.reply(Reply(content="too slow", delay=HELD))
    # An intake that runs no turn itself: every turn is the workers'.
    front = await bots.serve(ASSISTANT, **{**FAST, "BOT_WORKERS": "0", "BOT_INTAKE_TURNS": "0"})
    worker = await bots.worker(ASSISTANT, **FAST)
    first = await slack.post("U0ALICE", GENERAL, "<@U0BOT> hello")
    await slack.wait_for(lambda: len(openai.requests) == 1, timeout=30)
    worker.kill()

    second = await slack.post("U0CAROL", GENERAL, "<@U0BOT> anyone there?")
    queued = "SELECT 1 FROM lgslack_inbound WHERE ts = %s AND status = 'queued'"
    await slack.wait_for(lambda: when(harness.database_url, queued, second))

    openai.clear()
    openai.responder = echo_responder
    replacement = await bots.worker(ASSISTANT, **FAST)
    await wait_for_message(slack, GENERAL, first, containing("echo: hello"), timeout=30)
    await wait_for_message(slack, GENERAL, second, containing("echo: anyone there?"), timeout=30)
    await assert_nothing_lost_nothing_twice(harness.database_url, slack, first, second)

    assert count(await bot_messages(slack, first), "echo: hello") == 1
    assert count(await bot_messages(slack, second), "echo: anyone there?") == 1
    assert sorted(user_texts(openai)) == [["anyone there?"], ["hello"]]
    await bots.stop(replacement)
    await bots.stop(front)


async def test_an_intake_with_no_worker_runs_a_question_and_its_resume_itself(
    bots: Bots, harness: Harness, slack: Any
) -> None:
    """No worker process runs: the intake runs the turn that asks and the resume its answer queued (each claimed
    for it as it was recorded, BOT_INTAKE_TURNS), and leaves no job behind."""
    front = await bots.serve(FEEDBACK, **{**FAST, "BOT_WORKERS": "0"})
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> foo")
    await wait_for_message(slack, GENERAL, root, containing("Please provide feedback: foo bar"), timeout=20)
    await answer_the_question(slack, root, "baz")
    await wait_for_message(slack, GENERAL, root, containing("foo bar baz qux"), timeout=20)
    await assert_nothing_lost_nothing_twice(harness.database_url, slack, root)
    assert await rows(harness.database_url, "SELECT id, status FROM procrastinate_jobs WHERE lock IS NOT NULL") == []
    await bots.stop(front)


async def test_an_intake_killed_in_a_turn_it_ran_itself_loses_nothing_and_a_worker_carries_it_on_once(
    bots: Bots, harness: Harness, slack: Any, openai: Any
) -> None:
    """The intake runs a turn itself when it has nothing else to take in (BOT_INTAKE_TURNS): here no worker runs,
    so the model call is the intake's. Killed there, its job is a stalled worker's: a worker started later carries
    it on, once, and the follow-up queued behind it after."""
    openai.reply(Reply(content="too slow", delay=HELD))
    front = await bots.serve(ASSISTANT, **{**FAST, "BOT_WORKERS": "0"})
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> hello")
    await slack.wait_for(lambda: len(openai.requests) == 1, timeout=30)
    await follow_up_waits(harness, slack, root)
    running = "SELECT worker_id FROM procrastinate_jobs WHERE status = 'doing'"
    assert len(await rows(harness.database_url, running)) == 1
    front.kill()

    worker = await carried_on_with_the_follow_up(harness, slack, openai, root, bots.worker(ASSISTANT, **FAST))
    await bots.stop(worker)


# the outbox lease


async def test_a_rate_limit_that_outlasts_the_outbox_lease_does_not_post_the_reply_twice(
    bots: Bots, harness: Harness, slack: Any, openai: Any
) -> None:
    """No kill: the sender is alive, asleep in slack_sdk's Retry-After wait (62 s) inside its leased post, while
    the lease (60 s) runs out and the reconciler sends the row again."""
    openai.reply(Reply(content="Patience pays."))
    await slack.fault("chat.postMessage", "ratelimited", retry_after=62)
    bot = await bots.serve(ASSISTANT, **FAST)
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> take your time")
    await wait_for_message(slack, GENERAL, root, containing("Patience pays."), timeout=LEASE_WAIT)
    # Drained also means the turn's job, asleep in the rate-limited post, has ended.
    await assert_nothing_lost_nothing_twice(harness.database_url, slack, root)

    assert count(await bot_messages(slack, root), "Patience pays.") == 1
    await bots.stop(bot)


async def test_sigterm_mid_run_stops_within_the_grace_period_and_the_next_process_carries_on(
    bots: Bots, harness: Harness, slack: Any, openai: Any
) -> None:
    openai.reply(Reply(content="too slow", delay=HELD))
    first = await bots.serve(ASSISTANT, **FAST, BOT_SHUTDOWN_GRACE="2")
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> hello")
    await slack.wait_for(lambda: len(openai.requests) == 1, timeout=20)
    await slack.wait_for(lambda: when(harness.database_url, "SELECT 1 FROM checkpoints"))
    # A platform sends SIGTERM and SIGKILLs 30 s later: the bot must be gone well before, its job left for the next.
    assert await asyncio.to_thread(first.terminate, 15.0) == 0

    openai.clear()
    openai.reply(Reply(content="Hello after the restart."))
    second = await bots.serve(ASSISTANT, **FAST)
    await wait_for_message(slack, GENERAL, root, containing("Hello after the restart."), timeout=60)
    await assert_nothing_lost_nothing_twice(harness.database_url, slack, root)
    assert user_texts(openai) == [["hello"]]
    await bots.stop(second)
