"""A mention's two events (`app_mention` and `message`) arriving at the same moment, as Slack may send them, make
one conversation and one turn, and both get a 200."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, cast

import aiohttp
import psycopg
import pytest
from procrastinate import jobs as procrastinate_jobs
from psycopg.types.json import Jsonb
from slack_sdk.signature import SignatureVerifier

from bench.wire import CountingProxy
from bot import runtime
from bot.db import open_database
from bot.dev.sandbox.events import envelope
from bot.jobs import DEFER_SQL, RESUME, Claims, Flows, Jobs, claiming, open_jobs, worker_options
from bot.records.base import pipelined_transaction
from bot.records.claims import Claimed
from bot.records.conversations import Conversation
from bot.records.wake import wake
from bot.slack import listeners
from bot.store import Store
from tests.support.harness import SIGNING_SECRET, Harness
from tests.support.slack import GENERAL, wait_for_message

MENTIONS = 10
NOTIFY_TRIGGER = "lgslack_notify_job_inserted"


async def _warm_and_hold(
    harness: Harness, sandbox: Any, slack: Any, monkeypatch: Any, texts: list[str], **env: str
) -> tuple[Any, list[str], list[dict[str, Any]], list[str]]:
    """A bot past its first dispatch (Bolt has told it the bot user), and mentions whose events are held back for
    the test to deliver: (the bot, their ts, their events, the ts each `take_in` statement was made for)."""
    graph = "tests.support.traced:graph"
    bot = await harness.start(graph, environ=harness.environ(graph, **env))
    warm = await slack.post("U0ALICE", GENERAL, "<@U0BOT> warm")
    await wait_for_message(slack, GENERAL, warm, lambda m: m.get("text") == "echo: warm")
    held: list[dict[str, Any]] = []
    monkeypatch.setattr(sandbox, "emit", lambda event: held.append(event) or "EvHELD")
    roots = [await slack.post("U0ALICE", GENERAL, f"<@U0BOT> {text}") for text in texts]
    monkeypatch.undo()
    assert sorted(event["type"] for event in held) == sorted(["app_mention", "message"] * len(texts))
    statements: list[str] = []
    take_in = bot.bot.door.store.take_in

    async def counted(conn: Any, **kwargs: Any) -> Any:
        statements.append(kwargs["ts"])
        return await take_in(conn, **kwargs)

    monkeypatch.setattr(bot.bot.door.store, "take_in", counted)
    return bot, roots, held, statements


async def _deliver(
    http: aiohttp.ClientSession, url: str, event: dict[str, Any], event_id: str, retry: int | None = None
) -> int:
    """POST one event to the bot as Slack does (signed; with `retry`, as its retry)."""
    body = json.dumps(envelope(event, event_id, int(time.time())))
    stamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=stamp, body=body),
    }
    if retry is not None:
        headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
    async with http.post(url + "/slack/events", data=body, headers=headers) as response:
        return response.status


async def test_a_mentions_two_events_at_once_make_one_turn(
    harness: Harness, sandbox: Any, slack: Any, database_url: str, monkeypatch: Any
) -> None:
    texts = [f"hi {n}" for n in range(MENTIONS)]
    bot, roots, held, statements = await _warm_and_hold(harness, sandbox, slack, monkeypatch, texts)
    async with aiohttp.ClientSession() as http:
        statuses = await asyncio.gather(*(_deliver(http, bot.url, e, f"EvRACE{i}") for i, e in enumerate(held)))
    assert statuses == [200] * len(held)
    for text, root in zip(texts, roots, strict=True):
        await wait_for_message(slack, GENERAL, root, lambda m, text=text: m.get("text") == f"echo: {text}")
    with psycopg.connect(database_url) as conn:
        conversations = conn.execute("SELECT count(*) FROM lgslack_conversations").fetchone()
        inbound = conn.execute("SELECT count(*) FROM lgslack_inbound").fetchone()
    assert conversations == (MENTIONS + 1,) and inbound == (MENTIONS + 1,)
    # One statement a mention: its other event, arriving meanwhile, waited for that one's instead of its own.
    assert sorted(statements) == sorted(roots)


async def test_a_mentions_second_event_and_retries_make_no_statement_in_the_process_that_recorded_it(
    harness: Harness, sandbox: Any, slack: Any, database_url: str, monkeypatch: Any
) -> None:
    """The process that recorded a message acks its other event (a mention comes as two) and Slack's retries
    without a statement: the statement would find it recorded and do nothing. One turn, one reply."""
    bot, [root], held, statements = await _warm_and_hold(harness, sandbox, slack, monkeypatch, ["once"])
    async with aiohttp.ClientSession() as http:
        statuses = [await _deliver(http, bot.url, event, f"EvONCE{event['type']}") for event in held]
        statuses += [await _deliver(http, bot.url, event, f"EvONCE{event['type']}", retry=1) for event in held]
    assert statuses == [200] * 4
    assert statements == [root]  # the first event's statement only
    await wait_for_message(slack, GENERAL, root, lambda m: m.get("text") == "echo: once")
    with psycopg.connect(database_url) as conn:
        inbound = conn.execute("SELECT count(*) FROM lgslack_inbound WHERE ts = %s", (root,)).fetchone()
        runs = conn.execute("SELECT count(*) FROM lgslack_runs WHERE key LIKE %s", (f"%{root}",)).fetchone()
    assert inbound == (1,) and runs == (1,)
    replies = [m for m in sandbox.replies(GENERAL, root) if m.get("text") == "echo: once"]
    assert len(replies) == 1


async def test_intake_queues_the_turn_job_as_procrastinate_defers_it(database_url: str, tmp_path: Any) -> None:
    """Intake queues a message's turn with procrastinate's SQL function inside the statement that records the
    message (one round trip before the ack). The job it makes is the one `defer` makes: same queue, task, lock,
    priority, arguments and state; and a delivery seen before queues nothing."""
    db = await open_database(database_url, tmp_path)
    app = await open_jobs(db.pool)
    try:
        jobs, store = Jobs(app), Store(db.pool)
        where = {"team_id": "T0TEAM", "channel_id": "C0CHAN", "user_id": "U0ALICE", "text": "hi", "files": None}
        async with db.pool.connection() as conn:
            by_sql = await store.take_in(
                conn, **where, thread_ts="1.1", ts="1.1", start=True, default_graph="g", turn_job=jobs.turn_job()
            )
            again = await store.take_in(
                conn, **where, thread_ts="1.1", ts="1.1", start=True, default_graph="g", turn_job=jobs.turn_job()
            )
        async with store.transaction() as conn:
            by_defer = await store.take_in(conn, **where, thread_ts="2.2", ts="2.2", start=True, default_graph="g")
            assert by_defer[0] is not None
            await jobs.defer_turn(conn, by_defer[0].id, team_id="T0TEAM", channel_id="C0CHAN", ts="2.2")
        assert by_sql[0] is not None and by_sql[1] and again[1] is False and by_defer[1]
        async with db.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT queue_name, task_name, priority, lock, queueing_lock, args, scheduled_at, status, attempts"
                " FROM procrastinate_jobs ORDER BY id"
            )
            made = await cur.fetchall()
        assert len(made) == 2
        sql_job, defer_job = made
        assert sql_job["lock"] == by_sql[0].id and defer_job["lock"] == by_defer[0].id
        assert sql_job["args"] == {"team_id": "T0TEAM", "channel_id": "C0CHAN", "ts": "1.1"}
        assert {**sql_job, "lock": None, "args": None} == {**defer_job, "lock": None, "args": None}
        assert {**defer_job["args"], "ts": "1.1"} == sql_job["args"]
    finally:
        await app.close_async()
        await db.close()


async def test_channel_messages_skip_bolts_dispatch_once_it_has_told_the_bot_user(
    harness: Harness, slack: Any, monkeypatch: Any
) -> None:
    """The intake's fast path: once Bolt has dispatched one message (and so told the bot user), a person's messages
    in channels are taken in without it, with the same outcome; DMs (assistant threads) and everything else
    still go through Bolt."""
    bot = await harness.start("tests.support.traced:graph")
    dispatched: list[str] = []
    dispatch = bot.bot.app.async_dispatch

    async def counted(request: Any) -> Any:
        event = request.body.get("event") if isinstance(request.body, dict) else None
        dispatched.append(event.get("type") if isinstance(event, dict) else str(request.body.get("type")))
        return await dispatch(request)

    monkeypatch.setattr(bot.bot.app, "async_dispatch", counted)
    first = await slack.post("U0ALICE", GENERAL, "<@U0BOT> one")
    await wait_for_message(slack, GENERAL, first, lambda m: m.get("text") == "echo: one")
    # The mention's first event went through Bolt (its other may already have taken the fast path).
    assert dispatched and set(dispatched) <= {"app_mention", "message"} and bot.bot.door.bot_user_id == "U0BOT"
    dispatched.clear()

    second = await slack.post("U0ALICE", GENERAL, "<@U0BOT> two")
    await wait_for_message(slack, GENERAL, second, lambda m: m.get("text") == "echo: two")
    await slack.post("U0ALICE", GENERAL, "three", thread_ts=second)
    await wait_for_message(slack, GENERAL, second, lambda m: m.get("text") == "echo: three")
    assert dispatched == []

    direct = await slack.post("U0ALICE", "D0ALICE", "four")
    await wait_for_message(slack, "D0ALICE", direct, lambda m: m.get("text") == "echo: four")
    assert set(dispatched) == {"message"}  # the person's (and perhaps already the event of the bot's reply)


async def _notified_until_marker(listen: psycopg.AsyncConnection[Any], database_url: str) -> list[dict[str, Any]]:
    """The job notifications committed so far, in commit order: read up to a marker notified after them."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as other:
        await other.execute("SELECT pg_notify('procrastinate_any_queue_v1', 'marker')")
    seen: list[dict[str, Any]] = []
    async for note in listen.notifies(timeout=10):
        if note.payload == "marker":
            return seen
        seen.append(json.loads(note.payload))
    raise AssertionError("the marker never came")


