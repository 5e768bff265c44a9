"""What any durable front door costs beside the graph, from a run's own figures: how far the ratio targets can be met
on the machine that ran it, whatever the bot does between its ack and its post.

Durable first means a person's message is recorded (with the job that carries it on) before Slack gets its 200, and
the reply is a Web API call after the run: an ack and a post are part of every turn, and an ack of the answer and a
post of the resumed reply part of every resume. Their own cost in the same run, timed as the turns are (after a
pause: the turns' own acks; `chat.postMessage` from the bot's own client), is a floor under the bot's latency. In the
same way the CPU every process spends on a turn bounds the turns per second on the machine's cores.
"""

from __future__ import annotations

from typing import Any

from bench.report_tables import ACK_TARGETS, table
from bench.stats import ms, number, ratio, times


def _rows(results: dict[str, Any]) -> list[list[str]]:
    client = (results.get("sandbox") or {}).get("client")
    cpus = int((results.get("machine") or {}).get("cpus") or 0)
    rows: list[list[str]] = []
    for name, layout in results["layouts"].items():
        acks, bare = layout.get("acks") or {}, layout["bare"]
        # As the turns are timed (after a pause: `Sizes.think`): their own acks, and a post after the same pause.
        ack, post = layout["turns"].get("acks"), (results.get("sandbox") or {}).get("client_paced")
        if "think" not in bare or ack is None or post is None:
            ack, post = (acks[1]["ack"] if 1 in acks else None), client
        if ack is not None and post is not None:
            floor = ack.p50 + post.p50
            for what, bot_fig, bare_fig in (
                ("turn", layout["turns"]["turn"], bare["turn"]),
                ("resume", layout["resumes"]["resume"], bare["resume"]),
            ):
                budget = 0.5 * bare_fig.p50
                best = times(ratio(bare_fig.p50 + floor, bare_fig.p50))
                rows.append(
                    [
                        f"{what} p50: what the 1.5× target leaves beside the graph",
                        name,
                        f"{ms(budget)} (half the bare {what}'s {ms(bare_fig.p50)})",
                        f"{ms(floor)}: an ack {ms(ack.p50)} + a post {ms(post.p50)}",
                        f"{best} (the bot: {times(ratio(bot_fig.p50, bare_fig.p50))})",
                    ]
                )
        alone = layout.get("acks_alone")
        target = ACK_TARGETS.get(alone["level"]) if alone else None
        if alone and target is not None and alone["level"] in acks:
            level, fig, together = alone["level"], alone["ack"], acks[alone["level"]]["ack"]
            rows.append(
                [
                    f"ack p99 with {level} in flight: the target",
                    name,
                    ms(target),
                    f"{ms(fig.p99)}: the intake alone (its workers stopped meanwhile), p50 {ms(fig.p50)}",
                    f"{'within' if fig.p99 <= target else 'over'} the target with no turn running (the bot, turns"
                    f" running: {ms(together.p99)})",
                ]
            )
        fifty, bare_fifty = layout["throughput"].get(50), bare["throughput"].get(50)
        if cpus and fifty and bare_fifty:
            row = _throughput_row(name, cpus, fifty, bare_fifty, layout["turns"].get("cpu_per_turn", {}))
            if row:
                rows.append(row)
    return rows


def _throughput_row(
    name: str, cpus: int, fifty: dict[str, Any], bare_fifty: dict[str, Any], one_at_a_time: dict[str, float]
) -> list[str] | None:
    """Turns per second at 50: the most the machine's cores allow at what a turn costs. With the CPU of the run at 50
    itself, every process counted (the bot's, PostgreSQL's, the load's and the sandbox's: they share the cores);
    from results without it, the bot's own processes in the turns one at a time."""
    asks = f"{number(0.7 * bare_fifty['rate'])}/s (0.7 × {number(bare_fifty['rate'])}/s)"
    measured = times(ratio(fifty["rate"], bare_fifty["rate"]))
    spent, bare_spent = fifty.get("cpu_per_turn") or {}, bare_fifty.get("cpu_per_turn") or {}
    if "postgres" in spent:
        total = sum(spent.values())
        ceiling = cpus / total
        own = sum(v for role, v in spent.items() if role not in ("bench", "postgres"))
        bare_note = (
            f"; the bare graph's: {ms(sum(bare_spent.values()))} (its process {ms(bare_spent.get('bench', 0.0))},"
            f" PostgreSQL {ms(bare_spent['postgres'])})"
            if "postgres" in bare_spent
            else ""
        )
        floor = (
            f"{number(ceiling)}/s: {cpus} cores ÷ {ms(total)} of CPU per turn at 50, every process (the bot's"
            f" {ms(own)}, PostgreSQL {ms(spent['postgres'])}, the load and the sandbox {ms(spent.get('bench', 0.0))})"
            + bare_note
        )
    else:
        own = sum(v for role, v in one_at_a_time.items() if role not in ("bench", "postgres"))
        if own <= 0:
            return None
        ceiling = cpus / own
        floor = f"{number(ceiling)}/s: {cpus} cores ÷ {ms(own)} of the bot's CPU per turn"
    best = times(ratio(ceiling, bare_fifty["rate"]))
    return ["turns/s at 50: what the 0.7× target asks", name, asks, floor, f"{best} (the bot: {measured})"]


