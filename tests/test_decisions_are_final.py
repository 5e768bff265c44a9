"""An answer decides once: concurrent submissions, stale clicks, and a bot restarted in between."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg

from bot.dev.fake_openai import Reply
from bot.interrupts.base import ANSWER_BLOCK
from tests.support.drain import wait_drained
from tests.support.harness import Harness
from tests.support.processes import start_bot
from tests.support.slack import (
    ANSWER_BUTTON,
    GENERAL,
    buttons,
    containing,
    thread,
    typed_answer,
    visible_text,
    wait_for_message,
)


async def test_concurrent_submissions_decide_once(harness: Harness, slack: Any) -> None:
    await harness.start("graphs.feedback_workflow:graph")
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> foo")
    question = await wait_for_message(slack, GENERAL, root, containing("Please provide feedback"))

    people = ["U0ALICE", "U0BOB", "U0CAROL"]
    for person in people:
        await slack.click(person, GENERAL, question["ts"], ANSWER_BUTTON)
        await slack.wait_for(lambda person=person: slack.views(person))
    outcomes = await asyncio.gather(*(slack.submit(p, typed_answer(f"from-{p}")) for p in people))

    accepted = [p for p, o in zip(people, outcomes, strict=True) if not o.get("errors")]
    assert len(accepted) == 1, outcomes
    refused = [o for o in outcomes if o.get("errors")]
    assert all("answered this first" in o["errors"][ANSWER_BLOCK] for o in refused)

    await wait_for_message(slack, GENERAL, root, containing("qux"))
    await wait_drained(harness.database_url, slack)
    results = [m for m in await thread(slack, GENERAL, root) if "qux" in visible_text(m)]
    assert len(results) == 1
    assert results[0]["text"] == f"foo bar from-{accepted[0]} qux"


async def test_a_stale_click_gets_an_ephemeral_note_and_resumes_nothing(
    harness: Harness, slack: Any, sandbox: Any
) -> None:
    await harness.start("graphs.feedback_workflow:graph")
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> foo")
    question = await wait_for_message(slack, GENERAL, root, containing("Please provide feedback"))
    stale_button = buttons(question)[0]

    await slack.post("U0ALICE", GENERAL, "baz", thread_ts=root)
    await wait_for_message(slack, GENERAL, root, containing("foo bar baz qux"))

    # Bob's client still shows the old message with its button; his click arrives as Slack would send it.
    await sandbox.deliver_click("U0BOB", GENERAL, question, stale_button)
    notes = await slack.wait_for(lambda: slack.ephemerals(GENERAL, "U0BOB"))
    assert "Already answered by <@U0ALICE>" in visible_text(notes[-1])
    assert await slack.views("U0BOB") == []
    assert sum("qux" in visible_text(m) for m in await thread(slack, GENERAL, root)) == 1


async def checkpoints(database_url: str) -> int:
    """How many checkpoints the graph has written (the run's input is saved before its first node)."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute("SELECT count(*) FROM checkpoints")
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def test_a_bot_killed_between_question_and_answer_resumes_in_a_new_process(
    harness: Harness, slack: Any, sandbox: Any
) -> None:
    first = await start_bot(harness, BOT_STALLED_AFTER="2")
    try:
        sandbox.request_url = first.events_url
        root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> foo")
        await wait_for_message(slack, GENERAL, root, containing("Please provide feedback: foo bar"))
    finally:
        first.kill()

    second = await start_bot(harness, BOT_STALLED_AFTER="2")
    try:
        sandbox.request_url = second.events_url
        await slack.post("U0BOB", GENERAL, "baz", thread_ts=root)
        await wait_for_message(slack, GENERAL, root, containing("foo bar baz qux"), timeout=30)
    finally:
        code = second.terminate(timeout=25)
    assert code == 0


async def test_a_turn_cut_short_by_a_killed_worker_is_carried_on_by_another(
    harness: Harness, slack: Any, sandbox: Any, openai: Any
) -> None:
    model = {"OPENAI_BASE_URL": openai.base_url, "OPENAI_API_KEY": "sk-test", "BOT_STALLED_AFTER": "2"}
    openai.reply(Reply(content="too slow", delay=60))
    first = await start_bot(harness, "graphs.assistant:graph", **model)
    try:
        sandbox.request_url = first.events_url
        root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> hello")
        await slack.wait_for(lambda: len(openai.requests) == 1)
        await slack.wait_for(lambda: checkpoints(harness.database_url))
    finally:
        first.kill()

    openai.clear()
    openai.reply(Reply(content="Hello after the restart."))
    second = await start_bot(harness, "graphs.assistant:graph", **model)
    try:
        sandbox.request_url = second.events_url
        await wait_for_message(slack, GENERAL, root, containing("Hello after the restart."), timeout=30)
        assert [m["content"] for m in openai.requests[0].messages if m["role"] == "user"] == ["hello"]
        await wait_drained(harness.database_url, slack)
        replies = [m for m in await thread(slack, GENERAL, root) if "Hello after the restart." in visible_text(m)]
        assert len(replies) == 1
    finally:
        assert second.terminate(timeout=25) == 0


async def test_a_separate_worker_process_runs_the_turns(harness: Harness, slack: Any) -> None:
    # The intake runs no job itself (BOT_INTAKE_TURNS=0): the worker runs both turns and the resume.
    graph = "graphs.feedback_workflow:graph"
    await harness.start(graph, workers=0, environ={**harness.environ(graph), "BOT_INTAKE_TURNS": "0"})
    worker = await start_bot(harness, command="worker")
    try:
        root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> foo")
        await wait_for_message(slack, GENERAL, root, containing("Please provide feedback: foo bar"), timeout=30)
        await slack.post("U0ALICE", GENERAL, "baz", thread_ts=root)
        await wait_for_message(slack, GENERAL, root, containing("foo bar baz qux"))
    finally:
        code = worker.terminate(timeout=25)
    assert code == 0
