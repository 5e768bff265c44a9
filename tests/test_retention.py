"""Retention against real PostgreSQL: a finished conversation idle past the retention age loses its checkpoints,
messages, runs and outbox rows, keeps its audit; one that could still go on, or is recent, is kept whole."""

from __future__ import annotations

import asyncio
import operator
from typing import Annotated, Any, NotRequired

import psycopg
import pytest
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from psycopg.rows import dict_row
from typing_extensions import TypedDict

from bot.config import ConfigError, load_settings
from bot.jobs import RETAIN, TIMER, build_job_app
from bot.retention import Retention
from bot.store import Store
from tests.support.drain import wait_drained
from tests.support.harness import Harness
from tests.support.slack import GENERAL, containing, wait_for_message

GRAPH = "tests.test_retention:graph"
AGED = "40 days"


class Owner(TypedDict):
    topic: str
    owner: NotRequired[str]
    runs: NotRequired[Annotated[int, operator.add]]


def ask_owner(state: Owner) -> dict[str, Any]:
    """The owner, with how many runs this graph thread has had (a thread that kept its state counts on)."""
    run = state.get("runs", 0) + 1
    owner = interrupt(f"Who owns {state['topic']}?")
    return {"owner": f"{owner} (run {run})", "runs": 1}


_owner = StateGraph(Owner)
_owner.add_node("ask_owner", ask_owner)
_owner.add_edge(START, "ask_owner")
_owner.add_edge("ask_owner", END)
graph = _owner.compile()


async def sql(url: str, query: str, params: Any = None) -> list[dict[str, Any]]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True, row_factory=dict_row) as conn:
        cur = await conn.execute(query, params)
        return await cur.fetchall() if cur.description else []


async def conversation_of(url: str, root: str) -> dict[str, Any]:
    (row,) = await sql(url, "SELECT id, thread_id FROM lgslack_conversations WHERE thread_ts = %s", (root,))
    return row


async def left_of(url: str, conversation: dict[str, Any]) -> dict[str, int]:
    """How many rows of each kind the conversation has."""
    (row,) = await sql(
        url,
        """
        SELECT (SELECT count(*) FROM checkpoints WHERE thread_id = %(t)s) AS checkpoints,
               (SELECT count(*) FROM checkpoint_writes WHERE thread_id = %(t)s) AS writes,
               (SELECT count(*) FROM lgslack_inbound WHERE conversation_id = %(c)s) AS inbound,
               (SELECT count(*) FROM lgslack_runs WHERE conversation_id = %(c)s) AS runs,
               (SELECT count(*) FROM lgslack_outbox WHERE conversation_id = %(c)s) AS outbox,
               (SELECT count(*) FROM lgslack_interrupts WHERE conversation_id = %(c)s) AS requests,
               (SELECT count(*) FROM lgslack_decisions WHERE conversation_id = %(c)s) AS decisions,
               (SELECT count(*) FROM lgslack_conversations WHERE id = %(c)s) AS conversation
        """,
        {"t": conversation["thread_id"], "c": conversation["id"]},
    )
    return {key: int(value) for key, value in row.items()}


async def age(url: str, conversation_id: str, by: str = AGED) -> None:
    """Move every moment of the conversation back, as if it had been idle for `by`."""
    shifted = {
        "lgslack_conversations": ("created_at",),
        "lgslack_inbound": ("received_at",),
        "lgslack_runs": ("created_at", "updated_at"),
        "lgslack_outbox": ("created_at", "sent_at"),
        "lgslack_streams": ("created_at", "settled_at"),
        "lgslack_interrupts": ("created_at", "decided_at", "resumed_at"),
        "lgslack_decisions": ("requested_at", "decided_at"),
    }
    for table, columns in shifted.items():
        key = "id" if table == "lgslack_conversations" else "conversation_id"
        moves = ", ".join(f"{c} = {c} - %(by)s::interval" for c in columns)
        await sql(url, f"UPDATE {table} SET {moves} WHERE {key} = %(c)s", {"by": by, "c": conversation_id})


async def ask(slack: Any, topic: str) -> tuple[str, dict[str, Any]]:
    root = await slack.post("U0ALICE", GENERAL, f"<@U0BOT> {topic}")
    question = await wait_for_message(slack, GENERAL, root, containing(f"Who owns {topic}?"))
    return root, question


async def answer(slack: Any, root: str, owner: str, runs: int) -> None:
    await slack.post("U0BOB", GENERAL, owner, thread_ts=root)
    await wait_for_message(slack, GENERAL, root, containing(f"{owner} (run {runs})"))


async def finished_conversation(slack: Any, url: str, topic: str) -> dict[str, Any]:
    root, _ = await ask(slack, topic)
    await answer(slack, root, "Dana", runs=1)
    return {**await conversation_of(url, root), "root": root}


async def prune_by_job(harness: Harness, slack: Any, url: str) -> None:
    """Queue the periodic retention job now and wait until a worker has run it."""
    bot = harness.running[-1].bot
    await bot.jobs.configure_task(RETAIN).defer_async(timestamp=0)
    await wait_drained(url, slack)