async def test_the_intakes_job_wakes_the_workers_after_its_commit_not_inside_it(
    database_url: str, tmp_path: Any
) -> None:
    """PostgreSQL commits notifying transactions one at a time: the intake's statement queues its turn without a
    notification and the workers are woken once it has committed (`wake`), with procrastinate's own payload on its
    channels. Every other insert still notifies, once, as procrastinate's trigger did."""
    db = await open_database(database_url, tmp_path)
    app = await open_jobs(db.pool)
    try:
        jobs, store = Jobs(app), Store(db.pool)
        where = {"team_id": "T0", "channel_id": "C0", "user_id": "U0ALICE", "text": "hi", "files": None}
        quietly = {**where, "start": True, "default_graph": "g", "turn_job": jobs.turn_job(), "wake_after": True}
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as listen:
            queue = jobs.turn_job()[0]
            await listen.execute(f'LISTEN procrastinate_any_queue_v1; LISTEN "procrastinate_queue_v1#{queue}"')
            async with db.pool.connection() as conn:
                quiet = await store.take_in(conn, **quietly, thread_ts="1.1", ts="1.1")
            assert quiet.recorded and len(quiet.jobs) == 1
            assert await _notified_until_marker(listen, database_url) == []

            await wake(db.pool, queue, quiet.jobs)
            woken = await _notified_until_marker(listen, database_url)
            assert woken == [{"type": "job_inserted", "job_id": quiet.jobs[0]}] * 2  # its queue's channel and any

            # Inside a caller's transaction the statement can't know when it commits: it notifies as before.
            async with db.pool.connection() as conn, conn.transaction():
                inside = await store.take_in(conn, **quietly, thread_ts="2.2", ts="2.2")
            # procrastinate's own defer: one notification per channel, from our trigger (its own is off).
            async with db.pool.connection() as conn, conn.transaction():
                await app.configure_task(RESUME, lock="T0:C0:3.3", connection=conn).defer_async(record_id="r3")
            others = await _notified_until_marker(listen, database_url)
            ids = [note["job_id"] for note in others]
            assert inside.jobs[0] in ids and len(ids) == 4 and len(set(ids)) == 2
    finally:
        await app.close_async()
        await db.close()


