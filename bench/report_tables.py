"""The report's tables, each from a run's results (durations in seconds, Summaries as in bench/stats.py)."""

from __future__ import annotations

import math
from typing import Any

from bench.stats import Summary, ms, number, ratio, times

MB = 1024 * 1024

ACK_TARGETS = {10: 0.020, 100: 0.150}
"""Issue 11's ack p99 targets (seconds), by requests in flight."""


def table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _local(results: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(name, layout) for name, layout in results["layouts"].items() if name != "server"]


def _mark(ok: bool | None) -> str:
    return "–" if ok is None else ("**met**" if ok else "**not met**")


def targets(results: dict[str, Any]) -> str:
    rows: list[list[str]] = []
    for name, layout in _local(results):
        bare = layout["bare"]
        turn = ratio(layout["turns"]["turn"].p50, bare["turn"].p50)
        rows.append(
            ["turn p50 ≤ 1.5× the bare graph", name, times(turn), _mark(None if math.isnan(turn) else turn <= 1.5)]
        )
        resume = ratio(layout["resumes"]["resume"].p50, bare["resume"].p50)
        ok = None if math.isnan(resume) else resume <= 1.5
        rows.append(["resume p50 ≤ 1.5× the bare graph", name, times(resume), _mark(ok)])
        fifty, bare_fifty = layout["throughput"].get(50), bare["throughput"].get(50)
        through = ratio(fifty["rate"], bare_fifty["rate"]) if fifty and bare_fifty else math.nan
        ok = None if math.isnan(through) else through >= 0.7
        rows.append(["throughput at 50 conversations ≥ 0.7× the bare graph", name, times(through), _mark(ok)])
        acks = layout.get("acks") or {}
        for level, limit in ACK_TARGETS.items():
            if level in acks:
                p99 = acks[level]["ack"].p99
                rows.append(
                    [f"ack p99 ≤ {limit * 1000:.0f} ms with {level} in flight", name, ms(p99), _mark(p99 <= limit)]
                )
        if 500 in acks:
            found = acks[500]
            bad = found["over_3s"] + found["failed"]
            text = f"max {ms(found['ack'].max)}, {bad:,} of {found['requests']:,} late or failed"
            rows.append(["every ack inside 3 s with 500 in flight", name, text, _mark(bad == 0)])
        after = layout["resumes"].get("eager_after_release")
        if after is not None and after.n:
            rows.append(
                [
                    "an answer given while the lock is held resumes ≤ 50 ms after its release (p99)",
                    name,
                    f"p50 {ms(after.p50)}, p99 {ms(after.p99)}",
                    _mark(after.p99 <= 0.050),
                ]
            )
        calls = layout["turns"]["calls_per_turn"]
        extra = sum(calls.values()) - calls.get("chat.postMessage", 0.0)
        rows.append(
            ["≤ 1 Web API call per turn beyond the messages shown", name, number(extra, 2), _mark(extra <= 1.0)]
        )
        pending = layout.get("pending")
        if pending:
            delta = sum(pending["loaded_rss"].values()) - sum(pending["idle_rss"].values())
            rows.append(
                [
                    f"memory with {pending['pending']:,} pending within 20 MB of idle",
                    name,
                    f"{delta / MB:+.1f} MB",
                    _mark(delta <= 20 * MB),
                ]
            )
    note = (
        "\n\nThe ack targets are for the documented production layout, `split`: the intake-only `serve`"
        " (`BOT_WORKERS=0`) with separate `worker` processes (the Procfile's `web` and `worker`), two of them here as"
        " compose.yaml runs them (one per core); `serve` runs both in one process, as the playground and a small"
        " install do."
    )
    return table(["target", "layout", "measured", ""], rows) + note


def _row(label: str, bot: Summary, bare: Summary | None) -> list[str]:
    base = [label, ms(bot.p50), ms(bot.p99), ms(bot.max)]
    if bare is None:
        return [*base, "–", "–", "–", "–"]
    return [*base, ms(bare.p50), ms(bare.p99), ms(bare.max), times(ratio(bot.p50, bare.p50))]


def _bare(bare: Summary) -> list[str]:
    return [ms(bare.p50), ms(bare.p99), ms(bare.max), "–"]


