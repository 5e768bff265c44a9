"""The least a durable-first bot does, built on the same libraries as the bot, run beside it in the same run: how close
to the bare graph a bot of this shape can come on the machine, whatever its code.

`python -m bench.minimal door PORT` takes in a person's message as the bot does before its ack: the request's
signature checked, the message recorded and its job queued in one statement (`procrastinate_defer_jobs_v1`), a
second event of the same message recognised in memory. `python -m bench.minimal worker CONCURRENCY` runs the jobs
with procrastinate: the graph (`ainvoke`, the same `AsyncPostgresSaver` on a pool), then the reply posted at most
once: its intent recorded before `chat.postMessage` (a job run again finds it sent) and marked sent after, on one
kept-alive HTTP session.

What it leaves out is what the bot adds on top: the run record that lets a turn cut short be carried on, the outbox's
leases and the reconciler, the intake's conversation lookup, escalations and requests, streaming and status, the
structured logs. So the gap between the two is what those cost, and the minimal bot's own ratio is a bound for any
durable-first bot that hands each turn to a queue's worker, with these libraries, on this machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from dataclasses import replace
from typing import Any

import aiohttp
import procrastinate
import psycopg
from aiohttp import web
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bench.stats import Summary

TASK = "bench.minimal.turn"
_MENTION = re.compile(r"<@[A-Z0-9]+>\s*")
TABLES = """
CREATE TABLE IF NOT EXISTS bench_minimal_inbound (
    channel text NOT NULL, ts text NOT NULL, thread_ts text NOT NULL, text text NOT NULL, PRIMARY KEY (channel, ts)
);
CREATE TABLE IF NOT EXISTS bench_minimal_outbox (key text PRIMARY KEY, text text NOT NULL, ts text);
"""
_TAKE_IN = """
WITH recorded AS (
    INSERT INTO bench_minimal_inbound (channel, ts, thread_ts, text) VALUES (%(channel)s, %(ts)s, %(thread)s, %(text)s)
    ON CONFLICT DO NOTHING RETURNING ts
)
SELECT procrastinate_defer_jobs_v1(ARRAY[ROW(
    'default', %(task)s, 0, %(lock)s, NULL,
    jsonb_build_object('channel', %(channel)s::text, 'thread_ts', %(thread)s::text, 'text', %(text)s::text), NULL
)::procrastinate_job_to_defer_v1]) FROM recorded
"""


async def prepare(database_url: str) -> None:
    """The minimal bot's two tables, in a database the bot's migrations (procrastinate's schema among them) made."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(TABLES)


async def _autocommit(conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.set_autocommit(True)


def _pool(url: str, size: int) -> AsyncConnectionPool[Any]:
    # autocommit in `configure`: procrastinate adds its own to the connection arguments.
    return AsyncConnectionPool(
        url, min_size=1, max_size=size, open=False, kwargs={"row_factory": dict_row}, configure=_autocommit
    )


async def door(port: int) -> None:
    pool = _pool(os.environ["DATABASE_URL"], 10)
    await pool.open(wait=True, timeout=30)
    verifier = SignatureVerifier(os.environ["SLACK_SIGNING_SECRET"])
    recent: set[tuple[str, str]] = set()

    async def events(request: web.Request) -> web.Response:
        body = await request.read()
        if not verifier.is_valid_request(body, dict(request.headers)):
            return web.Response(status=401)
        payload = json.loads(body)
        event = payload.get("event") or {}
        kind = event.get("type")
        # A mention (its app_mention; the message event of the same ts is the second delivery) or a reply in a thread.
        wanted = kind == "app_mention" or (kind == "message" and event.get("thread_ts") and not event.get("subtype"))
        key = (str(event.get("channel")), str(event.get("ts")))
        if wanted and not event.get("bot_id") and key not in recent:
            thread = event.get("thread_ts") or event["ts"]
            params = {
                "channel": event["channel"],
                "ts": event["ts"],
                "thread": thread,
                "text": _MENTION.sub("", event.get("text") or ""),
                "lock": f"{event['channel']}:{thread}",
                "task": TASK,
            }
            async with pool.connection() as conn:
                await conn.execute(_TAKE_IN, params)
            recent.add(key)
        return web.Response(status=200)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/slack/events", events)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await _until_stopped()
    await runner.cleanup()
    await pool.close()


async def worker(concurrency: int) -> None:
    from bench.graphs import echo

    os.nice(10)  # as the bot's `worker` (BOT_WORKER_NICE)
    pool = _pool(os.environ["DATABASE_URL"], concurrency + 2)
    await pool.open(wait=True, timeout=30)
    graph = echo.copy(update={"checkpointer": AsyncPostgresSaver(pool)})
    session = aiohttp.ClientSession()
    client = AsyncWebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"], session=session)
    app = procrastinate.App(connector=procrastinate.PsycopgConnector())

    @app.task(name=TASK)
    async def turn(channel: str, thread_ts: str, text: str) -> None:
        state = await graph.ainvoke(
            {"messages": [HumanMessage(text)]}, {"configurable": {"thread_id": f"{channel}:{thread_ts}"}}
        )
        reply = state["messages"][-1]
        key = f"{channel}:{thread_ts}:{reply.id}"
        async with pool.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO bench_minimal_outbox (key, text) VALUES (%s, %s)"
                " ON CONFLICT (key) DO UPDATE SET key = excluded.key RETURNING ts",
                (key, reply.content),
            )
            found = await cur.fetchone()
        if found is not None and found["ts"] is not None:
            return  # posted by an earlier run of this job
        sent = await client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=reply.content)
        async with pool.connection() as conn:
            await conn.execute("UPDATE bench_minimal_outbox SET ts = %s WHERE key = %s", (sent["ts"], key))

    async with app.open_async(pool):
        work = asyncio.create_task(
            app.run_worker_async(
                concurrency=concurrency,
                delete_jobs="successful",
                fetch_job_polling_interval=1.0,
                install_signal_handlers=False,
            )
        )
        await _until_stopped()
        work.cancel()
        await asyncio.gather(work, return_exceptions=True)
    await session.close()
    await pool.close()