async def test_a_serve_process_starts_the_turn_it_took_in_without_waiting_for_a_notification(
    harness: Harness, slack: Any, monkeypatch: Any
) -> None:
    """`serve` with its workers in process wakes them itself for the job it has just committed: with no notification
    at all (none after the commit, none from the job's insert) and the workers' poll a minute apart, the turn still
    runs at once."""
    woken: list[tuple[int, ...]] = []

    async def no_notification(pool: Any, queue: str, job_ids: Any) -> None:
        woken.append(tuple(job_ids))

    def slow_poll(*args: Any, **kwargs: Any) -> dict[str, Any]:
        return {**worker_options(*args, **kwargs), "fetch_job_polling_interval": 60.0}

    monkeypatch.setattr(listeners, "wake", no_notification)
    monkeypatch.setattr(runtime, "worker_options", slow_poll)
    # The periodic reconciler's job, queued twice a minute, would wake the workers too: a turn that waited for it
    # (or the poll) takes seconds; one woken at once takes milliseconds. Three seconds tell them apart.
    # The turns go to the workers (the intake runs none itself): how they are woken is the point here.
    graph = "tests.support.traced:graph"
    bot = await harness.start(graph, environ=harness.environ(graph, BOT_RECONCILE_EVERY="59", BOT_INTAKE_TURNS="0"))
    async with bot.bot.door.store.pool.connection() as conn:
        await conn.execute(f"ALTER TABLE procrastinate_jobs DISABLE TRIGGER {NOTIFY_TRIGGER}")
    first = await slack.post("U0ALICE", GENERAL, "<@U0BOT> one")  # through Bolt: it tells the bot user
    await wait_for_message(slack, GENERAL, first, lambda m: m.get("text") == "echo: one", timeout=3)
    second = await slack.post("U0ALICE", GENERAL, "<@U0BOT> two")  # the fast path
    await wait_for_message(slack, GENERAL, second, lambda m: m.get("text") == "echo: two", timeout=3)
    assert woken == []  # one at a time: each was to be woken by its own commit, which sent nothing here


