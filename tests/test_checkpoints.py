"""The checkpointer's first load of a job, served from what the job's first read found (issue 11), and the loads it
must not serve."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import CheckpointTuple
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.types import Command, interrupt

from bot.checkpoints import Checkpoints, known_thread
from bot.db import open_database
from bot.records.conversations import K_COLUMNS, checkpoint_join, checkpoint_row
from tests.support.harness import Harness
from tests.support.slack import GENERAL, containing, wait_for_message


def _loads(monkeypatch: Any) -> list[tuple[str, str, str | None]]:
    """Every load that reaches PostgreSQL: (thread, namespace, checkpoint id)."""
    loads: list[tuple[str, str, str | None]] = []
    load = AsyncPostgresSaver.aget_tuple

    async def counted(self: AsyncPostgresSaver, config: RunnableConfig) -> CheckpointTuple | None:
        c = config["configurable"]
        loads.append((c["thread_id"], c.get("checkpoint_ns", ""), c.get("checkpoint_id")))
        return await load(self, config)

    monkeypatch.setattr(AsyncPostgresSaver, "aget_tuple", counted)
    return loads


def _root(loads: list[tuple[str, str, str | None]]) -> list[tuple[str, str, str | None]]:
    return [load for load in loads if load[1] == ""]


def _echo(state: MessagesState) -> dict[str, Any]:
    return {"messages": [AIMessage(f"echo: {state['messages'][-1].content}")]}


echo = StateGraph(MessagesState).add_node("echo", _echo).add_edge(START, "echo").compile()


def _count(state: MessagesState) -> dict[str, Any]:
    """Says how many messages the thread had: a turn that started from the wrong checkpoint says it."""
    return {"messages": [AIMessage(f"{len(state['messages'])}: {state['messages'][-1].content}")]}


counting = StateGraph(MessagesState).add_node("count", _count).add_edge(START, "count").compile()


def _ask(state: MessagesState) -> dict[str, Any]:
    answer = interrupt(f"Who is {state['messages'][-1].content}?")
    return {"messages": [AIMessage(f"{len(state['messages'])}: {answer}")]}


asking = StateGraph(MessagesState).add_node("ask", _ask).add_edge(START, "ask").compile()


async def test_only_the_first_load_of_a_thread_said_empty_skips_the_database(
    database_url: str, tmp_path: Any, monkeypatch: Any
) -> None:
    loads = _loads(monkeypatch)
    db = await open_database(database_url, tmp_path)
    try:
        assert isinstance(db.checkpointer, Checkpoints)
        inner = StateGraph(MessagesState).add_node("echo", _echo).add_edge(START, "echo").compile()
        graph = StateGraph(MessagesState).add_node("inner", inner).add_edge(START, "inner").compile(db.checkpointer)

        def config(thread: str) -> RunnableConfig:
            return {"configurable": {"thread_id": thread}}

        with known_thread("t1", None):
            out = await graph.ainvoke({"messages": [HumanMessage("one")]}, config("t1"), durability="sync")
            state = await graph.aget_state(config("t1"))  # a second load in the block goes to the database
        assert [m.content for m in out["messages"]] == ["one", "echo: one"]
        assert [m.content for m in state.values["messages"]] == ["one", "echo: one"]
        # The subgraph's own namespace is loaded from the database; the root's first load is not.
        assert _root(loads) == [("t1", "", None)] and any(ns.startswith("inner:") for _, ns, _ in loads)

        # The next turn, outside the block, loads what the first one left.
        loads.clear()
        out = await graph.ainvoke({"messages": [HumanMessage("two")]}, config("t1"), durability="sync")
        assert [m.content for m in out["messages"]] == ["one", "echo: one", "two", "echo: two"]
        assert _root(loads) == [("t1", "", None)]

        # Said of another thread, it changes nothing for this one; a named checkpoint is always loaded.
        loads.clear()
        with known_thread("t9", None):
            await graph.ainvoke({"messages": [HumanMessage("three")]}, config("t1"), durability="sync")
            named = state.config["configurable"]["checkpoint_id"]
            again = await db.checkpointer.aget_tuple(
                {"configurable": {"thread_id": "t9", "checkpoint_ns": "", "checkpoint_id": named}}
            )
        assert again is None and _root(loads) == [("t1", "", None), ("t9", "", named)]
    finally:
        await db.close()


async def _first_read(db: Any, thread: str) -> dict[str, Any] | None:
    """The thread's latest checkpoint as a job's first read finds it (the same join, beside a row of ours)."""
    async with db.pool.connection() as conn:
        cur = await conn.execute(
            f"SELECT {K_COLUMNS} FROM (SELECT %s::text AS thread_id) c {checkpoint_join('c.thread_id')}",
            (thread,),
            binary=True,  # as the store reads it
        )
        row = await cur.fetchone()
    assert row is not None
    return checkpoint_row(row, thread)


async def test_the_first_reads_checkpoint_is_the_savers_own_load_and_serves_one_load(
    database_url: str, tmp_path: Any, monkeypatch: Any
) -> None:
    """An interrupted thread (its checkpoint has pending writes: the interrupt) read beside our rows loads exactly as
    the saver loads it; given to the job, it serves the resume's first load, and a write before the load (the
    row is then old) sends the load to the database."""
    db = await open_database(database_url, tmp_path)
    try:
        graph = StateGraph(MessagesState).add_node("ask", _ask).add_edge(START, "ask").compile(db.checkpointer)
        config: RunnableConfig = {"configurable": {"thread_id": "k1"}}
        await graph.ainvoke({"messages": [HumanMessage("Ann")]}, config, durability="sync")
        assert await _first_read(db, "none yet") is None

        row = await _first_read(db, "k1")
        assert row is not None
        own = await AsyncPostgresSaver.aget_tuple(db.checkpointer, config)
        served = await db.checkpointer._load_checkpoint_tuple(row)  # type: ignore[arg-type]
        assert own is not None and served == own
        assert [w[1] for w in own.pending_writes] == ["__interrupt__"]

        loads = _loads(monkeypatch)
        with known_thread("k1", row):
            out = await graph.ainvoke(Command(resume="a friend"), config, durability="sync")
            state = await graph.aget_state(config)  # after the run's writes: from the database
        assert [m.content for m in out["messages"]] == ["Ann", "1: a friend"]
        assert [m.content for m in state.values["messages"]] == ["Ann", "1: a friend"]
        assert _root(loads) == [("k1", "", None)]

        # Old by the time of the load: a task's writes to the thread came first.
        await graph.ainvoke({"messages": [HumanMessage("Bo")]}, config, durability="sync")
        row = await _first_read(db, "k1")
        assert row is not None
        loads.clear()
        with known_thread("k1", row):
            latest = {"configurable": {"thread_id": "k1", "checkpoint_ns": "", "checkpoint_id": row["checkpoint_id"]}}
            await db.checkpointer.aput_writes(latest, [("messages", [HumanMessage("late")])], "task-1")
            loaded = await db.checkpointer.aget_tuple(config)
        assert loaded is not None and _root(loads) == [("k1", "", None)]
        assert ("task-1", "messages") in [(w[0], w[1]) for w in loaded.pending_writes]
    finally:
        await db.close()


async def test_a_turn_and_a_resume_load_no_checkpoint_and_start_from_the_right_one(
    harness: Harness, slack: Any, monkeypatch: Any
) -> None:
    """Every run of a job starts from the checkpoint its first read found, without a load of its own: the first turn
    (none), the next turns (the thread's messages so far are counted) and a resume."""
    counts, asks = "tests.test_checkpoints:counting", "tests.test_checkpoints:asking"
    process = await harness.start(counts, environ=harness.environ(counts, BOT_GRAPHS=asks))
    loads = _loads(monkeypatch)

    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> first")
    await wait_for_message(slack, GENERAL, root, lambda m: m.get("text") == "1: first")
    await slack.post("U0ALICE", GENERAL, "second", thread_ts=root)
    await wait_for_message(slack, GENERAL, root, lambda m: m.get("text") == "3: second")
    await slack.post("U0ALICE", GENERAL, "third", thread_ts=root)
    await wait_for_message(slack, GENERAL, root, lambda m: m.get("text") == "5: third")
    assert _root(loads) == []

    await process.bot.store.set_channel_graph(team_id="T0SANDBOX", channel_id=GENERAL, graph=asks)
    asked = await slack.post("U0ALICE", GENERAL, "<@U0BOT> Ann")
    await wait_for_message(slack, GENERAL, asked, containing("Who is Ann?"))
    # A run that stopped on an interrupt is read from the checkpoint it wrote: one load, after the run.
    assert len(_root(loads)) == 1
    await slack.post("U0BOB", GENERAL, "a friend", thread_ts=asked)
    await wait_for_message(slack, GENERAL, asked, lambda m: m.get("text") == "1: a friend")
    assert len(_root(loads)) == 1