async def test_an_old_finished_conversation_is_pruned_and_its_audit_kept(
    harness: Harness, slack: Any, database_url: str
) -> None:
    await harness.start(GRAPH, environ=harness.environ(GRAPH, BOT_RETENTION_DAYS="30"))
    old = await finished_conversation(slack, database_url, "the budget")
    pending_root, _ = await ask(slack, "the roadmap")
    pending = await conversation_of(database_url, pending_root)
    recent = await finished_conversation(slack, database_url, "the wiki")
    await wait_drained(database_url, slack)
    await age(database_url, old["id"])
    await age(database_url, pending["id"])
    store = Store(harness.running[-1].bot.db.pool)
    audit = await store.decisions(conversation_id=old["id"])
    assert audit and audit[0]["user_id"] == "U0BOB"
    before = {name: await left_of(database_url, c) for name, c in (("pending", pending), ("recent", recent))}
    assert all(counts["checkpoints"] and counts["inbound"] for counts in before.values())

    await prune_by_job(harness, slack, database_url)

    assert await left_of(database_url, old) == {
        "checkpoints": 0,
        "writes": 0,
        "inbound": 0,
        "runs": 0,
        "outbox": 0,
        "requests": 1,
        "decisions": 1,
        "conversation": 1,
    }
    assert await store.decisions(conversation_id=old["id"]) == audit
    (record,) = await sql(database_url, "SELECT state FROM lgslack_interrupts WHERE conversation_id = %s", (old["id"],))
    assert record["state"] == "decided"
    # A request still waits: everything stays (but sent outbox rows older than the age, in any conversation), and
    # the request can still be answered.
    assert await left_of(database_url, pending) == {**before["pending"], "outbox": 0}
    assert await left_of(database_url, recent) == before["recent"]
    await answer(slack, pending_root, "Erin", runs=1)


async def test_a_pruned_conversation_messaged_again_starts_fresh(
    harness: Harness, slack: Any, database_url: str
) -> None:
    await harness.start(GRAPH, environ=harness.environ(GRAPH, BOT_RETENTION_DAYS="30"))
    old = await finished_conversation(slack, database_url, "the budget")
    await wait_drained(database_url, slack)
    await age(database_url, old["id"])
    counts = await Retention(harness.running[-1].bot.db.pool, days=30).prune()
    assert counts["conversations"] == 1
    assert (await left_of(database_url, old))["checkpoints"] == 0

    # The same Slack thread, the same graph thread id: no checkpoint, so a new run from an empty state (runs is 1
    # again, where the thread kept it would say 2), with a request of its own that can be answered.
    await slack.post("U0ALICE", GENERAL, "the new budget", thread_ts=old["root"])
    await wait_for_message(slack, GENERAL, old["root"], containing("Who owns the new budget?"))
    await answer(slack, old["root"], "Frank", runs=1)
    await wait_drained(database_url, slack)
    after = await left_of(database_url, old)
    assert after["requests"] == 2 and after["decisions"] == 2 and after["checkpoints"] > 0
    # Pruned once, it is not looked at again while it is recent.
    assert (await Retention(harness.running[-1].bot.db.pool, days=30).prune())["conversations"] == 0


async def test_a_message_arriving_while_pruning_is_never_lost(harness: Harness, slack: Any, database_url: str) -> None:
    """A message being recorded (not committed yet) when the prune comes: the prune leaves the conversation alone,
    and once the message is in, the conversation is no longer finished."""
    await harness.start(GRAPH, environ=harness.environ(GRAPH, BOT_RETENTION_DAYS="30"))
    bot = harness.running[-1].bot
    store = Store(bot.db.pool)
    old = await finished_conversation(slack, database_url, "the budget")
    await wait_drained(database_url, slack)
    await age(database_url, old["id"])
    conversation = await store.get_conversation(old["id"])
    async with store.transaction() as conn:
        await store.record_inbound(
            conversation=conversation,
            channel_id=GENERAL,
            ts="1999999999.000100",
            user_id="U0ALICE",
            text="hi",
            conn=conn,
        )
        assert (await Retention(bot.db.pool, days=30).prune())["conversations"] == 0
    assert (await Retention(bot.db.pool, days=30).prune())["conversations"] == 0
    assert (await left_of(database_url, old))["checkpoints"] > 0


