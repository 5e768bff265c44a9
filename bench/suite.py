"""The measurements, each against a running layout (`Rig`) and the bare graph beside it. Every function returns plain
data (durations in seconds) for the report."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench import bare
from bench.config import Sizes
from bench.meter import Meter, settle_heap
from bench.rig import Exchange, Rig
from bench.slack import ASK_CHANNEL, ECHO_CHANNEL, Seen, mention, nonce
from bench.stats import Summary


def log(message: str) -> None:
    print(f"bench {time.strftime('%H:%M:%S')} {message}", flush=True)


async def warm_up(rig: Rig, sizes: Sizes) -> None:
    """Imports, caches and connections warmed in every process, then nothing left to do."""
    await rig.echo_conversation(max(1, sizes.warmup))
    question, word = await rig.ask()
    await rig.answer_in_modal(question, word)
    await rig.wait_drained()


@dataclass
class Beside:
    """The bare graph, measured interleaved with the bot: each conversation, ask cycle and concurrency level of the
    bot's right beside the bare graph's same one, so that both sides see the machine at the same pace (a shared
    machine's pace drifts over a run, by a third at times). `found` holds the bare graph's figures, as the report
    reads them; with `cpu` (the CPU seconds so far by process), what each of its turns at once took of it."""

    runs: bare.Runs
    cpu: Callable[[], dict[str, float]] | None = None
    found: dict[str, Any] = field(default_factory=dict)

    async def concurrent(self, level: int, turns: int, graph: str) -> dict[str, Any]:
        settle_heap()
        before = self.cpu() if self.cpu else {}
        rate, latencies = await bare.concurrent(self.runs, level, turns, graph=graph)
        out: dict[str, Any] = {"rate": rate, "latency": Summary.of(latencies)}
        if self.cpu:
            after, n = self.cpu(), max(1, len(latencies))
            out["cpu_per_turn"] = {role: (after[role] - before.get(role, 0.0)) / n for role in after}
        return out


async def measure_bare(runs: bare.Runs, sizes: Sizes) -> dict[str, Any]:
    """The bare graph warmed up, and its turns and ask cycles back to back (no pause: warm). Its figures after a pause,
    and at once, are measured beside the bot's (`Beside`)."""
    settle_heap()
    await bare.conversation(runs, max(1, sizes.warmup))
    await bare.ask_cycle(runs)
    hot_turns = await bare.conversations(runs, sizes.turns, sizes.turns_per_conversation)
    hot_resumed = [(await bare.ask_cycle(runs))[1] for _ in range(sizes.resumes)]
    return {
        "think": sizes.think,
        "turn_back_to_back": Summary.of(hot_turns),
        "resume_back_to_back": Summary.of(hot_resumed),
    }


async def measure_turns(rig: Rig, meter: Meter, sizes: Sizes, beside: Beside | None = None) -> dict[str, Any]:
    """Echo turns one at a time: event POST → the echo at chat.postMessage; and what each turn cost. With `beside`,
    each conversation is followed by the bare graph's of as many turns, after the same pauses (its time and CPU are
    not the phase's)."""
    first: list[Exchange] = []
    later: list[Exchange] = []
    bare_turns: list[float] = []
    async with meter.phase("turns") as phase:
        while len(first) + len(later) < sizes.turns:
            count = min(sizes.turns_per_conversation, sizes.turns - len(first) - len(later))
            done = await rig.echo_conversation(count)
            first.append(done[0])
            later += done[1:]
            if beside is not None:
                await rig.wait_drained()
                async with meter.aside(phase):
                    bare_turns += await bare.conversation(beside.runs, count, think=sizes.think)
        await rig.wait_drained()
    if beside is not None:
        beside.found.update(turn=Summary.of(bare_turns), turn_samples=bare_turns)
    every = first + later
    return {
        "turn": Summary.of(e.latency for e in every),
        "turn_samples": [e.latency for e in every],
        "first": Summary.of(e.latency for e in first),
        "reply": Summary.of(e.latency for e in later),
        "acks": Summary.of(a.elapsed for e in every for a in e.acks),
        "count": len(every),
        "mentions": len(first),
        "calls_per_turn": phase.per(len(every)),
        "deliveries_per_turn": phase.deliveries / max(1, len(every)),
        "cpu_per_turn": {role: s / max(1, len(every)) for role, s in phase.cpu.items()},
    }


async def measure_resumes(rig: Rig, meter: Meter, sizes: Sizes, beside: Beside | None = None) -> dict[str, Any]:
    """Ask cycles one at a time: the question (a turn that interrupts), then, once the asking job has let go of the
    conversation, the answer: by the question's Answer button and its modal (submission → resumed reply), and, for
    fewer cycles, by a reply in the thread (reply → resumed reply). With `beside`, each cycle answered in the modal
    is followed by one of the bare graph's, after the same pauses."""
    asked, resumed, opened, by_reply = [], [], [], []
    bare_asked, bare_resumed = [], []
    async with meter.phase("resumes") as phase, rig.db() as conn:
        for _ in range(sizes.resumes):
            await rig.pause()
            question, word = await rig.ask()
            await rig.wait_unlocked(conn, await rig.conversation_id(conn, ASK_CHANNEL, question.ts), every=0.005)
            shown, answer = await rig.answer_in_modal(question, word, pause=True)
            asked.append(question.latency)
            opened.append(shown)
            resumed.append(answer.latency)
            if beside is not None:
                await rig.wait_drained()
                async with meter.aside(phase):
                    cycle = await bare.ask_cycle(beside.runs, think=sizes.think)
                bare_asked.append(cycle[0])
                bare_resumed.append(cycle[1])
        await rig.wait_drained()
    if beside is not None:
        beside.found.update(ask=Summary.of(bare_asked), resume=Summary.of(bare_resumed))
    async with meter.phase("resumes-by-reply"), rig.db() as conn:
        for _ in range(sizes.reply_resumes):
            question, word = await rig.ask()
            await rig.wait_unlocked(conn, await rig.conversation_id(conn, ASK_CHANNEL, question.ts), every=0.005)
            await rig.pause()
            by_reply.append((await rig.answer(question, word)).latency)
        await rig.wait_drained()
    out: dict[str, Any] = {
        "ask": Summary.of(asked),
        "resume": Summary.of(resumed),
        "resume_samples": resumed,
        "modal_opened": Summary.of(opened),
        "by_reply": Summary.of(by_reply),
        "calls_per_cycle": phase.per(sizes.resumes),
        "cpu_per_cycle": {role: s / max(1, sizes.resumes) for role, s in phase.cpu.items()},
    }
    out.update(await measure_eager(rig, meter, sizes))
    return out


async def measure_eager(rig: Rig, meter: Meter, sizes: Sizes) -> dict[str, Any]:
    """Answers given the moment the question shows, while the asking job still holds the conversation's lock: the
    answer → resumed reply, and how long after the lock was released (polled every 5 ms) the reply came."""
    if not sizes.eager_resumes:
        return {}
    whole, after_release, held = [], [], []
    async with meter.phase("eager"), rig.db() as conn:
        for _ in range(sizes.eager_resumes):
            question, word = await rig.ask()
            answering = asyncio.create_task(rig.answer(question, word))
            lock = await rig.conversation_id(conn, ASK_CHANNEL, question.ts)
            job = await rig.running_job(conn, lock)
            released = await rig.wait_unlocked(conn, lock, job_id=job, every=0.005) if job else None
            answer = await answering
            whole.append(answer.latency)
            if released is not None:
                after_release.append(max(0.0, answer.started + answer.latency - released))
                held.append(max(0.0, released - answer.started))
        await rig.wait_drained()
    return {
        "eager": Summary.of(whole),
        "eager_after_release": Summary.of(after_release),
        "eager_held": Summary.of(held),
        "eager_seen_held": len(after_release),
    }


async def measure_throughput(
    rig: Rig,
    meter: Meter,
    sizes: Sizes,
    levels: tuple[int, ...],
    *,
    channel: str = ECHO_CHANNEL,
    phase_name: str = "throughput",
    beside: Beside | None = None,
    graph: str = "echo",
) -> dict[int, Any]:
    """Conversations at once: that many people, each mentioning the bot (a new conversation) in `channel` as soon as
    the bot has answered their last mention; turns per second. (Replies in one thread would wait for the thread's
    previous job: see `measure_eager`.) With `beside`, each level is measured right after the bare graph's (`graph`,
    as many clients at once), which goes to `beside.found[phase_name]`."""
    out: dict[int, Any] = {}
    for level in levels:
        if beside is not None:
            await rig.wait_drained()
            beside.found.setdefault(phase_name, {})[level] = await beside.concurrent(
                level, sizes.throughput_turns, graph
            )
        users = itertools.cycle(rig.users)

        async def person(user: str) -> list[Exchange]:
            return [await rig.mention(user, channel) for _ in range(sizes.throughput_turns)]

        async with meter.phase(f"{phase_name}-{level}") as phase:
            started = time.perf_counter()
            done = await asyncio.gather(*(person(next(users)) for _ in range(level)))
            elapsed = time.perf_counter() - started
            await rig.wait_drained()
        latencies = [e.latency for turns in done for e in turns]
        out[level] = {
            "rate": len(latencies) / elapsed,
            "latency": Summary.of(latencies),
            "peak_channel_rate": phase.peak_channel_rate,
            # Until the bot had nothing left to do: every process's share of each turn.
            "cpu_per_turn": {role: s / max(1, len(latencies)) for role, s in phase.cpu.items()},
        }
        rate, p50 = out[level]["rate"], out[level]["latency"].p50
        log(f"  {level} at once ({phase_name}): {rate:.1f} turns/s, p50 {p50 * 1000:.1f} ms")
    return out


async def _ack_level(rig: Rig, meter: Meter, level: int, total: int, *, alone: bool = False) -> dict[str, Any]:
    acks: list[Any] = []
    replies: list[asyncio.Future[Seen]] = []
    sent = 0

    async def client(user: str) -> None:
        nonlocal sent
        while sent < total:
            word = nonce()
            _, envelopes = rig.sandbox.say(user, ECHO_CHANNEL, mention(word))
            sent += len(envelopes)
            replies.append(rig.sandbox.expect(f"echo: {word}"))
            for envelope in envelopes:
                acks.append(await rig.door.post(envelope))

    users = itertools.cycle(rig.users)
    async with meter.phase(f"acks-{level}" + ("-alone" if alone else "")) as phase:
        started = time.perf_counter()
        async with _workers_stopped(rig) if alone else contextlib.nullcontext():
            await asyncio.gather(*(client(next(users)) for _ in range(level)))
        sending = time.perf_counter() - started
        await asyncio.wait_for(asyncio.gather(*replies), timeout=900)
        replied = time.perf_counter() - started
        await rig.wait_drained()
    elapsed = [a.elapsed for a in acks]
    return {
        "ack": Summary.of(elapsed),
        "samples": elapsed,
        "requests": len(acks),
        "failed": sum(1 for a in acks if not a.ok),
        "over_3s": sum(1 for a in acks if a.elapsed > 3.0),
        "sending_seconds": sending,
        "messages": len(replies),
        "all_replied_seconds": replied,
        "serve_cpu_per_request": phase.cpu.get("serve", 0.0) / max(1, len(acks)),
        "peak_channel_rate": phase.peak_channel_rate,
    }


async def measure_acks(rig: Rig, meter: Meter, sizes: Sizes) -> dict[int, Any]:
    """Closed-loop load: `level` clients, each POSTing the events of new mentions (an app_mention and a message
    event each, one after the other) as soon as its last POST is answered; then every echo is waited for."""
    out: dict[int, Any] = {}
    for level, total in sizes.ack_levels.items():
        out[level] = found = await _ack_level(rig, meter, level, total)
        summary = found["ack"]
        log(f"  {level} in flight: ack p50 {summary.p50 * 1000:.1f} ms, p99 {summary.p99 * 1000:.1f} ms")
    return out


@contextlib.asynccontextmanager
async def _workers_stopped(rig: Rig) -> Any:
    """The layout's `worker` processes stopped (SIGSTOP) meanwhile, and continued (SIGCONT) after, whatever happens:
    they run the turns queued meanwhile then. Seconds, well inside the heartbeat's BOT_STALLED_AFTER."""
    workers = [child for child in rig.processes if child.role == "worker"]
    for child in workers:
        os.kill(child.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for child in workers:
            os.kill(child.pid, signal.SIGCONT)


async def measure_intake_alone(rig: Rig, meter: Meter, sizes: Sizes, level: int = 100) -> dict[str, Any] | None:
    """Acks at `level` in flight with the `worker` processes stopped: what the intake does with nothing else running
    beside it and PostgreSQL, the floor under the ack target of the layouts that have workers of their own."""
    if level not in sizes.ack_levels or not any(child.role == "worker" for child in rig.processes):
        return None
    found = await _ack_level(rig, meter, level, sizes.ack_levels[level], alone=True)
    summary = found["ack"]
    log(f"  {level} in flight, workers stopped: ack p50 {summary.p50 * 1000:.1f} ms, p99 {summary.p99 * 1000:.1f} ms")
    return {"level": level, **found}


async def measure_pending(rig: Rig, meter: Meter, sizes: Sizes) -> dict[str, Any]:
    """Memory of the bot's processes idle and with `sizes.pending` questions waiting, and resume latency then."""
    await rig.wait_drained()
    idle = rig.rss()
    made = itertools.count()
    users = itertools.cycle(rig.users)

    async def asker(user: str) -> None:
        while next(made) < sizes.pending:
            await rig.ask(user)

    async with meter.phase("pending"):
        started = time.perf_counter()
        await asyncio.gather(*(asker(next(users)) for _ in range(min(sizes.pending_concurrency, sizes.pending))))
        making = time.perf_counter() - started
        await rig.wait_drained()
    loaded = rig.rss()
    resumed = []
    async with meter.phase("pending-resumes"), rig.db() as conn:
        for _ in range(sizes.pending_resumes):
            await rig.pause()
            question, word = await rig.ask()
            await rig.wait_unlocked(conn, await rig.conversation_id(conn, ASK_CHANNEL, question.ts), every=0.005)
            resumed.append((await rig.answer_in_modal(question, word, pause=True))[1].latency)
        await rig.wait_drained()
    async with rig.db() as conn:
        cur = await conn.execute("SELECT count(*) FROM lgslack_interrupts WHERE state = 'pending'")
        row = await cur.fetchone()
    return {
        "pending": int(row[0]) if row else 0,
        "concurrency": min(sizes.pending_concurrency, sizes.pending),
        "idle_rss": idle,
        "loaded_rss": loaded,
        "making_seconds": making,
        "resume": Summary.of(resumed),
    }