def latency_table(results: dict[str, Any]) -> str:
    out = []
    for name, layout in results["layouts"].items():
        bare, turns, resumes = layout["bare"], layout["turns"], layout["resumes"]
        rows = [
            _row(f"turn ({turns['count']} echo turns, one at a time)", turns["turn"], bare["turn"]),
            _row("· the first of a conversation (a mention: 2 events)", turns["first"], None),
            _row("· a reply in its thread", turns["reply"], None),
            _row("ask: message → question shown", resumes["ask"], bare["ask"]),
            _row("resume: the Answer modal submitted → resumed reply", resumes["resume"], bare["resume"]),
            _row("resume: a reply in the thread → resumed reply", resumes["by_reply"], bare["resume"]),
            _row("· the Answer button → its modal shown", resumes["modal_opened"], None),
            _row("ack of the turns' events", turns["acks"], None),
        ]
        if "turn_back_to_back" in bare:
            rows += [
                ["the bare graph's turn, back to back (no pause)", "–", "–", "–", *_bare(bare["turn_back_to_back"])],
                ["the bare graph's resume, back to back", "–", "–", "–", *_bare(bare["resume_back_to_back"])],
            ]
        head = ["figure", "bot p50", "p99", "max", "bare p50", "p99", "max", "ratio (p50)"]
        cpu = " · ".join(f"`{role}` {ms(seconds)}" for role, seconds in sorted(turns["cpu_per_turn"].items()))
        out.append(
            f"**{name}**: {layout['layout']}\n\n" + table(head, rows) + f"\n\nCPU per echo turn, by process: {cpu}."
        )
    return "\n\n".join(out) + (
        "\n\nTurns one at a time: conversations of a mention and replies in its thread, each message sent once the "
        "bot had nothing left to do and then a pause (`Sizes.think`, 100 ms), as when a person takes a moment to "
        "write (an answer sent at once is the next section but one). The bare graph's turns and resumes are timed "
        "after the same pause, interleaved with the bot's (a conversation of the bot's, then one of the bare graph's; "
        "an ask cycle of each): this machine answers more slowly after a pause (a round trip to PostgreSQL takes "
        "about 0.07 ms back to back and 0.5 ms after 100 ms idle), so a bare graph timed back to back (the last "
        "rows) would be measured warm against a bot measured after a pause. The bare graph's resume "
        "is `ainvoke(Command(resume=...))` on the interrupted thread; the bot's is answered once the asking job has "
        "let go of the conversation, in the question's modal (the Answer button, the modal shown, the pause, then the "
        "modal submitted: timed from the submission) or by a reply in the thread (which is a turn of its own that "
        "then queues the resume)."
    )


THROUGHPUT_HEAD = ["at once", "layout", "bot turns/s", "bare turns/s", "ratio", "bot p50 / p99", "bare p50 / p99"]


def _throughput_rows(name: str, bot: dict[Any, Any], bare: dict[Any, Any]) -> list[list[str]]:
    rows = []
    for level, found in sorted(bot.items(), key=lambda item: int(item[0])):
        other = bare.get(level)
        rows.append(
            [
                str(level),
                name,
                number(found["rate"]),
                number(other["rate"]) if other else "–",
                times(ratio(found["rate"], other["rate"])) if other else "–",
                f"{ms(found['latency'].p50)} / {ms(found['latency'].p99)}",
                f"{ms(other['latency'].p50)} / {ms(other['latency'].p99)}" if other else "–",
            ]
        )
    return rows


def throughput_table(results: dict[str, Any]) -> str:
    rows = []
    for name, layout in results["layouts"].items():
        rows += _throughput_rows(name, layout["throughput"], layout["bare"]["throughput"])
    return table(THROUGHPUT_HEAD, rows) + (
        "\n\nThat many people at once, each mentioning the bot (a new conversation, two events) as soon as it has "
        "answered their last mention; the bare graph runs as many clients, each `ainvoke` on a new thread after the "
        "last, just before the bot's run at the same level. The `server` rows compare with `runs.wait` on the same "
        "LangGraph Server."
    )