async def test_a_message_arriving_during_a_prune_waits_for_it_then_starts_fresh(
    harness: Harness, slack: Any, database_url: str
) -> None:
    """The prune has locked and emptied the conversation, not committed yet: the message's intake waits for the
    conversation row, then records the message against the pruned conversation, whose graph thread starts anew."""
    await harness.start(GRAPH, environ=harness.environ(GRAPH, BOT_RETENTION_DAYS="30"))
    retention = Retention(harness.running[-1].bot.db.pool, days=30)
    old = await finished_conversation(slack, database_url, "the budget")
    await wait_drained(database_url, slack)
    await age(database_url, old["id"])
    cutoff = await retention.cutoff()

    async def intake_waiting() -> bool:
        rows = await sql(
            database_url,
            "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        return bool(rows)

    async with await psycopg.AsyncConnection.connect(database_url, row_factory=dict_row) as conn:
        async with conn.transaction():
            assert await retention.prune_in(conn, old["id"], old["thread_id"], cutoff)
            posting = asyncio.create_task(slack.post("U0ALICE", GENERAL, "the new budget", thread_ts=old["root"]))
            await slack.wait_for(intake_waiting, timeout=10)
    await posting
    await wait_for_message(slack, GENERAL, old["root"], containing("Who owns the new budget?"))
    await answer(slack, old["root"], "Hana", runs=1)
    await wait_drained(database_url, slack)
    assert (await left_of(database_url, old))["inbound"] == 2  # the new message and its answer, only


async def test_old_sent_outbox_rows_and_settled_streams_go_in_every_conversation(
    harness: Harness, slack: Any, database_url: str
) -> None:
    await harness.start(GRAPH, environ=harness.environ(GRAPH, BOT_RETENTION_DAYS="30"))
    root, _ = await ask(slack, "the roadmap")
    await wait_drained(database_url, slack)
    pending = await conversation_of(database_url, root)
    await sql(
        database_url,
        "INSERT INTO lgslack_streams (key, run_key, conversation_id, message_id, channel_id, thread_ts, settled_at,"
        " created_at) VALUES ('s:old', 'r', %(c)s, 'm', %(ch)s, %(ts)s, now() - interval '40 days',"
        " now() - interval '40 days'), ('s:open', 'r2', %(c)s, 'm2', %(ch)s, %(ts)s, NULL, now() - interval '40 days')",
        {"c": pending["id"], "ch": GENERAL, "ts": root},
    )
    await sql(
        database_url,
        "INSERT INTO lgslack_outbox (key, conversation_id, op, role, state, created_at, sent_at) VALUES"
        " ('home:T0:U0OLD', %(c)s, 'update', 'home', 'sent', now() - interval '40 days', now() - interval '40 days')",
        {"c": pending["id"]},
    )
    await age(database_url, pending["id"])
    counts = await Retention(harness.running[-1].bot.db.pool, days=30).prune()
    assert counts["conversations"] == 0 and counts["streams"] == 1 and counts["outbox"] >= 1
    keys = {r["key"] for r in await sql(database_url, "SELECT key FROM lgslack_outbox")}
    assert "home:T0:U0OLD" in keys  # who opened their App Home is remembered
    assert {r["key"] for r in await sql(database_url, "SELECT key FROM lgslack_streams")} == {"s:open"}
    assert (await left_of(database_url, pending))["checkpoints"] > 0
    await answer(slack, root, "Gil", runs=1)


async def test_old_finished_jobs_are_removed(harness: Harness, slack: Any, database_url: str) -> None:
    await harness.start(GRAPH, environ=harness.environ(GRAPH, BOT_RETENTION_DAYS="30"))
    bot = harness.running[-1].bot
    timer = bot.jobs.configure_task(TIMER, schedule_in={"days": 1})
    job_id = await timer.defer_async(record_id="00000000-0000-0000-0000-000000000000", stage="remind")
    recent_id = await timer.defer_async(record_id="00000000-0000-0000-0000-000000000000", stage="remind")
    await sql(database_url, "UPDATE procrastinate_jobs SET status = 'failed' WHERE id IN (%s, %s)", (job_id, recent_id))
    await sql(
        database_url, "UPDATE procrastinate_events SET at = now() - interval '40 days' WHERE job_id = %s", (job_id,)
    )
    await prune_by_job(harness, slack, database_url)
    left = await sql(database_url, "SELECT id FROM procrastinate_jobs WHERE id IN (%s, %s)", (job_id, recent_id))
    assert [row["id"] for row in left] == [recent_id]


def test_the_periodic_job_is_registered_only_with_a_retention_age() -> None:
    app = build_job_app(retention_days=30, retention_schedule="0 4 * * *")
    crons = {task.task.name: task.cron for task in app.periodic_registry.periodic_tasks.values()}
    assert crons[RETAIN] == "0 4 * * *"
    assert RETAIN not in {
        t.task.name for t in build_job_app(retention_days=0).periodic_registry.periodic_tasks.values()
    }


def test_retention_settings() -> None:
    settings = load_settings({}, "tool")
    assert (settings.retention_days, settings.retention_schedule) == (90, "17 3 * * *")
    settings = load_settings({"BOT_RETENTION_DAYS": "0", "BOT_RETENTION_SCHEDULE": "0 */6 * * *"}, "tool")
    assert (settings.retention_days, settings.retention_schedule) == (0, "0 */6 * * *")
    with pytest.raises(ConfigError, match="BOT_RETENTION_SCHEDULE"):
        load_settings({"BOT_RETENTION_SCHEDULE": "daily"}, "tool")
    with pytest.raises(ConfigError, match="BOT_RETENTION_DAYS"):
        load_settings({"BOT_RETENTION_DAYS": "-1"}, "tool")