async def test_a_message_taken_in_alone_is_woken_by_its_own_commit(
    harness: Harness, sandbox: Any, slack: Any, monkeypatch: Any
) -> None:
    """A message taken in while nothing else is (one at a time, as most are) needs no statement after its commit:
    its job's insert notifies the workers as procrastinate's does, and the commit delivers it."""
    # The turns go to the workers (the intake runs none itself): how they are woken is the point here.
    bot, roots, held, _ = await _warm_and_hold(harness, sandbox, slack, monkeypatch, ["alone"], BOT_INTAKE_TURNS="0")
    calls: list[list[int]] = []

    async def counted_wake(pool: Any, queue: str, job_ids: Any) -> None:
        calls.append(list(job_ids))
        await wake(pool, queue, job_ids)

    monkeypatch.setattr(listeners, "wake", counted_wake)
    async with bot.bot.door.store.pool.connection() as conn:
        await conn.execute("LISTEN procrastinate_any_queue_v1")
        async with aiohttp.ClientSession() as http:
            assert await _deliver(http, bot.url, held[0], "EvALONE") == 200
        await wait_for_message(slack, GENERAL, roots[0], lambda m: m.get("text") == "echo: alone")
        notes = [n async for n in conn.notifies(timeout=0.5)]
        await conn.execute("UNLISTEN *")
    assert calls == []
    assert [json.loads(n.payload)["type"] for n in notes][:1] == ["job_inserted"]


async def test_messages_taken_in_while_a_wake_up_is_on_its_way_share_one_more(
    harness: Harness, sandbox: Any, slack: Any, monkeypatch: Any
) -> None:
    """Under load the intake wakes the workers once for many jobs, not once each: a message taken in while another
    is being taken in leaves the wake-up to one statement after its commit (its insert notifies nobody, so that the
    commits do not wait for each other), and while that wake-up is on its way, the jobs committed meanwhile are
    woken by one more, sent after it, for the newest of them (a notification only tells each worker to fetch until
    nothing is left). Every turn runs."""
    texts = [f"burst {n}" for n in range(MENTIONS)]
    bot, roots, held, _ = await _warm_and_hold(harness, sandbox, slack, monkeypatch, texts, BOT_INTAKE_TURNS="0")
    calls: list[list[int]] = []
    gate, again, entered, first_gate = asyncio.Event(), asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def held_wake(pool: Any, queue: str, job_ids: Any) -> None:
        calls.append(list(job_ids))
        if len(calls) == 2:
            again.set()
        if len(calls) == 1:
            await gate.wait()  # the first wake-up is still on its way while the others are taken in
        await wake(pool, queue, job_ids)

    quiet: list[int] = []
    loud: list[int] = []
    take_in = bot.bot.door.store.take_in

    async def queuing(conn: Any, **kwargs: Any) -> Any:
        if not entered.is_set():
            entered.set()
            await first_gate.wait()  # the first message is still being taken in while the others come
        taken = await take_in(conn, **kwargs)
        (quiet if kwargs["wake_after"] else loud).extend(taken.jobs)
        return taken

    monkeypatch.setattr(listeners, "wake", held_wake)
    monkeypatch.setattr(bot.bot.door.store, "take_in", queuing)
    first = next(i for i, event in enumerate(held) if event["type"] == "app_mention")
    async with aiohttp.ClientSession() as http:
        alone = asyncio.create_task(_deliver(http, bot.url, held[first], "EvBURSTFIRST"))
        await asyncio.wait_for(entered.wait(), 10)
        # (The first mention's other event would wait for its statement: it comes after.)
        for i, event in enumerate(held):
            if event["ts"] != held[first]["ts"]:
                assert await _deliver(http, bot.url, event, f"EvBURST{i}") == 200
        first_gate.set()
        assert await alone == 200
        for i, event in enumerate(held):
            if event["ts"] == held[first]["ts"] and i != first:
                assert await _deliver(http, bot.url, event, f"EvBURST{i}") == 200
    # The first came alone: its commit woke the workers. The others came while it was being taken in.
    assert len(loud) == 1 and len(quiet) == MENTIONS - 1 and calls == [quiet[:1]]
    gate.set()
    for text, root in zip(texts, roots, strict=True):
        await wait_for_message(slack, GENERAL, root, lambda m, text=text: m.get("text") == f"echo: {text}")
    await asyncio.wait_for(again.wait(), 10)
    assert calls == [quiet[:1], quiet[-1:]]


async def test_a_resume_job_is_queued_as_procrastinate_defers_it(database_url: str, tmp_path: Any) -> None:
    """A decision's resume job is queued with procrastinate's SQL function in the decision's (pipelined)
    transaction: the same job as procrastinate's own `defer` of that task."""
    db = await open_database(database_url, tmp_path)
    app = await open_jobs(db.pool)
    try:
        jobs = Jobs(app)
        async with db.pool.connection() as conn, conn.pipeline(), conn.transaction():
            await jobs.defer_resume(conn, "T0TEAM:C0CHAN:1.1", record_id="r1")
        async with db.pool.connection() as conn, conn.transaction():
            await app.configure_task(RESUME, lock="T0TEAM:C0CHAN:2.2", connection=conn).defer_async(record_id="r2")
        async with db.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT queue_name, task_name, priority, lock, queueing_lock, args, scheduled_at, status, attempts"
                " FROM procrastinate_jobs ORDER BY id"
            )
            ours, theirs = await cur.fetchall()
        assert ours["lock"] == "T0TEAM:C0CHAN:1.1" and ours["args"] == {"record_id": "r1"}
        assert {**ours, "lock": None, "args": None} == {**theirs, "lock": None, "args": None}
    finally:
        await app.close_async()
        await db.close()


