"""A whole run: PostgreSQL and the sandbox, then each layout in turn (its own database, its processes, the bare graph
beside it), the statement count, and the report. Whatever happens — an error, Ctrl-C, SIGTERM — every process is
stopped and every database dropped before it returns."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from functools import partial
from pathlib import Path
from typing import Any

from bench import bare, minimal, postgres
from bench.config import Sizes
from bench.counting import measure_statements
from bench.machine import local_cpu, machine
from bench.meter import Meter, settle_heap
from bench.processes import Children, start_langgraph, wait_healthy
from bench.rig import LAYOUTS, Rig, prepare_database, start_layout
from bench.slack import BOT_TOKEN, SLOW_CHANNEL, BenchSandbox, Door
from bench.stats import Summary
from bench.suite import (
    Beside,
    log,
    measure_acks,
    measure_bare,
    measure_intake_alone,
    measure_pending,
    measure_resumes,
    measure_throughput,
    measure_turns,
    warm_up,
)
from bot.slack.web import build_client, open_session

SCRATCH_CHANNEL = "C0BENCHSCRATCH"


async def sandbox_overhead(sandbox: BenchSandbox, think: float, calls: int = 200) -> dict[str, Any]:
    """What one Web API call costs at the sandbox, seen by a client made as the bot makes its own (slack_sdk's
    AsyncWebClient over one shared HTTP session, its connection kept alive: `bot.slack.web`) and inside the sandbox's
    handler: back to back, and (a quarter as many) each after `think` seconds of quiet, as the turns are timed."""
    sandbox.workspace.add_channel(SCRATCH_CHANNEL, "bench-scratch", ())
    session = open_session(10.0)
    client = build_client(BOT_TOKEN, sandbox.api_url, timeout=10.0, session=session)
    served_before = len(sandbox.served.samples)
    settle_heap()

    async def post(i: int) -> float:
        started = time.perf_counter()
        await client.chat_postMessage(channel=SCRATCH_CHANNEL, text=f"overhead {i}")
        return time.perf_counter() - started

    try:
        seen = [await post(i) for i in range(calls)]
        inside = sandbox.served.samples[served_before:]
        paced = []
        for i in range(max(1, calls // 4)):
            await asyncio.sleep(think)
            paced.append(await post(i))
    finally:
        await session.close()
    return {
        "client": Summary.of(seen),
        "handler": Summary.of(inside),
        "calls": calls,
        "client_paced": Summary.of(paced),
        "kept_alive": True,
    }


async def run_layout(
    name: str, sizes: Sizes, sandbox: BenchSandbox, children: Children, databases: postgres.Databases, logs: Path
) -> dict[str, Any]:
    layout = LAYOUTS[name]
    if layout.server:
        sizes = sizes.for_server()
    log(f"layout {name}: {layout.describe()}")
    url = databases.create(name)
    processes = []
    local: bare.Local | None = None
    try:
        await prepare_database(url, server=layout.server)
        langgraph = None
        if layout.server:
            langgraph = start_langgraph(children, logs / "langgraph")
            processes.append(langgraph)
            await wait_healthy(langgraph, timeout=180)
        bot = await start_layout(children, layout, sandbox, url, langgraph_url=langgraph.url if langgraph else None)
        processes += bot
        intake = [p.url + "/slack/events" for p in bot if p.role == "serve" and p.url]
        async with Door(intake) as door:
            rig = Rig(layout, sandbox, door, url, bot, think=sizes.think)
            meter = Meter(rig)
            await warm_up(rig, sizes)
            out: dict[str, Any] = {"layout": layout.describe(), "title": layout.title, "rss_warm": rig.rss()}
            levels = sizes.throughput_levels
            log("  bare graph")
            if langgraph is not None and langgraph.url:
                beside = Beside(bare.Server.open(langgraph.url))
            else:
                local = await bare.Local.open(url)
                beside = Beside(local, cpu=partial(local_cpu, url))
            out["bare"] = await measure_bare(beside.runs, sizes)
            log("  turns (and the bare graph's, interleaved)")
            out["turns"] = await measure_turns(rig, meter, sizes, beside)
            log("  resumes")
            out["resumes"] = await measure_resumes(rig, meter, sizes, beside)
            log("  throughput")
            out["throughput"] = await measure_throughput(rig, meter, sizes, levels, beside=beside)
            if sizes.slow_levels and not layout.server:
                log("  throughput, the graph waiting for its model")
                out["slow"] = await measure_throughput(
                    rig,
                    meter,
                    sizes,
                    sizes.slow_levels,
                    channel=SLOW_CHANNEL,
                    phase_name="slow",
                    beside=beside,
                    graph="slow",
                )
            out["bare"].update(beside.found)
            if sizes.ack_levels:
                log("  acks")
                out["acks"] = await measure_acks(rig, meter, sizes)
                if alone := await measure_intake_alone(rig, meter, sizes):
                    out["acks_alone"] = alone
            if name == sizes.pending_layout and sizes.pending:
                log(f"  {sizes.pending:,} pending questions")
                out["pending"] = await measure_pending(rig, meter, sizes)
            out["phases"] = {key: phase.as_dict() for key, phase in meter.phases.items()}
            out["rss_end"] = rig.rss()
            return out
    finally:
        if local is not None:
            await local.close()
        for child in reversed(processes):
            await children.stop_async(child)
        databases.drop_url(url)


async def run(sizes: Sizes, *, logs: Path) -> dict[str, Any]:
    """Every measurement of `sizes`; raw results (durations in seconds)."""
    results: dict[str, Any] = {"sizes": sizes.name, "layouts": {}, "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    began = time.monotonic()
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is not None:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    children = Children(logs)
    try:
        with postgres.server() as (server_url, source):
            databases = postgres.Databases(server_url)
            for name in databases.drop_stale():
                log(f"dropped {name}, left by a benchmark that was killed")
            results["machine"] = machine(server_url, source)
            sandbox = BenchSandbox()
            await sandbox.start()
            try:
                results["sandbox"] = await sandbox_overhead(sandbox, sizes.think)
                for name in sizes.layouts:
                    results["layouts"][name] = await run_layout(name, sizes, sandbox, children, databases, logs)
                if sizes.minimal:
                    log("the minimal durable bot (bench/minimal.py)")
                    results["minimal"] = await minimal.measure(children, sandbox, databases.create("minimal"), sizes)
                    found = results["minimal"]
                    log(
                        f"  turn p50 {found['turn'].p50 * 1000:.1f} ms (bare {found['bare_turn'].p50 * 1000:.1f} ms);"
                        f" {found['rate']:.1f} turns/s at {found['level']} (bare {found['bare_rate']:.1f}/s)"
                    )
                if sizes.count_turns:
                    log("statements per turn")
                    url = databases.create("count")
                    results["statements"] = await measure_statements(children, sandbox, url, sizes)
                results["sandbox"]["handler_during_run"] = Summary.of(sandbox.served.samples)
            finally:
                children.stop_all()
                await sandbox.stop()
                for failure in databases.drop_all():
                    log(f"could not drop {failure}")
    finally:
        children.stop_all()
        with contextlib.suppress(Exception):
            loop.remove_signal_handler(signal.SIGTERM)
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    results["seconds"] = round(time.monotonic() - began, 1)
    results["load_after"] = list(_loadavg())
    return results


def _loadavg() -> tuple[float, ...]:
    try:
        import os

        return tuple(round(x, 2) for x in os.getloadavg())
    except OSError:
        return ()


_SUMMARY_KEYS = {"n", "p50", "p90", "p99", "max", "mean"}


def load(path: Path) -> dict[str, Any]:
    """Results written by `dump`, as `run` returned them (Summaries, and concurrency levels as numbers)."""

    def revive(value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == _SUMMARY_KEYS:
                return Summary(**value)
            return {int(k) if k.isdigit() else k: revive(v) for k, v in value.items()}
        if isinstance(value, list):
            return [revive(v) for v in value]
        return value

    revived: dict[str, Any] = revive(json.loads(path.read_text()))
    return revived


def dump(results: dict[str, Any], path: Path) -> None:
    """The raw results as JSON (Summaries as dicts)."""

    def default(value: Any) -> Any:
        if isinstance(value, Summary):
            return value.as_dict()
        return str(value)

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, default=default))
