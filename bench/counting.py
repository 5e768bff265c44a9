"""SQL statements per turn, counted on the wire (bench/wire.py): the intake-only `serve` and one `worker` each talk to
PostgreSQL through a proxy of their own, and so does the bare graph, so each figure says who sent it.

Each exchange is counted on its own, from before its first event to when the bot has nothing left to do; what the
processes send while idle (the job queue's polling and heartbeats) is measured first and taken off, in proportion to
the time each exchange took.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from functools import partial
from typing import Any

from bench import bare
from bench.config import Sizes
from bench.processes import Children
from bench.rig import LAYOUTS, Rig, prepare_database, start_layout
from bench.slack import ECHO_CHANNEL, BenchSandbox, Door, mention, nonce
from bench.wire import CountingProxy

IDLE_WINDOW = 3.0


class Tally:
    """Statements (and round trips) per proxy over intervals, less the idle background."""

    def __init__(self, proxies: dict[str, CountingProxy]) -> None:
        self.proxies = proxies
        self.background: dict[str, float] = {}
        self.samples: dict[str, dict[str, list[float]]] = {}

    def snapshot(self) -> dict[str, tuple[int, int, int]]:
        return {role: proxy.snapshot() for role, proxy in self.proxies.items()}

    async def measure_background(self, seconds: float = IDLE_WINDOW) -> None:
        before, started = self.snapshot(), time.perf_counter()
        await asyncio.sleep(seconds)
        after, elapsed = self.snapshot(), time.perf_counter() - started
        self.background = {role: (after[role][0] - before[role][0]) / elapsed for role in self.proxies}

    async def count(
        self,
        label: str,
        work: Callable[[], Awaitable[Any]],
        settle: Callable[[], Awaitable[None]],
        roles: tuple[str, ...] | None = None,
    ) -> None:
        """Count `work` (and `settle`) on the proxies of `roles` (all by default). What another process sends in the
        meantime (the bot's workers polling while the bare graph runs) is not the exchange's: a statement of a
        periodic poll can land in a short exchange even where the average idle rate is taken off."""
        before, started = self.snapshot(), time.perf_counter()
        await work()
        await settle()
        after, elapsed = self.snapshot(), time.perf_counter() - started
        for role in roles or tuple(self.proxies):
            net = after[role][0] - before[role][0] - self.background.get(role, 0.0) * elapsed
            trips = after[role][1] - before[role][1]
            per = self.samples.setdefault(label, {})
            per.setdefault(role, []).append(max(0.0, net))
            per.setdefault(f"{role}_round_trips", []).append(trips)

    def averages(self) -> dict[str, dict[str, float]]:
        return {
            label: {key: sum(values) / len(values) for key, values in per.items() if values}
            for label, per in self.samples.items()
        }


async def measure_statements(
    children: Children, sandbox: BenchSandbox, database_url: str, sizes: Sizes
) -> dict[str, Any]:
    """Statements per echo turn (a mention, a reply in its thread) and per ask + answer cycle, by process, and the
    bare graph's for the same."""
    await prepare_database(database_url, server=False)
    proxies = {role: CountingProxy(database_url) for role in ("serve", "worker", "bare")}
    for proxy in proxies.values():
        await proxy.start()
    # One worker process: a statement each process sends while idle (another's empty fetch) is not a turn's.
    layout = replace(LAYOUTS["split"], worker_processes=1)
    processes = []
    tally = Tally(proxies)
    try:
        processes = await start_layout(
            children, layout, sandbox, proxies["serve"].url, worker_database_url=proxies["worker"].url
        )
        assert processes[0].url is not None
        async with Door([processes[0].url + "/slack/events"]) as door:
            rig = Rig(layout, sandbox, door, database_url, processes)
            await rig.echo_conversation(2)
            question, word = await rig.ask()
            await rig.answer_in_modal(question, word)
            await rig.wait_drained()
            local = await bare.Local.open(proxies["bare"].url)
            try:
                await bare.conversation(local, 2)
                await bare.ask_cycle(local)
                await tally.measure_background(sizes.idle_window)
                await _count_bot(rig, tally, sizes.count_turns)
                await _count_bare(local, tally, sizes.count_turns)
            finally:
                await local.close()
    finally:
        for child in processes:
            await children.stop_async(child)
        for proxy in proxies.values():
            await proxy.stop()
    return {"per": tally.averages(), "background": tally.background, "turns": sizes.count_turns}


async def _count_bot(rig: Rig, tally: Tally, turns: int) -> None:
    for _ in range(turns):
        first: dict[str, Any] = {}

        async def mentioned(first: dict[str, Any] = first) -> None:
            word = nonce()
            first["ts"] = (await rig.exchange(channel=ECHO_CHANNEL, text=mention(word), expect=f"echo: {word}")).ts

        async def replied(first: dict[str, Any] = first) -> None:
            word = nonce()
            await rig.exchange(channel=ECHO_CHANNEL, text=word, expect=f"echo: {word}", thread_ts=first["ts"])

        await tally.count("bot_mention_turn", mentioned, rig.wait_drained)
        await tally.count("bot_reply_turn", replied, rig.wait_drained)
        asked: dict[str, Any] = {}

        async def ask(asked: dict[str, Any] = asked) -> None:
            asked["question"], asked["word"] = await rig.ask()

        async def answer(asked: dict[str, Any] = asked) -> None:
            await rig.answer_in_modal(asked["question"], asked["word"])

        await tally.count("bot_ask_turn", ask, rig.wait_drained)
        await tally.count("bot_resume", answer, rig.wait_drained)


async def _count_bare(local: bare.Local, tally: Tally, turns: int) -> None:
    async def nothing() -> None:
        return None

    bare_only = ("bare",)
    for _ in range(turns):
        thread, asking = str(uuid.uuid4()), str(uuid.uuid4())
        await tally.count("bare_first_turn", partial(local.turn, "echo", thread, nonce()), nothing, bare_only)
        await tally.count("bare_next_turn", partial(local.turn, "echo", thread, nonce()), nothing, bare_only)
        await tally.count("bare_ask_turn", partial(local.turn, "ask", asking, nonce()), nothing, bare_only)
        await tally.count("bare_resume", partial(local.resume, "ask", asking, nonce()), nothing, bare_only)