async def _someone_waits_on_a_lock_key(conn: psycopg.AsyncConnection[Any]) -> None:
    for _ in range(1000):
        cur = await conn.execute("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        if await cur.fetchone():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("nobody waited for the lock's advisory lock")


async def _woken_for(listen: psycopg.AsyncConnection[Any], job_id: int) -> None:
    async for note in listen.notifies(timeout=10):
        if json.loads(note.payload).get("job_id") == job_id:
            return
    raise AssertionError(f"no notification for job {job_id}")


async def test_a_job_queued_as_its_lock_is_let_go_is_woken_in_either_order(database_url: str, tmp_path: Any) -> None:
    """A job queued behind its conversation's lock while the job holding it ends is woken either way round: its
    insert commits (and notifies) only after the end has, or the end looks for waiting jobs only once the insert
    has committed. (Before, a job whose insert committed between the two was woken by the next poll, a second.)"""
    db = await open_database(database_url, tmp_path)
    app = await open_jobs(db.pool)
    task = app.tasks[RESUME]
    conns = [await psycopg.AsyncConnection.connect(database_url, autocommit=auto) for auto in (True, False, False)]
    watch, ending, queueing = conns
    listen = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
    try:
        await listen.execute("LISTEN procrastinate_any_queue_v1")
        for order in ("end first", "queue first"):
            lock = f"T0TEAM:C0CHAN:{order}"
            await watch.execute(
                "INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args, status)"
                " VALUES (%s, %s, %s, '{}', 'doing')",
                (task.queue, task.name, lock),
            )

            async def end(lock: str = lock) -> None:
                await ending.execute("DELETE FROM procrastinate_jobs WHERE lock = %s AND status = 'doing'", (lock,))

            async def queue(lock: str = lock) -> int:
                cur = await queueing.execute(DEFER_SQL, (task.queue, task.name, lock, Jsonb({"record_id": "r"})))
                row = await cur.fetchone()
                assert row is not None
                return int(row[0][0])

            if order == "end first":
                await end()
                queued = asyncio.create_task(queue())
                await _someone_waits_on_a_lock_key(watch)
                await ending.commit()
                job_id = await queued
                await queueing.commit()
            else:
                job_id = await queue()
                ended = asyncio.create_task(end())
                await _someone_waits_on_a_lock_key(watch)
                await queueing.commit()
                await ended
                await ending.commit()
            await _woken_for(listen, job_id)
    finally:
        for conn in (*conns, listen):
            await conn.close()
        await app.close_async()
        await db.close()


async def test_a_turns_first_read_begins_its_run_only_where_a_run_begins(database_url: str, tmp_path: Any) -> None:
    """The turn job's first read also begins the run (one statement, not two) for a new message with something to
    say, nothing open to answer and an allowed graph; for any other message it begins nothing and the job decides
    as before (an answer, a mention without text, a graph not allowed, a message done already)."""
    db = await open_database(database_url, tmp_path)
    try:
        store = Store(db.pool)

        async def said(ts: str, text: str, thread_ts: str | None = None) -> None:
            async with db.pool.connection() as conn:
                where = {"team_id": "T0", "channel_id": "C0", "user_id": "U0ALICE", "files": None}
                await store.take_in(
                    conn, **where, text=text, thread_ts=thread_ts or ts, ts=ts, start=True, default_graph="g"
                )

        async def first_read(ts: str, graphs: tuple[str, ...] = ("g",)) -> Any:
            found = await store.inbound_in(
                team_id="T0", channel_id="C0", ts=ts, run_key=f"turn:{ts}", checkpoint=True, begin_for=graphs
            )
            assert found is not None
            return found

        await said("1.1", "hello")
        inbound, conversation, run, was_open, before, begun, latest = await first_read("1.1")
        assert (inbound.text, inbound.status, run, was_open, before, latest) == (
            "hello",
            "queued",
            None,
            False,
            None,
            None,
        )
        assert begun is not None and (begun.key, begun.kind, begun.state) == ("turn:1.1", "turn", "running")
        assert (begun.conversation_id, begun.requester, begun.before) == (conversation.id, "U0ALICE", None)
        again = await first_read("1.1")
        assert again[2] == begun and again[5] is None  # read again (a retried job): begun already, not twice

        await said("2.2", "")  # a mention without text: answered without a run
        assert (await first_read("2.2"))[5] is None
        await said("3.3", "hi")
        assert (await first_read("3.3", graphs=("other",)))[5] is None  # refused, by the job
        await said("4.4", "done before")
        await store.set_inbound_status(team_id="T0", channel_id="C0", ts="4.4", status="done")
        assert (await first_read("4.4"))[5] is None
        async with db.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO lgslack_interrupts (conversation_id, interrupt_id, kind) VALUES (%s, 'i', 'question')",
                (conversation.id,),
            )
        await said("5.5", "my answer", thread_ts="1.1")  # a reply while a question is open: perhaps its answer
        found = await first_read("5.5")
        assert (found[3], found[5]) == (True, None)
        async with db.pool.connection() as conn:
            runs = await (await conn.execute("SELECT key FROM lgslack_runs ORDER BY key")).fetchall()
        assert [r["key"] for r in runs] == ["turn:1.1"]
    finally:
        await db.close()


