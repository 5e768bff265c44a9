"""The checkpointer's load that a conversation's first turn skips (issue 11), and the loads it must not skip."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import CheckpointTuple
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.graph import START, MessagesState, StateGraph

from bot.checkpoints import Checkpoints, empty_thread
from bot.db import open_database
from tests.support.harness import Harness
from tests.support.slack import GENERAL, wait_for_message


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

        with empty_thread("t1"):
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
        with empty_thread("t9"):
            await graph.ainvoke({"messages": [HumanMessage("three")]}, config("t1"), durability="sync")
            named = state.config["configurable"]["checkpoint_id"]
            again = await db.checkpointer.aget_tuple(
                {"configurable": {"thread_id": "t9", "checkpoint_ns": "", "checkpoint_id": named}}
            )
        assert again is None and _root(loads) == [("t1", "", None), ("t9", "", named)]
    finally:
        await db.close()


async def test_a_conversations_first_turn_loads_no_checkpoint_and_its_next_turn_one(
    harness: Harness, slack: Any, monkeypatch: Any
) -> None:
    await harness.start("tests.test_checkpoints:echo")
    warm = await slack.post("U0ALICE", GENERAL, "<@U0BOT> warm")
    await wait_for_message(slack, GENERAL, warm, lambda m: m.get("text") == "echo: warm")
    loads = _loads(monkeypatch)

    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> first")
    await wait_for_message(slack, GENERAL, root, lambda m: m.get("text") == "echo: first")
    assert loads == []

    await slack.post("U0ALICE", GENERAL, "second", thread_ts=root)
    await wait_for_message(slack, GENERAL, root, lambda m: m.get("text") == "echo: second")
    assert len(loads) == 1 and loads[0][1:] == ("", None)