def slow_table(results: dict[str, Any]) -> str:
    """The `slow` graph's throughput (each turn waits as for its model), bot against bare, by layout."""
    rows = []
    for name, layout in _local(results):
        if "slow" in layout:
            rows += _throughput_rows(f"{name}: {layout['layout']}", layout["slow"], layout["bare"].get("slow", {}))
    if not rows:
        return ""
    from bench.graphs import MODEL_WAIT

    return table(THROUGHPUT_HEAD, rows) + (
        f"\n\nThe same as above with the `slow` graph (bench/graphs.py), whose turn waits {MODEL_WAIT:g} s as a graph"
        " waits for its model: the bot's figure is how many turns it keeps in flight while they wait, each one a"
        " place of a job worker (`BOT_WORKERS` a process). The bare graph's clients all wait at once, so its rate is"
        " the conversations at once over the wait."
    )


def ack_table(results: dict[str, Any]) -> str:
    rows = []
    for name, layout in _local(results):
        for level, found in sorted((layout.get("acks") or {}).items(), key=lambda item: int(item[0])):
            ack = found["ack"]
            rows.append(
                [
                    str(level),
                    name,
                    f"{found['requests']:,}",
                    ms(ack.p50),
                    ms(ack.p99),
                    ms(ack.max),
                    f"{found['failed']} / {found['over_3s']}",
                    ms(found["serve_cpu_per_request"]),
                    f"{found['all_replied_seconds']:.1f} s",
                ]
            )
    head = [
        "in flight",
        "layout",
        "requests",
        "p50",
        "p99",
        "max",
        "failed / > 3 s",
        "`serve` CPU per request",
        "all replied after",
    ]
    return table(head, rows) + (
        "\n\nClosed loop: that many clients, each POSTing the events of new mentions (an `app_mention` and a `message` "
        "event each, as Slack sends for a mention) and its next request as soon as the last is answered. Every mention "
        "starts a turn, so the job workers are busy meanwhile; the last column is when every echo had been posted. "
        "`serve`'s CPU includes the turns it runs itself in the `serve` layout; in `split` it is the intake alone."
    )


def eager_table(results: dict[str, Any]) -> str:
    rows = []
    for name, layout in _local(results):
        r = layout["resumes"]
        if "eager" not in r:
            continue
        for label, key in (
            ("answer → resumed reply", "eager"),
            ("answer → the asking job let go (lock held)", "eager_held"),
            ("lock released → resumed reply", "eager_after_release"),
        ):
            s = r[key]
            rows.append([label, name, ms(s.p50), ms(s.p99), ms(s.max), str(s.n)])
    if not rows:
        return "Not measured in this run."
    return table(["figure", "layout", "p50", "p99", "max", "n"], rows) + (
        "\n\nThe answer, a reply in the question's thread, is sent the moment the question is posted, while the job "
        "that asked still runs (it sets the thread's status after posting). The release is when that job is seen done "
        "in `procrastinate_jobs` (polled every 5 ms, so up to 5 ms late); from there the answer's own job runs, then "
        "the resume it queued."
    )


def calls_table(results: dict[str, Any]) -> str:
    out = []
    for name, layout in results["layouts"].items():
        per_turn, per_cycle = layout["turns"]["calls_per_turn"], layout["resumes"]["calls_per_cycle"]
        methods = sorted(set(per_turn) | set(per_cycle))
        rows = [[f"`{m}`", number(per_turn.get(m, 0.0), 2), number(per_cycle.get(m, 0.0), 2)] for m in methods]
        rows.append(["**all**", number(sum(per_turn.values()), 2), number(sum(per_cycle.values()), 2)])
        events = layout["turns"]["deliveries_per_turn"]
        out.append(
            f"**{name}**\n\n"
            + table(["method", "per echo turn", "per ask + answer cycle"], rows)
            + f"\n\nEvents the sandbox delivered by itself (the bot's own messages) per echo turn: {number(events, 2)}."
        )
    return "\n\n".join(out) + (
        "\n\nFrom the sandbox's call log over the turns (and cycles) one at a time above. An echo turn shows one "
        "message (the reply); an ask cycle shows the question, the resumed reply and the question marked answered."
    )


