"""The bare graphs: what the bot is measured against. The same `echo` and `ask` graphs, run with `ainvoke` (one call
per turn, on the conversation's thread) over an `AsyncPostgresSaver` on the same PostgreSQL, through a pool made as
the bot makes its own (autocommit, dict rows, statements run often prepared, 10 connections) but without its connection
check; or, for the LangGraph Server comparison, with `runs.wait` on the same `langgraph dev` the bot uses."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from langchain_core.messages import HumanMessage
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.types import Command
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from bench.graphs import ask, echo, slow
from bench.slack import nonce
from bot.db import PREPARE_THRESHOLD


class Runs(Protocol):
    async def turn(self, graph: str, thread_id: str, text: str) -> Any: ...

    async def resume(self, graph: str, thread_id: str, value: str) -> Any: ...


@dataclass
class Local:
    """`ainvoke` on the graphs with a Postgres checkpointer."""

    pool: AsyncConnectionPool[Any]
    graphs: dict[str, Any]

    @classmethod
    async def open(cls, url: str, max_size: int = 10) -> Local:
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            open=False,
            kwargs={"prepare_threshold": PREPARE_THRESHOLD, "row_factory": dict_row, "autocommit": True},
        )
        await pool.open(wait=True, timeout=15)
        saver = AsyncPostgresSaver(pool)
        await saver.setup()
        graphs = {
            name: g.copy(update={"checkpointer": saver}) for name, g in (("echo", echo), ("ask", ask), ("slow", slow))
        }
        return cls(pool, graphs)

    async def close(self) -> None:
        await self.pool.close()

    async def turn(self, graph: str, thread_id: str, text: str) -> Any:
        config = {"configurable": {"thread_id": thread_id}}
        return await self.graphs[graph].ainvoke({"messages": [HumanMessage(content=text)]}, config)

    async def resume(self, graph: str, thread_id: str, value: str) -> Any:
        return await self.graphs[graph].ainvoke(Command(resume=value), {"configurable": {"thread_id": thread_id}})


@dataclass
class Server:
    """`runs.wait` on a LangGraph Server (threads made first, as the bot makes them)."""

    client: Any

    @classmethod
    def open(cls, url: str) -> Server:
        from langgraph_sdk import get_client

        return cls(get_client(url=url, api_key=None))

    async def turn(self, graph: str, thread_id: str, text: str) -> Any:
        await self.client.threads.create(thread_id=thread_id, if_exists="do_nothing")
        return await self.client.runs.wait(thread_id, graph, input={"messages": [{"role": "user", "content": text}]})

    async def resume(self, graph: str, thread_id: str, value: str) -> Any:
        return await self.client.runs.wait(thread_id, graph, command={"resume": value})


async def timed(work: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await work()
    return time.perf_counter() - started


async def conversation(runs: Runs, turns: int, *, think: float = 0.0, graph: str = "echo") -> list[float]:
    """`turns` echo turns (of `graph`) on one new thread, one after the other, each after `think` seconds of quiet
    (as the bot's are timed: see `Sizes.think`); each one's duration."""
    thread = str(uuid.uuid4())
    durations = []
    for _ in range(turns):
        await _pause(think)
        durations.append(await timed(lambda: runs.turn(graph, thread, nonce())))
    return durations


async def conversations(runs: Runs, turns: int, per_conversation: int, *, think: float = 0.0) -> list[float]:
    """`turns` echo turns in conversations of `per_conversation` (the last one shorter), as `conversation` runs
    them; each one's duration."""
    durations: list[float] = []
    while len(durations) < turns:
        durations += await conversation(runs, min(per_conversation, turns - len(durations)), think=think)
    return durations


async def ask_cycle(runs: Runs, *, think: float = 0.0) -> tuple[float, float]:
    """A turn of the `ask` graph on a new thread (it interrupts) and the resume, each after `think` seconds of
    quiet; both durations."""
    thread = str(uuid.uuid4())
    await _pause(think)
    asked = await timed(lambda: runs.turn("ask", thread, nonce()))
    await _pause(think)
    resumed = await timed(lambda: runs.resume("ask", thread, nonce()))
    return asked, resumed


async def _pause(think: float) -> None:
    if think > 0:
        await asyncio.sleep(think)


async def concurrent(runs: Runs, conversations: int, turns: int, graph: str = "echo") -> tuple[float, list[float]]:
    """`conversations` clients at once, each running `turns` turns of `graph` one after the other, each on a new
    thread (as each of the bot's is a new conversation): turns per second, and each turn's duration."""

    async def client() -> list[float]:
        return [(await conversation(runs, 1, graph=graph))[0] for _ in range(turns)]

    started = time.perf_counter()
    done = await asyncio.gather(*(client() for _ in range(conversations)))
    elapsed = time.perf_counter() - started
    latencies = [t for one in done for t in one]
    return len(latencies) / elapsed, latencies
