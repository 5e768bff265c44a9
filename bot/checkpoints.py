"""LangGraph's Postgres checkpointer, told when a run starts a thread that has no checkpoint yet.

A run in process begins by loading the thread's latest checkpoint (`aget_tuple`): a round trip that, for the first
turn of a conversation, finds nothing. The job already knows that: its first read, under the conversation's lock,
found no checkpoint (`bot.records.conversations.latest_checkpoint`), and nothing else writes the thread's
checkpoints while the lock is held. `empty_thread` passes that on for the one load it saves (issue 11); every other
load, and every load of a subgraph's namespace or of a named checkpoint, goes to the database as before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import CheckpointTuple
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver


class _Empty:
    """A thread known to have no checkpoint, until its first load."""

    def __init__(self, thread_id: str) -> None:
        self.thread_id = thread_id
        self.loaded = False


_EMPTY: ContextVar[_Empty | None] = ContextVar("lgslack_empty_thread", default=None)


@contextlib.contextmanager
def empty_thread(thread_id: str) -> Iterator[None]:
    """Within this block, the first load of `thread_id`'s latest checkpoint (its root namespace) finds none
    without asking the database. Only for a thread whose job read, under its lock, that it has none."""
    token = _EMPTY.set(_Empty(thread_id))
    try:
        yield
    finally:
        _EMPTY.reset(token)


class Checkpoints(AsyncPostgresSaver):
    """`AsyncPostgresSaver`, which skips the one load `empty_thread` says would find nothing."""

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        empty = _EMPTY.get()
        if empty is not None and not empty.loaded:
            configurable: dict[str, Any] = config.get("configurable") or {}
            if (
                configurable.get("thread_id") == empty.thread_id
                and not configurable.get("checkpoint_ns")
                and not configurable.get("checkpoint_id")
            ):
                empty.loaded = True
                return None
        return await super().aget_tuple(config)
