"""What is recorded around each phase of a run: wall time, CPU of every process, the Web API calls the bot made, the
events the sandbox delivered on its own, and how late this process's event loop ran (a busy load generator would
make every figure look worse than the bot is)."""

from __future__ import annotations

import asyncio
import gc
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from bench.rig import Rig
from bench.stats import Summary


@dataclass
class Phase:
    name: str
    seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    deliveries: int = 0
    lag: Summary = field(default_factory=lambda: Summary.of([]))
    peak_channel_rate: int = 0
    started_at: float = 0.0
    ended_at: float = 0.0
    aside_cpu: dict[str, float] = field(default_factory=dict)
    aside_seconds: float = 0.0

    def per(self, count: int) -> dict[str, float]:
        return {method: n / count for method, n in sorted(self.calls.items())} if count else {}

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "seconds": self.seconds,
            "cpu": self.cpu,
            "calls": dict(self.calls),
            "deliveries": self.deliveries,
            "lag": self.lag,
            "peak_channel_rate": self.peak_channel_rate,
            "aside_seconds": self.aside_seconds,
        }


class LoopLag:
    """Samples how late a 5 ms sleep wakes up, while running."""

    def __init__(self, every: float = 0.005) -> None:
        self.every = every
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.every)
            self.samples.append(max(0.0, loop.time() - before - self.every))

    def __enter__(self) -> LoopLag:
        self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._task is not None:
            self._task.cancel()


def peak_rate(times_by_channel: dict[str, list[float]], window: float = 1.0) -> int:
    """The most messages posted to one channel within any `window` seconds."""
    best = 0
    for times in times_by_channel.values():
        ordered = sorted(times)
        start = 0
        for end, at in enumerate(ordered):
            while at - ordered[start] > window:
                start += 1
            best = max(best, end - start + 1)
    return best


def posts_by_channel(calls: Iterable[Any]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = defaultdict(list)
    for call in calls:
        if call.method == "chat.postMessage" and call.response.get("ok"):
            out[str(call.params.get("channel"))].append(call.at)
    return out


def settle_heap() -> None:
    """Freeze what this process holds so far (the sandbox's workspace, its logs, every result) out of the garbage
    collector's way, before something is timed: a full collection of it stalled the benchmark's event loop, and with
    it the load and the sandbox both sides are timed through, for up to 0.67 s in the phases late in a run (after
    10,000 questions), which then showed in the bot's figures (an ack p99 of 282 ms at 100 in flight) or the bare
    graph's."""
    gc.collect()
    gc.freeze()


class Meter:
    """Phases of one layout's run, in order."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.phases: dict[str, Phase] = {}

    @asynccontextmanager
    async def phase(self, name: str) -> AsyncIterator[Phase]:
        rig = self.rig
        phase = Phase(name)
        settle_heap()
        calls_before, deliveries_before = len(rig.sandbox.call_log), len(rig.sandbox.deliverer.log)
        cpu_before = rig.cpu()
        phase.started_at = time.time()
        started = time.perf_counter()
        with LoopLag() as lag:
            yield phase
        phase.seconds = time.perf_counter() - started - phase.aside_seconds
        phase.ended_at = time.time()
        cpu_after = rig.cpu()
        phase.cpu = {
            role: cpu_after[role] - cpu_before.get(role, 0.0) - phase.aside_cpu.get(role, 0.0) for role in cpu_after
        }
        calls = rig.sandbox.call_log[calls_before:]
        phase.calls = Counter(call.method for call in calls)
        phase.deliveries = len(rig.sandbox.deliverer.log) - deliveries_before
        phase.lag = Summary.of(lag.samples)
        phase.peak_channel_rate = peak_rate(posts_by_channel(calls))
        self.phases[name] = phase

    @asynccontextmanager
    async def aside(self, phase: Phase) -> AsyncIterator[None]:
        """Work done within `phase` that is not the bot's (the bare graph's turns, interleaved with the bot's): its
        time and every process's CPU are left out of the phase's."""
        cpu_before, started = self.rig.cpu(), time.perf_counter()
        yield
        phase.aside_seconds += time.perf_counter() - started
        cpu_after = self.rig.cpu()
        for role, spent in cpu_after.items():
            phase.aside_cpu[role] = phase.aside_cpu.get(role, 0.0) + spent - cpu_before.get(role, 0.0)