def statements_table(results: dict[str, Any]) -> str:
    found = results.get("statements")
    if not found:
        return "Not measured in this run."
    per = found["per"]
    rows = []
    for label, bot_key, bare_key in (
        ("echo turn: a mention (2 events)", "bot_mention_turn", "bare_first_turn"),
        ("echo turn: a reply in its thread", "bot_reply_turn", "bare_next_turn"),
        ("ask turn (interrupts)", "bot_ask_turn", "bare_ask_turn"),
        ("resume (the Answer button, its modal submitted)", "bot_resume", "bare_resume"),
    ):
        bot, bare = per.get(bot_key, {}), per.get(bare_key, {})
        total = bot.get("serve", 0.0) + bot.get("worker", 0.0)
        rows.append(
            [
                label,
                number(bot.get("serve", math.nan)),
                number(bot.get("worker", math.nan)),
                number(total),
                number(bare.get("bare", math.nan)),
                times(ratio(total, bare.get("bare", math.nan))),
            ]
        )
    background = found["background"]
    return table(["exchange", "intake (`serve`)", "`worker`", "bot", "bare graph", "ratio"], rows) + (
        f"\n\nCounted on the wire ({found['turns']} of each, averaged): each process reaches PostgreSQL through a "
        "proxy of the benchmark's that counts the Query and Execute messages clients send (bench/wire.py), so every "
        "statement counts — the pool's connection checks, the job queue's, the checkpointer's — and says which process "
        "sent it. pg_stat_statements "
        + (
            "is loaded on this server but not used, so that the count is per process."
            if results["machine"]["pg_stat_statements"]
            else "is not loaded on this server."
        )
        + " Measured with the `split` layout and one `worker` process (intake-only `serve` + a `worker`); one exchange"
        " at a time, so the intake runs each one's job itself (`BOT_INTAKE_TURNS`) and the worker's column is near"
        " nought."
        + f" What the processes send while idle (the worker: {number(background.get('worker', 0.0))}/s, polling and"
        " heartbeats) is taken off in proportion to each exchange's duration, which runs until the bot has nothing left"
        " to do."
    )


def memory_table(results: dict[str, Any]) -> str:
    rows = []
    concurrency = 0
    for name, layout in _local(results):
        pending = layout.get("pending")
        if not pending:
            continue
        concurrency = pending["concurrency"]
        for role in sorted(pending["idle_rss"]):
            idle, loaded = pending["idle_rss"][role], pending["loaded_rss"].get(role, 0)
            rows.append(
                [name, f"`{role}`", f"{idle / MB:.1f} MB", f"{loaded / MB:.1f} MB", f"{(loaded - idle) / MB:+.1f} MB"]
            )
        base = layout["resumes"]["resume"]
        rows.append(
            [
                name,
                f"resume p50 / p99 with {pending['pending']:,} pending",
                f"{ms(base.p50)} / {ms(base.p99)} (none pending)",
                f"{ms(pending['resume'].p50)} / {ms(pending['resume'].p99)}",
                times(ratio(pending["resume"].p50, base.p50)),
            ]
        )
    if not rows:
        return "Not measured in this run."
    return table(["layout", "process", "idle (warm)", "with the questions pending", "change"], rows) + (
        "\n\nResident memory (RSS) of each bot process once the phases above were done and the bot had nothing "
        f"left to do, and again once the questions (asked {concurrency} at a time, left unanswered) were all shown and "
        "the bot had nothing left to do. The resumes with them pending are answered in the question's modal, one at a "
        "time, as in the resume figure they are compared with."
    )


