"""docs/benchmarks.md from a run's results: the machine, how to reproduce, the targets, the tables and the plots.

The section between the HISTORY markers is kept from the file being replaced: a full run adds its headline figures
there, so the file keeps the before and after of each change.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from bench.floors import floors_table
from bench.report_tables import (
    ack_table,
    calls_table,
    eager_table,
    latency_table,
    memory_table,
    peak_table,
    sandbox_table,
    server_table,
    slow_table,
    statements_table,
    targets,
    throughput_table,
)
from bench.rig import LAYOUTS
from bench.stats import ms, ratio, times

HISTORY_START = "<!-- history: kept by `make bench`; a full run adds a row -->"
HISTORY_END = "<!-- /history -->"
CHANGES_START = "<!-- changes: written by hand, kept by `make bench` -->"
CHANGES_END = "<!-- /changes -->"
HISTORY_HEAD = (
    "| date | revision | run | turn p50 ratio | resume p50 ratio | throughput ratio at 50 | ack p99 at 10 / 100 |\n"
    "| --- | --- | --- | --- | --- | --- | --- |"
)


def machine_table(results: dict[str, Any]) -> str:
    m = results["machine"]
    rows = [
        ("CPUs", f"{m['cpus']} × {m['cpu_model']}"),
        ("memory", f"{m['ram_gib']} GiB"),
        ("Python", m["python"]),
        ("PostgreSQL", f"{m['postgres']} ({m['postgres_source']})"),
        ("OS", m["os"]),
        ("load average (1, 5, 15 min) before / after", f"{m['load_before']} / {results.get('load_after')}"),
        ("revision", m["revision"]),
        ("run", f"`{results['sizes']}`, {results['started']} → {results['finished']}"),
    ]
    return "| | |\n| --- | --- |\n" + "\n".join(f"| {a} | {b} |" for a, b in rows)


def _headline(results: dict[str, Any]) -> str:
    name, first = next(iter(results["layouts"].items()), ("", None))
    if not first:
        return ""
    title = LAYOUTS[name].title if name in LAYOUTS else first["title"]
    bare = first["bare"]
    turn = ratio(first["turns"]["turn"].p50, bare["turn"].p50)
    resume = ratio(first["resumes"]["resume"].p50, bare["resume"].p50)
    return (
        f"In this run the bot, laid out as {title}, took {times(turn)} the bare graph's time for a turn "
        f"and {times(resume)} for a resume (p50)."
    )


def history_row(results: dict[str, Any]) -> str:
    layout = results["layouts"].get("serve") or next(iter(results["layouts"].values()))
    bare = layout["bare"]
    turn = ratio(layout["turns"]["turn"].p50, bare["turn"].p50)
    resume = ratio(layout["resumes"]["resume"].p50, bare["resume"].p50)
    fifty = layout["throughput"].get(50)
    through = ratio(fifty["rate"], bare["throughput"][50]["rate"]) if fifty and 50 in bare["throughput"] else math.nan
    acks = layout.get("acks") or {}
    ack = " / ".join(ms(acks[level]["ack"].p99) if level in acks else "–" for level in (10, 100))
    paced = ", paced" if "think" in bare else ""
    if (layout.get("phases") or {}).get("turns", {}).get("aside_seconds"):
        paced += ", interleaved"
    return (
        f"| {results['started'][:10]} | {results['machine']['revision']} | {results['sizes']} "
        f"(`{'`, `'.join(results['layouts'])}`){paced} | {times(turn)} | {times(resume)} | {times(through)} | {ack} |"
    )


def _kept_history(previous: str) -> list[str]:
    if HISTORY_START not in previous or HISTORY_END not in previous:
        return []
    inside = previous.split(HISTORY_START, 1)[1].split(HISTORY_END, 1)[0]
    return [
        line
        for line in inside.strip().splitlines()
        if line.startswith("| ") and not line.startswith(("| date", "| ---"))
    ]


def kept_changes(previous: str) -> str:
    """The before/after notes of each change (issue 11's fixes, …): written by hand between their markers, and
    kept as they are when the report is written again."""
    if CHANGES_START not in previous or CHANGES_END not in previous:
        return ""
    inside = previous.split(CHANGES_START, 1)[1].split(CHANGES_END, 1)[0]
    return f"{CHANGES_START}\n{inside.strip()}\n{CHANGES_END}"


def history(results: dict[str, Any], previous: str) -> str:
    rows = _kept_history(previous)
    row = history_row(results)
    if results["sizes"] == "full" and row not in rows:  # written again from the same results: the same row
        rows.append(row)
    body = "\n".join([HISTORY_HEAD, *rows]) if rows else "No full run recorded yet."
    return f"{HISTORY_START}\n{body}\n{HISTORY_END}"


REPRODUCE = """\
```sh
make bench                  # the full run (about {minutes}); rewrites this file and docs/benchmarks/*.png
make bench ARGS=--quick     # about a minute, the `serve` layout only: for trying a change, not for this file
.venv/bin/python -m bench --help   # sizes, layouts (--layouts serve,split,server), --pending N, --json FILE
```

PostgreSQL is `DATABASE_URL`, else `TEST_DATABASE_URL`, else an embedded one (pgserver) in a temporary folder. The run
makes its own databases there (`lgslack_bench_*`) and drops them, and stops every process it started, also on an
error or Ctrl-C. `make bench` installs the `bench` extra (matplotlib, psutil) besides the test tools (`langgraph dev`).

What runs, for each layout in turn, each on a fresh database:

* the sandbox (`bot.dev.sandbox.SlackSandbox`) in the benchmark's process, serving the Web API and delivering the events
  of the bot's own messages as Slack does; a person's events are POSTed by the benchmark itself, signed with the
  signing secret, so that many can be in flight and each is timed from its first byte to the bot's answer;
* the bot as it is deployed: `python -m bot serve` (and `python -m bot worker`) as processes;
* the graphs of `bench/graphs.py`, which take no time: `echo` answers a message with its text, `ask` interrupts once
  with a question and answers with what it was told; and `slow`, the one that does take time: `echo` after waiting
  0.5 s, as a graph waits for its model (its own phase: how many turns the bot keeps in flight while they wait);
* the bare graph beside it: the same graphs with `ainvoke` (one call per turn) over an `AsyncPostgresSaver` on the
  same PostgreSQL, through a pool made like the bot's (10 connections, statements prepared as the bot's are, without
  the bot's connection check). `ainvoke` runs with LangGraph's default durability; the bot's runs write each step's
  checkpoint before the next (`sync`). It runs interleaved with the bot: each of the bot's conversations timed one at
  a time is followed by the bare graph's of as many turns, each ask cycle by one of its own, and each concurrency
  level by the bare graph's same level just before it, so that both figures of a ratio are taken at the same minute.

A turn is timed from the POST of the person's first event to the moment the sandbox serves the bot's
`chat.postMessage` with the reply; a resume from the POST of the answer (the question's modal submitted, or a reply in
its thread) to the resumed reply; each one timed one at a time follows the same pause on both sides (100 ms of quiet,
`Sizes.think`), as when a person takes a moment to write. Latencies are nearest-rank percentiles of every sample.
The machine is shared with other work and its pace drifts over a run (a third slower at times): figures from a busy
machine are noisy, which is why every ratio compares two figures measured side by side, interleaved as above; the
loop-lag column says how late the benchmark's own event loop ran."""


def write_report(results: dict[str, Any], out: Path, *, plots: bool) -> None:
    pictures = out.parent / "benchmarks"
    made = []
    if plots:
        from bench.plots import write_plots

        made = write_plots(results, pictures)
    previous = out.read_text(encoding="utf-8") if out.exists() else ""
    seconds = results.get("seconds") or 25 * 60
    minutes = f"{seconds / 60:.0f} minutes here" if results["sizes"] == "full" else "25 minutes here"
    slow = slow_table(results)
    sections = [
        "# Benchmarks",
        "How much the bot adds to the graph it fronts, measured by `make bench` (issue 11). "
        + _headline(results)
        + " Everything below is from one run; the targets are issue 11's.",
        "## The machine",
        machine_table(results),
        "## How to reproduce",
        REPRODUCE.format(minutes=minutes),
        "## Targets",
        targets(results),
        "## What a durable front door costs beside the graph",
        floors_table(results),
        "## Turn and resume latency against the bare graph",
        latency_table(results),
        "## Throughput against the bare graph",
        throughput_table(results),
        "## Throughput when the graph waits for its model" if slow else "",
        slow,
        "## Ack latency",
        ack_table(results),
        "## An answer given while the asking job holds the conversation",
        eager_table(results),
        "## Web API calls per turn",
        calls_table(results),
        "## SQL statements per turn",
        statements_table(results),
        "## Memory, and resuming with many questions pending",
        memory_table(results),
        "## In process against a LangGraph Server",
        server_table(results),
        "## Peak message rate in one channel",
        peak_table(results),
        "## The sandbox's own cost",
        sandbox_table(results),
        "## Plots",
        "\n\n".join(f"![{p.stem.replace('-', ' ')}](benchmarks/{p.name})" for p in made)
        if made
        else "No plots in this run (`--no-plots`).",
        "## History",
        "The headline figures of each full run (the serve layout), so that each change's before and after stay here."
        " In a *paced* run both sides' turns and resumes were timed after the same pause; before, the bare graph's"
        " ran back to back (warm) while the bot's followed a pause, so those ratios are higher than a paced run's."
        " In an *interleaved* run the bare graph's figures were taken beside the bot's, and the benchmark's own heap"
        " was frozen before each timed phase (from fd48e12): its full collections had slowed the bare graph, which"
        " runs in the benchmark's process, and stalled the load, so the throughput ratios of earlier runs are"
        " higher than an interleaved run's.",
        history(results, previous),
        kept_changes(previous),
        f"_Written by `python -m bench` on {time.strftime('%Y-%m-%d')} (sizes: `{results['sizes']}`)._",
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n\n".join(s for s in sections if s) + "\n", encoding="utf-8")