async def _started(store: Store, conn: Any, *, team_id: str, channel_id: str) -> Conversation:
    """The conversation a mention ("hi", at 1.1) starts, on the graph "g"."""
    taken = await store.take_in(
        conn,
        team_id=team_id,
        channel_id=channel_id,
        thread_ts="1.1",
        ts="1.1",
        user_id="U0ALICE",
        text="hi",
        files=None,
        start=True,
        default_graph="g",
    )
    assert taken.conversation is not None
    return taken.conversation


async def test_a_resumes_first_read_begins_its_run_and_marks_the_request_resumed(
    database_url: str, tmp_path: Any
) -> None:
    """The resume job's first read begins the run and marks its request resumed, in one statement, only for a
    decided request of an allowed graph with no run yet; a pending one, or another graph's, is left to the job."""
    db = await open_database(database_url, tmp_path)
    try:
        store = Store(db.pool)
        async with db.pool.connection() as conn:
            conversation = await _started(store, conn, team_id="T0", channel_id="C0")
            cur = await conn.execute(
                "INSERT INTO lgslack_interrupts (conversation_id, interrupt_id, kind, requested_by)"
                " VALUES (%s, 'a', 'question', 'U0ALICE'), (%s, 'b', 'question', 'U0ALICE') RETURNING id",
                (conversation.id, conversation.id),
            )
            decided, pending = [str(r["id"]) for r in await cur.fetchall()]
            await conn.execute("UPDATE lgslack_interrupts SET state = 'decided' WHERE id = %s", (decided,))

        assert (await store.resume_in(pending, run_key=f"resume:{pending}", begin_for=["g"]))[4] is None  # type: ignore[index]
        assert (await store.resume_in(decided, run_key=f"resume:{decided}", begin_for=["other"]))[4] is None  # type: ignore[index]
        found = await store.resume_in(decided, run_key=f"resume:{decided}", begin_for=["g"])
        assert found is not None
        record, _, run, before, begun, latest = found
        assert (record.state, run, before, latest) == ("decided", None, None, None)
        assert begun is not None and (begun.key, begun.kind, begun.requester) == (
            f"resume:{decided}",
            "resume",
            "U0ALICE",
        )
        again = await store.resume_in(decided, run_key=f"resume:{decided}", begin_for=["g"])
        assert again is not None and again[2] == begun and again[4] is None and again[0].resumed_at is not None
        async with db.pool.connection() as conn:
            rows = await (
                await conn.execute("SELECT id, resumed_at IS NOT NULL AS r FROM lgslack_interrupts")
            ).fetchall()
            runs = await (await conn.execute("SELECT key FROM lgslack_runs")).fetchall()
        assert {str(r["id"]): r["r"] for r in rows} == {decided: True, pending: False}
        assert [r["key"] for r in runs] == [f"resume:{decided}"]
    finally:
        await db.close()


async def test_intake_claims_a_turn_for_its_own_worker_only_when_nothing_of_the_conversation_waits_or_runs(
    database_url: str, tmp_path: Any
) -> None:
    """With a worker id (an intake that runs jobs itself, `bot.jobs.Claims`), the statement that records a message
    inserts its turn job already running for that worker: only when no job of the conversation waits or runs, and
    only for a registered worker. Otherwise the job is queued as before."""
    db = await open_database(database_url, tmp_path)
    app = await open_jobs(db.pool)
    try:
        jobs, store = Jobs(app), Store(db.pool)
        worker = await app.job_manager.register_worker()
        where = {"team_id": "T0TEAM", "channel_id": "C0CHAN", "user_id": "U0ALICE", "text": "hi", "files": None}
        common = {"start": True, "default_graph": "g", "turn_job": jobs.turn_job()}
        async with db.pool.connection() as conn:
            first = await store.take_in(conn, **where, **common, thread_ts="1.1", ts="1.1", claim_for=worker)
            behind = await store.take_in(conn, **where, **common, thread_ts="1.1", ts="1.2", claim_for=worker)
            unknown = await store.take_in(conn, **where, **common, thread_ts="3.3", ts="3.3", claim_for=worker + 99)
            again = await store.take_in(conn, **where, **common, thread_ts="1.1", ts="1.1", claim_for=worker)
            cur = await conn.execute("SELECT id, status, worker_id, lock, args FROM procrastinate_jobs ORDER BY id")
            made = {row["id"]: row for row in await cur.fetchall()}
        assert first.claimed is not None and first.jobs == ()
        assert behind.claimed is None and len(behind.jobs) == 1
        assert unknown.claimed is None and len(unknown.jobs) == 1
        assert again.recorded is False and again.claimed is None and again.jobs == ()
        assert first.conversation is not None
        claimed = made[first.claimed]
        assert (claimed["status"], claimed["worker_id"], claimed["lock"]) == ("doing", worker, first.conversation.id)
        assert claimed["args"] == {"team_id": "T0TEAM", "channel_id": "C0CHAN", "ts": "1.1"}
        assert made[behind.jobs[0]]["status"] == "todo" and made[unknown.jobs[0]]["worker_id"] is None
        # The job behind it starts only once the claimed one has ended, as for any job of the lock.
        assert await app.job_manager.fetch_job(queues=None, worker_id=worker) is not None  # the other conversation's
        assert await app.job_manager.fetch_job(queues=None, worker_id=worker) is None
        await app.job_manager.finish_job_by_id_async(first.claimed, procrastinate_jobs.Status.SUCCEEDED, True)
        fetched = await app.job_manager.fetch_job(queues=None, worker_id=worker)
        assert fetched is not None and fetched.id == behind.jobs[0]
    finally:
        await app.close_async()
        await db.close()


