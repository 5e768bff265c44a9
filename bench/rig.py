"""One bot layout, running: its processes, the sandbox and the door they share, and the exchanges a person has
with it (a message and the reply it waits for), timed."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from bench.graphs import ASK, ECHO, SLOW
from bench.machine import local_cpu
from bench.processes import Child, Children, wait_healthy
from bench.slack import (
    ASK_CHANNEL,
    BOT_TOKEN,
    ECHO_CHANNEL,
    SIGNING_SECRET,
    SLOW_CHANNEL,
    USERS,
    Ack,
    BenchSandbox,
    Door,
    mention,
    nonce,
)
from bot.config import DEFAULT_WORKERS
from bot.db import open_database
from bot.dev.sandbox.workspace import TEAM_ID

REPLY_TIMEOUT = 120.0
ANSWER_ACTION = "lgslack.act:answer"
"""The action id of a question's Answer button (bot.blocks.ACTION + the renderer's action)."""
ANSWER_FIELD = "lgslack_answer"
"""The block id of the answer field in the question's modal."""


@dataclass(frozen=True)
class Layout:
    """How the bot is deployed: `serve_processes` × `serve` with `serve_workers` job workers in its event loop (the
    benchmark sends to them in turn, as a load balancer would), plus `worker_processes` `worker` processes of
    `worker_concurrency` each; with `server`, the graphs run on `langgraph dev`."""

    name: str
    title: str
    serve_workers: int
    worker_processes: int = 0
    serve_processes: int = 1
    worker_concurrency: int = DEFAULT_WORKERS
    server: bool = False

    def describe(self) -> str:
        parts = [f"{self.serve_processes} × `python -m bot serve` (BOT_WORKERS={self.serve_workers})"]
        if self.worker_processes:
            parts.append(f"{self.worker_processes} × `python -m bot worker` (BOT_WORKERS={self.worker_concurrency})")
        if self.server:
            parts.append("graphs on `langgraph dev` (LANGGRAPH_URL)")
        return " + ".join(parts)


LAYOUTS = {
    "serve": Layout(
        "serve", "`serve` with its job workers in one process (small installs)", serve_workers=DEFAULT_WORKERS
    ),
    "split": Layout("split", "intake-only `serve` + two `worker` processes", serve_workers=0, worker_processes=2),
    "server": Layout(
        "server", "`serve` with the graphs on a LangGraph Server", serve_workers=DEFAULT_WORKERS, server=True
    ),
}


@dataclass(frozen=True)
class Exchange:
    """A person's message (or answer) and the bot's message it waited for: when the first POST started, how long
    until the bot's message was posted, the person's message ts and the bot's."""

    started: float
    latency: float
    ts: str
    acks: list[Ack]
    reply_ts: str | None = None