def _minimal_rows(results: dict[str, Any]) -> list[list[str]]:
    """The minimal durable bot's ratios (bench/minimal.py), each against the bare graph measured just before it, and
    the bot's in its production layout (`split`, else the first layout run) for comparison."""
    found = results.get("minimal")
    if not found:
        return []
    name = "split" if "split" in results["layouts"] else next(iter(results["layouts"]), "")
    layout = results["layouts"].get(name) or {}
    bot_turn = ratio(layout["turns"]["turn"].p50, layout["bare"]["turn"].p50) if layout else float("nan")
    level = found["level"]
    bot_fast, bare_fast = (layout.get("throughput") or {}).get(level), (layout.get("bare") or {}).get("throughput", {})
    bot_rate = ratio(bot_fast["rate"], bare_fast[level]["rate"]) if bot_fast and level in bare_fast else float("nan")
    spent = found["cpu_per_turn"]
    cpu = ", ".join(f"{role} {ms(spent[role])}" for role in sorted(spent))
    rounds = found["rounds"]
    each = " / ".join(times(ratio(r["rate"], r["bare_rate"])) for r in rounds)
    return [
        [
            "turn p50 ≤ 1.5× the bare graph",
            "minimal bot",
            f"{ms(1.5 * found['bare_turn'].p50)} (the bare turn beside it: {ms(found['bare_turn'].p50)})",
            f"{ms(found['turn'].p50)}: the minimal bot's turn, {found['turn'].n} one at a time",
            f"{times(ratio(found['turn'].p50, found['bare_turn'].p50))} (the bot in `{name}`: {times(bot_turn)})",
        ],
        [
            f"turns/s at {level} ≥ 0.7× the bare graph",
            "minimal bot",
            f"{number(0.7 * found['bare_rate'])}/s (0.7 × the bare graph's {number(found['bare_rate'])}/s beside it)",
            f"{number(found['rate'])}/s (CPU per turn: {cpu}); in each of {len(rounds)} rounds: {each}",
            f"{times(ratio(found['rate'], found['bare_rate']))}, the median round (the bot in `{name}`:"
            f" {times(bot_rate)})",
        ],
    ]


def floors_table(results: dict[str, Any]) -> str:
    rows = _rows(results) + _minimal_rows(results)
    if not rows:
        return "Not measured in this run (it needs the ack level 1 and the sandbox's own cost)."
    head = ["target", "layout", "the target leaves", "the floor (this run)", "best possible ratio"]
    return (
        table(head, rows)
        + "\n\nThe floor is what any bot that records a message before its ack and posts its reply afterwards pays, "
        "measured in this run: with the graph taking no time, it is most of what the bot adds. Where the "
        "floor is larger than what a target leaves, no work between the ack and the post can meet that target on "
        "this machine. Both are timed as the turns are, after a pause: the ack is the p50 of the turns' own acks,"
        " the post one from the bot's client after the same pause. The ack row's floor is the intake with its "
        "`worker` processes stopped (SIGSTOP) while the requests were sent: nothing ran but the intake, "
        "PostgreSQL and the load, and the turns they started ran afterwards. The throughput ceiling is the "
        "machine's cores divided by the CPU each turn took in the run at 50 conversations, every process counted,"
        " since they all share the cores (from results without that, the bot's own processes one turn at a time):"
        " at what a turn costs, the bot can't go faster on this machine."
        "\n\nThe minimal bot rows run `bench/minimal.py`: the least a durable-first bot does, on the same libraries"
        " (the signature checked, the message recorded and its procrastinate job queued in one statement before the"
        " 200; the job runs the same graph with the same checkpointer and posts the reply once, its intent recorded"
        " before the post and marked sent after, on a kept-alive session), laid out as `split` (a door, two workers"
        " at nice 10, 4 jobs at once each: with a graph that takes no time, more places change nothing). It has"
        " none of what the bot adds: run records, the outbox's leases and reconciler, the conversation lookup,"
        " requests, escalations, streaming, status, logs. It is measured in rounds, each of its"
        " figures right after the bare graph's: its turns against the bare graph's of every round, its throughput"
        " as the round whose ratio is the median. Where the minimal bot misses a target, no bot that hands each"
        " turn to a queue's worker on these libraries meets it on this machine; where it meets one, the gap to the"
        " bot is what the bot's own work costs."
    )