async def test_a_claimed_resumes_first_read_goes_out_with_the_claim_and_reads_only_for_the_job_claimed(
    database_url: str, tmp_path: Any
) -> None:
    """The statement after a resume's claim, in the decision's transaction (the job's first read,
    `Turns.resume_read`), reads and begins the run only when the claim held the job for the claiming worker: a
    resume that went to the queue (its conversation's lock taken) gets nothing read or begun (its job reads when it
    runs)."""
    db = await open_database(database_url, tmp_path)
    app = await open_jobs(db.pool)
    try:
        store = Store(db.pool)
        worker = await app.job_manager.register_worker()
        async with db.pool.connection() as conn:
            conversation = await _started(store, conn, team_id="T0TEAM", channel_id="C0CHAN")
            cur = await conn.execute(
                "INSERT INTO lgslack_interrupts (conversation_id, interrupt_id, kind, requested_by, state)"
                " VALUES (%s, 'a', 'question', 'U0ALICE', 'decided') RETURNING id",
                (conversation.id,),
            )
            record = str((await cur.fetchone() or {})["id"])
            other = await conn.execute(  # another job holds the conversation's lock
                "INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args, status)"
                " VALUES ('default', 'lgslack.turn', %s, '{}', 'doing') RETURNING id",
                (conversation.id,),
            )
            held = int((await other.fetchone() or {})["id"])

        resume = Claimed(worker, RESUME)
        async with store.transaction(pipelined=True) as conn:  # its job is not held for the worker: nothing read
            read = await store.claimed_resume_in(
                conn, record, run_key=f"resume:{record}", begin_for=["g"], claim=resume
            )
        assert await read() is None
        await app.job_manager.finish_job_by_id_async(held, procrastinate_jobs.Status.SUCCEEDED, True)
        async with store.transaction(pipelined=True) as conn:
            await conn.execute(
                "INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args, status, worker_id)"
                " VALUES ('default', %s, %s, %s, 'doing', %s)",
                (RESUME, conversation.id, Jsonb({"record_id": record}), worker),
            )
            read = await store.claimed_resume_in(
                conn, record, run_key=f"resume:{record}", begin_for=["g"], claim=resume
            )
        found = await read()
        assert found is not None and found[0].id == record and found[4] is not None
        assert (found[4].key, found[4].kind, found[1].id) == (f"resume:{record}", "resume", conversation.id)
        async with db.pool.connection() as conn:
            runs = await (await conn.execute("SELECT key FROM lgslack_runs ORDER BY key")).fetchall()
            row = await (
                await conn.execute(
                    "SELECT resumed_at IS NOT NULL AS r FROM lgslack_interrupts WHERE id = %s", (record,)
                )
            ).fetchone()
        assert [r["key"] for r in runs] == [f"resume:{record}"] and row == {"r": True}
    finally:
        await app.close_async()
        await db.close()