@dataclass
class Rig:
    layout: Layout
    sandbox: BenchSandbox
    door: Door
    database_url: str
    processes: list[Child] = field(default_factory=list)
    users: tuple[str, ...] = USERS
    think: float = 0.0
    """Seconds of quiet before each message or answer timed one at a time (`Sizes.think`)."""

    async def exchange(
        self,
        *,
        channel: str,
        text: str,
        expect: str,
        thread_ts: str | None = None,
        user: str = USERS[0],
    ) -> Exchange:
        """Say `text` and wait for the bot's message containing `expect`."""
        ts, envelopes = self.sandbox.say(user, channel, text, thread_ts)
        answered = self.sandbox.expect(expect)
        started = time.perf_counter()
        acks = await self.door.post_all(envelopes)
        failed = [a for a in acks if not a.ok]
        if failed and not answered.done():
            answered.cancel()
            raise RuntimeError(f"the bot refused an event: {failed[0]}")
        seen = await asyncio.wait_for(answered, REPLY_TIMEOUT)
        return Exchange(started, seen.at - started, ts, acks, seen.ts)

    async def mention(self, user: str = USERS[0], channel: str = ECHO_CHANNEL) -> Exchange:
        """A new conversation: a mention in the echo channel (or the `slow` graph's), until the echo shows."""
        word = nonce()
        return await self.exchange(channel=channel, text=mention(word), expect=f"echo: {word}", user=user)

    async def echo_conversation(self, turns: int, user: str = USERS[0], *, settle: bool = True) -> list[Exchange]:
        """A mention in the echo channel, then `turns - 1` replies in its thread, each waiting for the echo (and,
        with `settle`, each sent after a `pause`, as when a person takes a moment to write)."""
        if settle:
            await self.pause()
        first = await self.mention(user)
        done = [first]
        for _ in range(turns - 1):
            if settle:
                await self.pause()
            word = nonce()
            done.append(
                await self.exchange(
                    channel=ECHO_CHANNEL, text=word, expect=f"echo: {word}", thread_ts=first.ts, user=user
                )
            )
        return done

    async def ask(self, user: str = USERS[0]) -> tuple[Exchange, str]:
        """A mention in the ask channel, until the question shows; returns it and the word asked about."""
        word = nonce()
        question = await self.exchange(
            channel=ASK_CHANNEL, text=mention(word), expect=f"What should I do with {word}", user=user
        )
        return question, word

    async def answer(self, question: Exchange, word: str, user: str = USERS[0]) -> Exchange:
        """Answer the question by a reply in its thread, until the resumed reply shows."""
        reply = nonce()
        return await self.exchange(
            channel=ASK_CHANNEL, text=reply, expect=f"answer {reply} for {word}", thread_ts=question.ts, user=user
        )

    async def answer_in_modal(
        self, question: Exchange, word: str, user: str = USERS[0], *, pause: bool = False
    ) -> tuple[float, Exchange]:
        """Answer with the question's Answer button: click, wait for the modal (then, with `pause`, as long as a
        `pause`: someone writes the answer), submit it; returns how long the modal took to open and the submission →
        resumed reply."""
        assert question.reply_ts is not None
        opened = self.sandbox.expect_call("views.open")
        clicked = time.perf_counter()
        result = await self.sandbox.click(user, ASK_CHANNEL, question.reply_ts, ANSWER_ACTION)
        if not result.get("ok"):
            raise RuntimeError(f"the bot refused the click: {result}")
        shown = await asyncio.wait_for(opened, REPLY_TIMEOUT)
        if pause:
            await self.pause()
        reply = nonce()
        resumed = self.sandbox.expect(f"answer {reply} for {word}")
        started = time.perf_counter()
        result = await self.sandbox.submit(user, {ANSWER_FIELD: {"value": reply}})
        ack = Ack(started, time.perf_counter() - started, result.get("status"), result.get("error"))
        if not result.get("ok"):
            resumed.cancel()
            raise RuntimeError(f"the bot refused the answer: {result}")
        seen = await asyncio.wait_for(resumed, REPLY_TIMEOUT)
        return shown.at - clicked, Exchange(started, seen.at - started, question.ts, [ack], seen.ts)

    # ---- reading the bot's database ------------------------------------------------------------

    @asynccontextmanager
    async def db(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with await psycopg.AsyncConnection.connect(self.database_url, autocommit=True) as conn:
            yield conn

    async def conversation_id(self, conn: psycopg.AsyncConnection[Any], channel: str, thread_ts: str) -> str:
        for _ in range(1000):
            cur = await conn.execute(
                "SELECT id FROM lgslack_conversations WHERE channel_id = %s AND thread_ts = %s", (channel, thread_ts)
            )
            row = await cur.fetchone()
            if row:
                return str(row[0])
            await asyncio.sleep(0.005)
        raise RuntimeError(f"no conversation for {channel}/{thread_ts}")

    async def wait_unlocked(
        self, conn: psycopg.AsyncConnection[Any], lock: str, job_id: int | None = None, every: float = 0.002
    ) -> float:
        """Poll until the conversation's lock is free (or job `job_id` no longer runs); when it was seen free."""
        args: tuple[Any, ...]
        if job_id is None:
            sql, args = "SELECT 1 FROM procrastinate_jobs WHERE lock = %s AND status IN ('todo', 'doing')", (lock,)
        else:
            sql, args = "SELECT 1 FROM procrastinate_jobs WHERE id = %s AND status = 'doing'", (job_id,)
        deadline = time.monotonic() + REPLY_TIMEOUT
        while time.monotonic() < deadline:
            cur = await conn.execute(sql, args)
            if await cur.fetchone() is None:
                return time.perf_counter()
            await asyncio.sleep(every)
        raise TimeoutError(f"the lock {lock} stayed taken")

    async def running_job(self, conn: psycopg.AsyncConnection[Any], lock: str) -> int | None:
        cur = await conn.execute("SELECT id FROM procrastinate_jobs WHERE lock = %s AND status = 'doing'", (lock,))
        row = await cur.fetchone()
        return int(row[0]) if row else None

    async def pause(self) -> None:
        """As a person takes a moment to write: until the bot has nothing left to do, then `think` seconds more (the
        bare graph is timed after the same pause: see `Sizes.think`)."""
        await self.wait_drained()
        if self.think > 0:
            await asyncio.sleep(self.think)

    async def wait_drained(self, timeout: float = 600.0) -> None:  # noqa: ASYNC109
        """Until no job is due or running, no outbox row waits and the sandbox has delivered everything."""
        deadline = time.monotonic() + timeout
        quiet = 0
        async with self.db() as conn:
            while quiet < 2:
                await self.sandbox.wait_idle(timeout=max(1.0, deadline - time.monotonic()))
                cur = await conn.execute(
                    "SELECT (SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
                    " AND task_name <> 'lgslack.reconcile' AND (scheduled_at IS NULL OR scheduled_at <= now()))"
                    " + (SELECT count(*) FROM lgslack_outbox WHERE state = 'pending')"
                )
                row = await cur.fetchone()
                quiet = quiet + 1 if row and row[0] == 0 else 0
                if time.monotonic() > deadline:
                    raise TimeoutError("the bot did not finish its work")
                await asyncio.sleep(0.05)

    # ---- the processes -------------------------------------------------------------------------

    def rss(self) -> dict[str, int]:
        """Resident memory of each bot process, by role (several workers are added up)."""
        out: dict[str, int] = {}
        for child in self.processes:
            if child.role in ("serve", "worker"):
                out[child.role] = out.get(child.role, 0) + child.rss()
        return out

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of each process by role, of this one ("bench": the sandbox and the load) and of the
        PostgreSQL server ("postgres", every process of it, when it runs on this machine)."""
        out: dict[str, float] = {}
        for child in self.processes:
            out[child.role] = out.get(child.role, 0.0) + child.cpu()
        out.update(local_cpu(self.database_url))
        return out


def bot_environ(database_url: str, sandbox: BenchSandbox, *, workers: int, langgraph_url: str | None) -> dict[str, str]:
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": sandbox.api_url,
        "DATABASE_URL": database_url,
        "BOT_GRAPH": ECHO,
        "BOT_WORKERS": str(workers),
        "LANGSMITH_TRACING": "false",
        "LOG_LEVEL": os.environ.get("BENCH_BOT_LOG_LEVEL", "INFO"),
    }
    for name in ("LANGGRAPH_URL", "LANGGRAPH_ASSISTANT_ID", "BOT_CONFIG", "BOT_GRAPHS", "PORT", "HOST"):
        env.pop(name, None)
    # The ask and slow channels' graphs (prepare_database) must be allowed ones.
    env["BOT_GRAPHS"] = "ask" if langgraph_url else f"{ASK},{SLOW}"
    if langgraph_url:
        env.update({"LANGGRAPH_URL": langgraph_url, "LANGGRAPH_ASSISTANT_ID": "echo"})
    return env


async def prepare_database(database_url: str, *, server: bool) -> None:
    """Migrate the database as the bot would, and give the ask channel the `ask` graph (and, in process, the slow
    channel the `slow` one)."""
    db = await open_database(database_url, Path(".data"))
    channels = [(ASK_CHANNEL, "ask")] if server else [(ASK_CHANNEL, ASK), (SLOW_CHANNEL, SLOW)]
    try:
        async with db.pool.connection() as conn:
            for channel, graph in channels:
                await conn.execute(
                    "INSERT INTO lgslack_channel_graphs (team_id, channel_id, graph) VALUES (%s, %s, %s)"
                    " ON CONFLICT (team_id, channel_id) DO UPDATE SET graph = excluded.graph",
                    (TEAM_ID, channel, graph),
                )
    finally:
        await db.close()


async def start_layout(
    children: Children,
    layout: Layout,
    sandbox: BenchSandbox,
    database_url: str,
    *,
    langgraph_url: str | None = None,
    worker_database_url: str | None = None,
) -> list[Child]:
    """Start the layout's processes against `database_url` (the workers' may differ, to count them apart) and wait
    until `serve` is healthy; the sandbox delivers the bot's own messages' events to it."""
    serve_env = bot_environ(database_url, sandbox, workers=layout.serve_workers, langgraph_url=langgraph_url)
    serve = children.bot("serve", serve_env)
    started = [serve] + [children.bot("serve", serve_env) for _ in range(layout.serve_processes - 1)]
    worker_env = bot_environ(
        worker_database_url or database_url, sandbox, workers=layout.worker_concurrency, langgraph_url=langgraph_url
    )
    started += [children.bot("worker", worker_env) for _ in range(layout.worker_processes)]
    for child in started:
        if child.role == "serve":
            await wait_healthy(child)
        elif child.process.poll() is not None:
            raise RuntimeError(f"the worker exited with {child.process.returncode}:\n{child.tail()}")
    assert serve.url is not None
    sandbox.request_url = serve.url + "/slack/events"
    return started
