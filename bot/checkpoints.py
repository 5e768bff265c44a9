"""LangGraph's Postgres checkpointer, given the thread's latest checkpoint that the job's first read found.

A run in process begins by loading the thread's latest checkpoint (`aget_tuple`): a round trip of its own. The job
already has it: its first read, under the conversation's lock, read the thread's latest checkpoint beside our own
rows, with the saver's own SELECT (`bot.records.conversations.checkpoint_join`), or found none. Nothing else writes
the thread's checkpoints while the lock is held, so `known_thread` passes that row on for the first load of the
thread in the job, which the saver then reads from it as from its own query (issue 11). A write to the thread
(a checkpoint or a task's writes) before that load makes the row old: the load then goes to the database, as does
every later load and every load of a subgraph's namespace or of a named checkpoint.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata, CheckpointTuple
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver


class _Known:
    """A thread's latest root checkpoint as the job's first read found it (`row` None: it has none), until the
    thread's first load or first write."""

    def __init__(self, thread_id: str, row: dict[str, Any] | None) -> None:
        self.thread_id = thread_id
        self.row = row
        self.used = False


_KNOWN: ContextVar[_Known | None] = ContextVar("lgslack_known_thread", default=None)


@contextlib.contextmanager
def known_thread(thread_id: str, row: dict[str, Any] | None) -> Iterator[None]:
    """Within this block, the first load of `thread_id`'s latest checkpoint (its root namespace) is `row`, a row
    of the saver's own SELECT (None: no checkpoint), without asking the database. Only for a row read under the
    conversation's lock, in the job that holds it."""
    token = _KNOWN.set(_Known(thread_id, row))
    try:
        yield
    finally:
        _KNOWN.reset(token)


def _latest_of(config: RunnableConfig) -> str | None:
    """The thread whose latest root checkpoint `config` asks for (None: a namespace or a named checkpoint)."""
    configurable: dict[str, Any] = config.get("configurable") or {}
    if configurable.get("checkpoint_ns") or configurable.get("checkpoint_id"):
        return None
    thread = configurable.get("thread_id")
    return str(thread) if thread is not None else None


def _forget(config: RunnableConfig) -> None:
    """A write to the thread: what the first read found is no longer its latest."""
    known = _KNOWN.get()
    if known is not None and (config.get("configurable") or {}).get("thread_id") == known.thread_id:
        known.used = True


class Checkpoints(AsyncPostgresSaver):
    """`AsyncPostgresSaver`, which serves the one load `known_thread` already read."""

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        known = _KNOWN.get()
        if known is not None and not known.used and _latest_of(config) == known.thread_id:
            known.used = True
            row = known.row
            if row is None:
                return None
            # A checkpoint older than the saver's format 4 needs its pending sends migrated: the saver's own load.
            if row["checkpoint"].get("v", 0) >= 4 or not row["parent_checkpoint_id"]:
                return await self._load_checkpoint_tuple(row)
        return await super().aget_tuple(config)

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        _forget(config)
        return await super().aput(config, checkpoint, metadata, new_versions)

    async def aput_writes(self, config: RunnableConfig, writes: Any, task_id: str, task_path: str = "") -> None:
        _forget(config)
        await super().aput_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        _forget({"configurable": {"thread_id": thread_id}})
        await super().adelete_thread(thread_id)
