"""The benchmark's smallest path (`python -m bench --smoke`), so that `make bench` keeps working: the real bot as a
process against the sandbox, the bare graph beside it, the statement count, and the report. No timing is asserted."""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import psycopg
import pytest

from bench.config import SMOKE
from bench.graphs import MODEL_WAIT
from bench.postgres import PREFIX
from bench.report import write_report
from bench.run import run


async def test_the_benchmark_runs_a_couple_of_turns_and_leaves_nothing_behind(
    pg_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DATABASE_URL", pg_server)
    results = await run(SMOKE, logs=tmp_path / "logs")

    layout = results["layouts"]["serve"]
    turns = layout["turns"]
    assert turns["count"] == SMOKE.turns == 2
    assert turns["turn"].n == 2 and all(sample > 0 for sample in turns["turn_samples"])
    # An echo turn shows exactly one message: the reply.
    assert turns["calls_per_turn"]["chat.postMessage"] == 1.0
    assert layout["bare"]["turn"].n == 2 and layout["bare"]["resume"].n == 1
    # The bare graph's turns and cycles ran interleaved with the bot's, inside their phases but set aside from them.
    assert layout["phases"]["turns"]["aside_seconds"] > 0 and layout["phases"]["resumes"]["aside_seconds"] > 0
    # Both sides are timed after the same pause; the bare graph back to back as well, and the post after a pause.
    assert layout["bare"]["think"] == SMOKE.think > 0
    assert layout["bare"]["turn_back_to_back"].n == 2 and layout["bare"]["resume_back_to_back"].n == 1
    assert results["sandbox"]["client_paced"].n >= 1
    assert layout["resumes"]["resume"].n == 1 and layout["resumes"]["ask"].n == 1
    # An ask cycle shows the question and the resumed reply.
    assert layout["resumes"]["calls_per_cycle"]["chat.postMessage"] == 2.0
    [(level, total)] = SMOKE.ack_levels.items()
    acks = layout["acks"][level]
    assert acks["requests"] == total and acks["failed"] == 0 and acks["messages"] == total // 2
    assert set(layout["throughput"]) == set(SMOKE.throughput_levels)
    # The graph that waits as for its model, at once on both sides: every turn answered.
    [slow] = SMOKE.slow_levels
    assert layout["slow"][slow]["latency"].n == slow * SMOKE.throughput_turns
    assert layout["bare"]["slow"][slow]["latency"].n == slow * SMOKE.throughput_turns
    assert layout["slow"][slow]["latency"].p50 >= MODEL_WAIT <= layout["bare"]["slow"][slow]["latency"].p50
    # What each turn costs every process at once, PostgreSQL's (on this machine) included, on both sides (a couple
    # of turns may take less than the clock's tick: present, not positive).
    for side in (layout["throughput"], layout["bare"]["throughput"]):
        spent = side[SMOKE.throughput_levels[0]]["cpu_per_turn"]
        assert {"bench", "postgres"} <= set(spent) and min(spent.values()) >= 0

    # The minimal durable bot ran beside the bare graph: its turns one at a time (one message each: the reply) and
    # its conversations at once, with what they cost its door and its workers.
    least = results["minimal"]
    assert least["turn"].n == SMOKE.turns and least["bare_turn"].n == SMOKE.turns
    assert least["calls_per_turn"]["chat.postMessage"] == 1.0
    assert least["level"] == SMOKE.throughput_levels[-1] and least["rate"] > 0 and least["bare_rate"] > 0
    assert {"door", "worker", "postgres"} <= set(least["cpu_per_turn"])

    per = results["statements"]["per"]
    # Each process is counted on its own proxy: the bot's turns send nothing through the bare graph's (its pool is idle
    # then), and the bare graph's turns are counted on its proxy alone.
    assert per["bare_first_turn"]["bare"] > 0 and set(per["bare_first_turn"]) == {"bare", "bare_round_trips"}
    # One at a time, the intake runs each turn itself (BOT_INTAKE_TURNS): its statements are the intake's.
    assert per["bot_mention_turn"]["serve"] > 0 and per["bot_mention_turn"]["worker"] >= 0
    assert per["bot_mention_turn"]["bare"] == 0

    out = tmp_path / "benchmarks.md"
    write_report(results, out, plots=False)
    text = out.read_text()
    for heading in (
        "## The machine",
        "## How to reproduce",
        "## Targets",
        "## SQL statements per turn",
        "## Throughput when the graph waits for its model",
    ):
        assert heading in text
    assert "| turn p50 ≤ 1.5× the bare graph | serve |" in text
    assert "| turn p50 ≤ 1.5× the bare graph | minimal bot |" in text
    assert "| the bare graph's turn, back to back (no pause) |" in text
    assert "No full run recorded yet." in text  # a smoke run adds nothing to the history

    # Nothing left behind: no database of ours, no process of ours.
    with psycopg.connect(pg_server, autocommit=True) as conn:
        left = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (PREFIX + "%",)).fetchall()
    assert [name for (name,) in left if name.startswith(f"{PREFIX}{os.getpid()}_")] == []
    assert [p.cmdline() for p in psutil.Process().children(recursive=True)] == []
