"""Durable first, Slack as a projection: faults in Slack, lost jobs and racing answers lose nothing and repeat
nothing. (Process kills, outages and fuzzing are in tests/faults/.)"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from bot.dev.fake_openai import Reply
from tests.support.drain import wait_drained
from tests.support.harness import Harness
from tests.support.slack import (
    ANSWER_BUTTON,
    GENERAL,
    buttons,
    containing,
    from_bot,
    thread,
    typed_answer,
    visible_text,
    wait_for_message,
)

FEEDBACK = "graphs.feedback_workflow:graph"
FAST = {"BOT_STALLED_AFTER": "2", "BOT_RECONCILE_EVERY": "1", "SLACK_TIMEOUT": "1"}


async def sql(database_url: str, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        cur = await conn.execute(statement, params)  # type: ignore[arg-type]
        return await cur.fetchall() if cur.description else []


async def bot_texts(slack: Any, root: str) -> list[str]:
    return [visible_text(m) for m in await thread(slack, GENERAL, root) if from_bot(m)]


async def assert_no_duplicates(slack: Any, root: str) -> None:
    texts = await bot_texts(slack, root)
    assert len(texts) == len(set(texts)), texts


async def ask(harness: Harness, slack: Any, **env: str) -> tuple[str, dict[str, Any]]:
    await harness.start(FEEDBACK, environ=harness.environ(FEEDBACK, **FAST, **env))
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> foo")
    question = await wait_for_message(slack, GENERAL, root, containing("Please provide feedback: foo bar"))
    return root, question


async def test_a_reply_whose_post_was_reset_after_slack_stored_it_appears_once(harness: Harness, slack: Any) -> None:
    root, _ = await ask(harness, slack)
    await slack.fault("chat.postMessage", "reset_after_store")
    await slack.post("U0ALICE", GENERAL, "baz", thread_ts=root)
    await wait_for_message(slack, GENERAL, root, containing("foo bar baz qux"))
    await wait_drained(harness.database_url, slack)
    assert sum("foo bar baz qux" in text for text in await bot_texts(slack, root)) == 1
    assert [c["fault"] for c in await slack.calls("chat.postMessage")].count("reset_after_store") == 1


async def test_a_reply_whose_post_timed_out_after_slack_stored_it_appears_once(harness: Harness, slack: Any) -> None:
    root, _ = await ask(harness, slack)
    await slack.fault("chat.postMessage", "timeout_after_store", delay=3)
    await slack.post("U0ALICE", GENERAL, "baz", thread_ts=root)
    await wait_for_message(slack, GENERAL, root, containing("foo bar baz qux"))
    await wait_drained(harness.database_url, slack)
    assert sum("foo bar baz qux" in text for text in await bot_texts(slack, root)) == 1


async def test_slack_errors_delay_the_reply_but_never_lose_it(harness: Harness, slack: Any) -> None:
    root, _ = await ask(harness, slack)
    await slack.fault("chat.postMessage", "server_error")
    await slack.fault("chat.postMessage", "html_error")
    await slack.fault("reactions.add", "html_error")
    await slack.post("U0ALICE", GENERAL, "baz", thread_ts=root)
    await wait_for_message(slack, GENERAL, root, containing("foo bar baz qux"), timeout=30)
    await wait_drained(harness.database_url, slack)
    await assert_no_duplicates(slack, root)


async def test_a_deleted_question_still_resumes_the_graph(harness: Harness, slack: Any) -> None:
    root, question = await ask(harness, slack)
    await slack.fault("chat.update", "error:message_not_found", times=5)
    await slack.click("U0BOB", GENERAL, question["ts"], ANSWER_BUTTON)
    await slack.wait_for(lambda: slack.views("U0BOB"))
    answered = await slack.submit("U0BOB", typed_answer("baz"))
    assert not answered.get("errors")
    await wait_for_message(slack, GENERAL, root, containing("foo bar baz qux"))
    await wait_drained(harness.database_url, slack)
    rows = await sql(harness.database_url, "SELECT state, resumed_at IS NOT NULL FROM lgslack_interrupts")
    assert rows == [("decided", True)]


async def test_a_modal_is_answered_within_three_seconds_while_slack_hangs(harness: Harness, slack: Any) -> None:
    root, question = await ask(harness, slack)
    await slack.click("U0BOB", GENERAL, question["ts"], ANSWER_BUTTON)
    await slack.wait_for(lambda: slack.views("U0BOB"))
    await slack.fault("chat.update", "timeout_after_store", times=3, delay=10)
    # The sandbox answers the submitter with an error, as Slack does, when the app takes over 3 s to ack.
    answered = await slack.submit("U0BOB", typed_answer("baz"))
    assert answered.get("ok") and not answered.get("errors"), answered
    await wait_for_message(slack, GENERAL, root, containing("foo bar baz qux"), timeout=30)


async def test_a_reply_racing_a_modal_answer_is_told_and_not_fed_to_the_graph(harness: Harness, slack: Any) -> None:
    root, question = await ask(harness, slack)
    await harness.stop_all()
    await harness.start(FEEDBACK, workers=0, environ=harness.environ(FEEDBACK, **FAST, BOT_INTAKE_TURNS="0"))
    # Both arrive before any job runs: the reply's turn is queued first, the modal's decision second.
    await slack.click("U0BOB", GENERAL, question["ts"], ANSWER_BUTTON)
    await slack.wait_for(lambda: slack.views("U0BOB"))
    await slack.post("U0ALICE", GENERAL, "my reply", thread_ts=root)
    await slack.wait_for(lambda: sql(harness.database_url, "SELECT 1 FROM lgslack_inbound WHERE text = 'my reply'"))
    answered = await slack.submit("U0BOB", typed_answer("baz"))
    assert not answered.get("errors")
    await harness.start(FEEDBACK, environ=harness.environ(FEEDBACK, **FAST))
    await wait_for_message(slack, GENERAL, root, containing("foo bar baz qux"))
    await wait_for_message(slack, GENERAL, root, containing("That question was just answered by <@U0BOB>"))
    await wait_drained(harness.database_url, slack)
    texts = await bot_texts(slack, root)
    assert not any("my reply" in text for text in texts)
    assert sum("qux" in text for text in texts) == 1


async def test_a_lost_turn_job_is_queued_again_by_the_reconciler(harness: Harness, slack: Any) -> None:
    await harness.start(FEEDBACK, workers=0, environ=harness.environ(FEEDBACK, **FAST))
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> foo")
    await slack.wait_for(lambda: sql(harness.database_url, "SELECT 1 FROM lgslack_inbound"))
    await sql(harness.database_url, "DELETE FROM procrastinate_jobs WHERE task_name = 'lgslack.turn'")
    await harness.start(FEEDBACK, environ=harness.environ(FEEDBACK, **FAST))
    await wait_for_message(slack, GENERAL, root, containing("Please provide feedback: foo bar"), timeout=30)
    await wait_drained(harness.database_url, slack)
    await assert_no_duplicates(slack, root)


async def test_a_lost_resume_job_is_queued_again_by_the_reconciler(harness: Harness, slack: Any) -> None:
    root, question = await ask(harness, slack)
    await harness.stop_all()
    await harness.start(FEEDBACK, workers=0, environ=harness.environ(FEEDBACK, **FAST))
    await slack.click("U0BOB", GENERAL, question["ts"], ANSWER_BUTTON)
    await slack.wait_for(lambda: slack.views("U0BOB"))
    await slack.submit("U0BOB", typed_answer("baz"))
    await sql(harness.database_url, "DELETE FROM procrastinate_jobs WHERE task_name = 'lgslack.resume'")
    await harness.start(FEEDBACK, environ=harness.environ(FEEDBACK, **FAST))
    await wait_for_message(slack, GENERAL, root, containing("foo bar baz qux"), timeout=30)
    await wait_drained(harness.database_url, slack)
    await assert_no_duplicates(slack, root)


async def test_a_run_that_fails_offers_a_retry_that_works(
    harness: Harness, slack: Any, sandbox: Any, openai: Any
) -> None:
    graph = "graphs.assistant:graph"
    openai.reply(Reply(status=400, error="the model is confused", headers={"x-should-retry": "false"}))
    openai.reply(Reply(content="Second time lucky."))
    await harness.start(graph, environ=harness.environ(graph, **FAST))
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> hello")
    failure = await wait_for_message(slack, GENERAL, root, containing("The agent hit an error"))
    assert [b["text"]["text"] for b in buttons(failure)] == ["Retry"]
    await slack.click("U0ALICE", GENERAL, failure["ts"], "lgslack.retry")
    await wait_for_message(slack, GENERAL, root, containing("Second time lucky."))
    await wait_for_message(slack, GENERAL, root, containing("asked me to try again"))
    await wait_drained(harness.database_url, slack)
    assert [m["content"] for m in openai.requests[-1].messages if m["role"] == "user"] == ["hello"]
    assert not any("restarted" in text for text in await bot_texts(slack, root))
    # Bob's client still shows the Retry button; his click arrives after the run was retried.
    await sandbox.deliver_click("U0BOB", GENERAL, failure, buttons(failure)[0])
    notes = await slack.wait_for(lambda: slack.ephemerals(GENERAL, "U0BOB"))
    assert "already going again" in visible_text(notes[-1])


async def test_a_message_whose_job_could_not_be_queued_is_taken_from_slacks_retry(harness: Harness, slack: Any) -> None:
    # The first job insert fails (as if the database went away between the two writes): nothing of the message
    # may stay behind, or Slack's retry would be taken for a duplicate and dropped.
    await sql(
        harness.database_url,
        """
        CREATE SEQUENCE fail_once;
        CREATE FUNCTION fail_once() RETURNS trigger AS $$
        BEGIN
          IF nextval('fail_once') = 1 THEN  -- a sequence is not rolled back with the failed transaction
            RAISE EXCEPTION 'injected: the job could not be queued';
          END IF;
          RETURN NEW;
        END $$ LANGUAGE plpgsql;
        CREATE TRIGGER fail_once BEFORE INSERT ON procrastinate_jobs FOR EACH ROW
          WHEN (NEW.task_name = 'lgslack.turn') EXECUTE FUNCTION fail_once();
        """,
    )
    await harness.start(FEEDBACK, environ=harness.environ(FEEDBACK, **FAST))
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> foo")
    await wait_for_message(slack, GENERAL, root, containing("Please provide feedback: foo bar"))
    await wait_drained(harness.database_url, slack)
    deliveries = [d for d in await slack.deliveries() if d.get("kind") == "event"] or await slack.deliveries()
    assert any(d.get("status") == 500 for d in deliveries), deliveries
    assert await sql(harness.database_url, "SELECT count(*) FROM lgslack_inbound") == [(1,)]
    await assert_no_duplicates(slack, root)


async def test_a_click_arriving_from_another_message_is_refused(harness: Harness, slack: Any, sandbox: Any) -> None:
    root, question = await ask(harness, slack)
    button = buttons(question)[0]
    elsewhere = next(m for m in await thread(slack, GENERAL, root) if m["ts"] == root)
    # Until the bot has recorded where its question was posted (just after Slack answers the post), a click is
    # checked against the channel only; the forged click below is about the message, so it comes after.
    await slack.wait_for(
        lambda: sql(harness.database_url, "SELECT 1 FROM lgslack_interrupts WHERE message_ts = %s", question["ts"])
    )
    # The request's own button, but delivered as if it sat on another message (a forged or replayed click).
    await sandbox.deliver_click("U0BOB", GENERAL, {**elsewhere, "blocks": question["blocks"]}, button)
    notes = await slack.wait_for(lambda: slack.ephemerals(GENERAL, "U0BOB"))
    assert "doesn't belong to this request" in visible_text(notes[-1])
    assert await slack.views("U0BOB") == []
    assert await sql(harness.database_url, "SELECT state FROM lgslack_interrupts") == [("pending",)]


async def test_a_message_that_cant_be_handled_is_answered_with_the_error_once(harness: Harness, slack: Any) -> None:
    from bot.interrupts.questions import QuestionRenderer
    from bot.interrupts.registry import Registry
    from bot.types import Request

    class Broken(QuestionRenderer):  # a user's renderer with a bug in its reply parsing
        def reply(self, request: Request, text: str) -> Any:
            raise KeyError("the renderer's bug")

    registry = Registry()
    registry.register(Broken())
    await harness.start(FEEDBACK, environ=harness.environ(FEEDBACK, **FAST), registry=registry)
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> foo")
    await wait_for_message(slack, GENERAL, root, containing("Please provide feedback: foo bar"))
    await slack.post("U0ALICE", GENERAL, "baz", thread_ts=root)
    await wait_for_message(slack, GENERAL, root, containing("the renderer's bug"))
    await wait_drained(harness.database_url, slack)
    assert sum("the renderer's bug" in text for text in await bot_texts(slack, root)) == 1
    assert await sql(harness.database_url, "SELECT status FROM lgslack_inbound WHERE text = 'baz'") == [("done",)]


@pytest.mark.parametrize(("delay_ms", "takes"), [("60000", 0), ("0", 1)], ids=["quiet", "status-shown"])
async def test_a_quiet_runs_reply_is_leased_as_its_outcome_commits(
    harness: Harness, slack: Any, monkeypatch: Any, delay_ms: str, takes: int
) -> None:
    """A run that showed no sign of work has its reply leased in its outcome's transaction and sent next, with no
    statement of its own to take it. One that showed one (here a reaction: #general refuses a status) takes it
    after taking the sign off, as before, so a process killed in between holds nothing. Either way, once."""
    from bot.records.outbox import Outbox

    taken: list[str | None] = []
    take_due = Outbox.take_due

    async def counted(self: Outbox, seconds: float, **kwargs: Any) -> Any:
        taken.append(kwargs.get("conversation_id"))
        return await take_due(self, seconds, **kwargs)

    monkeypatch.setattr(Outbox, "take_due", counted)
    graph = "tests.support.traced:graph"
    await harness.start(graph, environ=harness.environ(graph, BOT_STATUS_DELAY_MS=delay_ms))
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> hi")
    await wait_for_message(slack, GENERAL, root, lambda m: m.get("text") == "echo: hi")
    await wait_drained(harness.database_url, slack)
    assert [m.get("text") for m in await thread(slack, GENERAL, root) if from_bot(m)] == ["echo: hi"]
    assert len([c for c in taken if c is not None]) == takes
    assert await sql(harness.database_url, "SELECT state, attempts FROM lgslack_outbox") == [("sent", 1)]


async def test_a_rewrite_queued_again_while_an_older_one_is_sent_stays_due(database_url: str, tmp_path: Any) -> None:
    """A request's message rewritten for a decision (an item of a batch) while the rewrite for the one before is
    on its way: the older one, sent, does not mark the newer one sent. It stays due, so the message ends showing
    the request's last state (a lost rewrite left a batch's message with its buttons after its last decision)."""
    from bot.db import open_database
    from bot.records.outbox import Outbox

    db = await open_database(database_url, tmp_path)
    try:
        outbox = Outbox(db.pool)
        async with db.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO lgslack_conversations (id, team_id, channel_id, thread_ts, thread_id, graph)"
                " VALUES ('T0:C0:1.1', 'T0', 'C0', '1.1', 't', 'g')"
            )
            await outbox.add(conn, "note:1", op="update", conversation_id="T0:C0:1.1", channel_id="C0", target_ts="2.2")
        (older,) = await outbox.take_due(30, keys=["note:1"])
        async with db.pool.connection() as conn:  # queued again, for a newer state, while the older one is sent
            await outbox.add(conn, "note:1", op="update", conversation_id="T0:C0:1.1", channel_id="C0", target_ts="2.2")
        await outbox.sent(older, ts="2.2")
        async with db.pool.connection() as conn:
            cur = await conn.execute("SELECT state, attempts FROM lgslack_outbox WHERE key = 'note:1'")
            assert await cur.fetchone() == {"state": "pending", "attempts": 0}
        (newer,) = await outbox.take_due(30, keys=["note:1"])
        await outbox.sent(newer, ts="2.2")
        async with db.pool.connection() as conn:
            cur = await conn.execute("SELECT state FROM lgslack_outbox WHERE key = 'note:1'")
            assert await cur.fetchone() == {"state": "sent"}
    finally:
        await db.close()