def server_table(results: dict[str, Any]) -> str:
    server = results["layouts"].get("server")
    local = results["layouts"].get("serve") or next((found for _, found in _local(results)), None)
    if not server or not local:
        return "Not measured in this run (`--layouts` without `server`)."
    rows = [
        [
            "turn p50",
            ms(local["turns"]["turn"].p50),
            ms(server["turns"]["turn"].p50),
            ms(local["bare"]["turn"].p50),
            ms(server["bare"]["turn"].p50),
        ],
        [
            "resume p50",
            ms(local["resumes"]["resume"].p50),
            ms(server["resumes"]["resume"].p50),
            ms(local["bare"]["resume"].p50),
            ms(server["bare"]["resume"].p50),
        ],
    ]
    for level in sorted(server["throughput"], key=int):
        here, there = local["throughput"].get(level), server["throughput"][level]
        bare_here, bare_there = local["bare"]["throughput"].get(level), server["bare"]["throughput"].get(level)
        rows.append(
            [
                f"turns/s, {level} at once",
                number(here["rate"]) if here else "–",
                number(there["rate"]),
                number(bare_here["rate"]) if bare_here else "–",
                number(bare_there["rate"]) if bare_there else "–",
            ]
        )
    return table(["figure", "bot, in process", "bot, on the server", "bare `ainvoke`", "bare `runs.wait`"], rows) + (
        "\n\nThe same graphs served by `langgraph dev`, with `--n-jobs-per-worker 10`; the bot's own records stay in "
        "PostgreSQL. `langgraph dev` is the in-memory development server: its queue picks runs up by polling, so each "
        "run waits about a second before it starts (`run_queue_ms` in its log) and its checkpoints are not in "
        "PostgreSQL. Its figures are those of `langgraph dev`, not of a deployed LangGraph Server; what the bot adds "
        "on a server is the difference between the bot's column and `runs.wait`'s."
    )


def peak_table(results: dict[str, Any]) -> str:
    rows = []
    for name, layout in results["layouts"].items():
        for key, phase in layout.get("phases", {}).items():
            if key.startswith(("throughput", "acks")):
                rows.append([name, key.replace("-", " at "), str(phase["peak_channel_rate"])])
    return table(["layout", "phase", "most messages posted to one channel in 1 s"], rows) + (
        "\n\nEvery conversation here is a thread of one channel. Slack allows about one message a second per "
        "channel (`chat.postMessage`, with short bursts); the sandbox does not limit it, so this is what the bot would "
        "ask of Slack."
    )


def sandbox_table(results: dict[str, Any]) -> str:
    s = results["sandbox"]
    rows = [
        [
            "one `chat.postMessage`, as slack_sdk sees it ("
            + ("its connection kept alive, as the bot's" if s.get("kept_alive") else "a new connection per call")
            + ")",
            ms(s["client"].p50),
            ms(s["client"].p99),
        ],
        ["inside the sandbox's handler, alone", ms(s["handler"].p50), ms(s["handler"].p99)],
    ]
    during = s.get("handler_during_run")
    if during is not None:
        rows.append(["inside the sandbox's handler, during the run", ms(during.p50), ms(during.p99)])
    text = table(["Web API call", "p50", "p99"], rows)
    first = next(iter(results["layouts"].values()), None)
    if first is not None:
        calls = sum(first["turns"]["calls_per_turn"].values())
        served = calls * (during or s["handler"]).p50
        seen = calls * s["client"].p50
        turn = first["turns"]["turn"].p50
        text += (
            f"\n\nAn echo turn makes {number(calls)} Web API calls: at the p50s above, about {ms(served)} inside the "
            f"sandbox and {ms(seen)} as the client sees them, {ratio(seen, turn):.0%} of the turn's p50 ({ms(turn)}). "
        )
        text += (
            "The sandbox is not what dominates the figures, so the benchmark uses it rather than a stand-in."
            if ratio(seen, turn) < 0.25
            else "That is a large share of the turn: compare with a minimal Web API stand-in before reading much "
            "into the turn figures."
        )
    cpu_rows = []
    for name, layout in results["layouts"].items():
        for key, phase in layout.get("phases", {}).items():
            cpu = phase["cpu"]
            total = sum(cpu.values()) or math.nan
            cpu_rows.append(
                [
                    name,
                    key,
                    f"{phase['seconds']:.1f} s",
                    " · ".join(f"{role} {seconds:.1f} s" for role, seconds in sorted(cpu.items())),
                    f"{cpu.get('bench', 0.0) / total:.0%}" if total == total else "–",
                    ms(phase["lag"].p99),
                ]
            )
    return (
        text
        + "\n\nCPU by process in each phase (`bench` is the benchmark's own process: the sandbox and the load), and "
        "how late its event loop woke (p99 of a 5 ms sleep's delay):\n\n"
        + table(["layout", "phase", "wall", "CPU", "bench's share", "loop lag p99"], cpu_rows)
    )