async def test_a_resume_decided_in_a_claiming_scope_is_claimed_once_and_jobs_not_run_go_back_to_the_queue(
    database_url: str, tmp_path: Any
) -> None:
    """In a `claiming` scope (an intake's click or submission), the resume a decision queues in its pipelined
    transaction is claimed for the intake's worker and started once the scope ends. A job held for the intake that
    it does not run (its claim's answer lost) goes back to the queue at the next heartbeat."""
    db = await open_database(database_url, tmp_path)
    app = await open_jobs(db.pool)
    claims = Claims(app, cast(Flows, None), limit=1, stalled_after=30)
    await claims.open()
    started: list[tuple[int, str, str, dict[str, Any]]] = []

    def start(job_id: int, task: str, lock: str, kwargs: dict[str, Any], *, first: Any = None) -> None:
        claims.reserved -= 1  # what `start` does, without running the job
        started.append((job_id, task, lock, kwargs))

    claims.start = start  # type: ignore[method-assign]
    try:
        jobs, store = Jobs(app), Store(db.pool)
        async with claiming(claims):
            async with store.transaction(pipelined=True) as conn:
                await jobs.defer_resume(conn, "T0:C0:1.1", record_id="r1")
        async with claiming(claims):
            async with store.transaction(pipelined=True) as conn:
                await jobs.defer_resume(conn, "T0:C0:1.1", record_id="r2")  # the first one holds the lock
        async with db.pool.connection() as conn:
            cur = await conn.execute("SELECT id, status, worker_id, args FROM procrastinate_jobs ORDER BY id")
            made = await cur.fetchall()
        assert [(row["status"], row["args"]) for row in made] == [
            ("doing", {"record_id": "r1"}),
            ("todo", {"record_id": "r2"}),
        ]
        assert started == [(made[0]["id"], RESUME, "T0:C0:1.1", {"record_id": "r1"})]
        assert claims.reserved == 0 and made[0]["worker_id"] == claims.worker_id
        await claims.beat()  # the job is held for this worker but does not run here
        async with db.pool.connection() as conn:
            cur = await conn.execute("SELECT status FROM procrastinate_jobs WHERE id = %s", (made[0]["id"],))
            assert await cur.fetchone() == {"status": "todo"}
    finally:
        await claims.close(0)
        await app.close_async()
        await db.close()


def test_the_intake_runs_a_job_itself_only_when_no_message_came_for_a_moment(monkeypatch: Any) -> None:
    """A message taken in with nothing else taken in and none for `QUIET` seconds may run here; one in a steady
    stream, or while another is being taken in, goes to the workers. A decision does not count as a message."""
    nothing = cast(Any, None)
    claims = cast(Claims, object())
    door = listeners.Door(nothing, nothing, nothing, nothing, nothing, nothing, "g", claims=claims)
    now = [1000.0]
    monkeypatch.setattr(listeners.time, "monotonic", lambda: now[0])
    assert door.claims_now(busy=False) is claims
    now[0] += listeners.QUIET / 2
    assert door.claims_now(busy=False) is None  # a stream: the last came a moment ago
    now[0] += listeners.QUIET / 2
    assert door.claims_now(busy=False) is None  # measured from the last message, which was just now
    now[0] += listeners.QUIET * 2
    assert door.claims_now(busy=False, taking=False) is claims  # a decision, after a quiet moment
    assert door.claims_now(busy=False) is claims  # the decision did not count as a message
    now[0] += listeners.QUIET * 2
    assert door.claims_now(busy=True) is None  # another message is being taken in


async def test_a_pipelined_transaction_commits_in_one_round_trip_and_rolls_back_whole(
    database_url: str, tmp_path: Any
) -> None:
    """`Store.transaction(pipelined=True)`: BEGIN, the statements and COMMIT go out together (one round trip, counted
    on the wire) and commit together; a statement that fails takes the ones before it back with it, and the
    connection goes back to the pool idle and usable."""
    db = await open_database(database_url, tmp_path)
    try:
        store = Store(db.pool)
        async with db.pool.connection() as conn:
            await conn.execute("DROP TABLE IF EXISTS t_piped_all")
            await conn.execute("CREATE TABLE t_piped_all (k int PRIMARY KEY)")
        try:
            async with store.transaction(pipelined=True) as conn:
                await conn.execute("INSERT INTO t_piped_all VALUES (1)")
                await conn.execute("INSERT INTO t_piped_all VALUES (2)")
            with pytest.raises(psycopg.errors.UniqueViolation):
                async with store.transaction(pipelined=True) as conn:
                    await conn.execute("INSERT INTO t_piped_all VALUES (3)")
                    await conn.execute("INSERT INTO t_piped_all VALUES (1)")  # fails: 3 goes too
            with pytest.raises(RuntimeError):
                async with store.transaction(pipelined=True) as conn:
                    await conn.execute("INSERT INTO t_piped_all VALUES (4)")
                    raise RuntimeError("the caller fails before the end")
            async with db.pool.connection() as conn:
                assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
                cur = await conn.execute("SELECT k FROM t_piped_all ORDER BY k")
                assert [row["k"] for row in await cur.fetchall()] == [1, 2]
            proxy = CountingProxy(database_url)  # counts what goes on the wire
            await proxy.start()
            try:
                async with await psycopg.AsyncConnection.connect(proxy.url, autocommit=True) as conn:
                    before = proxy.snapshot()
                    async with pipelined_transaction(conn):
                        await conn.execute("INSERT INTO t_piped_all VALUES (5)")
                        await conn.execute("INSERT INTO t_piped_all VALUES (6)")
                    statements, round_trips, _ = (a - b for a, b in zip(proxy.snapshot(), before, strict=True))
                assert (statements, round_trips) == (4, 1)  # BEGIN, two inserts, COMMIT: one Sync
            finally:
                await proxy.stop()
        finally:
            async with db.pool.connection() as conn:
                await conn.execute("DROP TABLE t_piped_all")
    finally:
        await db.close()