async def _until_stopped() -> None:
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    await stopped.wait()


async def measure(children: Any, sandbox: Any, database_url: str, sizes: Any) -> dict[str, Any]:
    """The minimal bot as the `split` layout runs the bot (a door, two workers at nice 10, each running 4 jobs at
    once: with a graph that takes no time, more places make no difference), on a database of its own: its turns one
    at a time and its throughput at 50 conversations (the sizes' last level below that), in `minimal_rounds` rounds,
    each figure right after the bare graph's: its turns against the bare graph's of every round, its throughput as
    the round whose ratio is the median."""
    from bench import bare
    from bench.meter import Meter, settle_heap
    from bench.processes import REPO, free_port, wait_healthy
    from bench.rig import LAYOUTS, Rig, bot_environ, prepare_database
    from bench.slack import Door
    from bench.suite import Beside, measure_throughput, measure_turns

    await prepare_database(database_url, server=False)
    await prepare(database_url)
    env = {**bot_environ(database_url, sandbox, workers=4, langgraph_url=None), "PYTHONPATH": str(REPO)}
    port = free_port()
    command = [sys.executable, "-m", "bench.minimal"]
    processes = [children.start("door", [*command, "door", str(port)], env, url=f"http://127.0.0.1:{port}")]
    processes += [children.start("worker", [*command, "worker", "4"], env) for _ in range(2)]
    level = 50 if 50 in sizes.throughput_levels else sizes.throughput_levels[-1]
    rounds = max(1, sizes.minimal_rounds)
    per_round = replace(sizes, turns=max(1, min(sizes.turns, 100) // rounds))
    bot_events, sandbox.request_url = sandbox.request_url, f"http://127.0.0.1:{port}/slack/events"
    bare_turns: list[float] = []
    turns: list[float] = []
    rates: list[tuple[float, float]] = []
    cpu: dict[str, float] = {}
    calls: dict[str, float] = {}
    try:
        await wait_healthy(processes[0])
        local = await bare.Local.open(database_url)
        try:
            async with Door([sandbox.request_url]) as door:
                rig = Rig(LAYOUTS["split"], sandbox, door, database_url, processes, think=sizes.think)
                meter = Meter(rig)
                await rig.echo_conversation(max(1, sizes.warmup))
                await rig.wait_drained()
                await bare.conversation(local, max(1, sizes.warmup))
                # In rounds, each side right after the other: the machine's pace drifts over a run.
                for _ in range(rounds):
                    settle_heap()
                    bare_turns += await bare.conversations(
                        local, per_round.turns, sizes.turns_per_conversation, think=sizes.think
                    )
                    found = await measure_turns(rig, meter, per_round)
                    turns += found["turn_samples"]
                    calls = found["calls_per_turn"]
                    bare_rate = (await Beside(local).concurrent(level, sizes.throughput_turns, "echo"))["rate"]
                    fast = (await measure_throughput(rig, meter, sizes, (level,)))[level]
                    rates.append((bare_rate, fast["rate"]))
                    for role, spent in fast["cpu_per_turn"].items():
                        cpu[role] = cpu.get(role, 0.0) + spent / rounds
        finally:
            await local.close()
    finally:
        sandbox.request_url = bot_events
        for child in processes:
            await children.stop_async(child)
    middle = sorted(rates, key=lambda pair: pair[1] / pair[0])[len(rates) // 2]
    return {
        "turn": Summary.of(turns),
        "bare_turn": Summary.of(bare_turns),
        "calls_per_turn": calls,
        "level": level,
        "rounds": [{"bare_rate": b, "rate": r} for b, r in rates],
        "rate": middle[1],
        "bare_rate": middle[0],
        "cpu_per_turn": cpu,
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("door", "worker") or not argv[1].isdigit():
        print("usage: python -m bench.minimal door PORT | worker CONCURRENCY", file=sys.stderr)
        return 2
    asyncio.run(door(int(argv[1])) if argv[0] == "door" else worker(int(argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
