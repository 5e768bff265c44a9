"""`python -m bot` as people run it, as real processes: the usage and help, a busy port, Ctrl-C and a settings
error stopping the embedded PostgreSQL (its data kept), a short first screen for `dev`, `socket` without Slack,
and a route with no channel."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from bot.cli import COMMANDS
from tests.support.database import free_port

REPO = Path(__file__).resolve().parents[1]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any of the bot's settings, plus `extra`."""
    prefixes = ("OPENAI_", "BOT_", "SLACK_", "LANGGRAPH_", "LANGSMITH_", "LOG_", "APPROVERS", "ESCALATION_")
    names = ("PORT", "HOST", "DATABASE_URL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes) and k not in names}
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env


def run(*args: str, env: Mapping[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=REPO,
        env=dict(env or clean_env()),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def data() -> Iterator[Path]:
    """A data folder the embedded PostgreSQL can use (pytest's tmp_path is private to its user, and as root
    pgserver runs PostgreSQL as another user)."""
    folder = Path(tempfile.mkdtemp(prefix="bot-cli-"))
    folder.chmod(0o755)
    try:
        yield folder / "data"
    finally:
        stop_leftovers(folder / "data" / "postgres")
        shutil.rmtree(folder, ignore_errors=True)


def postgres_processes(pgdata: Path) -> list[int]:
    """Processes whose command line names this PostgreSQL data folder."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "postgres" in cmdline and str(pgdata) in cmdline:
            found.append(int(entry.name))
    return found


def wait_until_gone(pgdata: Path, timeout: float = 30.0) -> list[int]:
    """Wait (bounded) until no PostgreSQL of `pgdata` runs; return those still running."""
    deadline = time.monotonic() + timeout
    while (left := postgres_processes(pgdata)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def stop_leftovers(pgdata: Path) -> None:
    for pid in postgres_processes(pgdata):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# usage and help


def test_no_arguments_print_the_commands_and_exit_2() -> None:
    done = run()
    assert done.returncode == 2
    assert done.stdout == ""
    assert "usage: python -m bot <command>" in done.stderr
    for name, command in COMMANDS.items():
        assert f"  {name}" in done.stderr and command.summary in done.stderr
    assert "rest" not in done.stderr.split() and "REMAINDER" not in done.stderr


def test_help_describes_each_command_in_one_line_with_its_options() -> None:
    done = run("--help")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for name, command in COMMANDS.items():
        (line,) = [line for line in lines if line.startswith(f"  {name} ")]
        assert line.split(None, 1)[1] == command.summary
        following = lines[lines.index(line) + 1].strip()
        assert following == f"{command.label}: {command.options}"
    assert "LOG_FORMAT" in done.stdout


def test_a_command_s_help_describes_it_and_starts_nothing() -> None:
    for name in ("serve", "socket", "worker", "dev"):
        started = time.monotonic()
        done = run(name, "--help", timeout=30)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"usage: python -m bot {name}")
        assert COMMANDS[name].options in done.stdout
        assert "listening" not in done.stdout + done.stderr and "error" not in done.stderr
        assert time.monotonic() - started < 20
    done = run("audit", "--help")
    assert done.returncode == 0 and "--since" in done.stdout


def test_an_unknown_command_or_argument_is_refused_with_the_usage() -> None:
    done = run("serv")
    assert done.returncode == 2 and "invalid choice: 'serv'" in done.stderr
    done = run("serve", "--port", "3000")
    assert done.returncode == 2 and "serve takes no arguments" in done.stderr


def test_a_bad_log_setting_is_one_line() -> None:
    done = run("serve", env=clean_env(LOG_FORMAT="yaml"))
    assert done.returncode == 2
    assert done.stderr.strip() == "error: LOG_FORMAT is 'yaml': use text (the default) or json (one object per line)"


# a busy port


def test_a_busy_port_exits_2_with_one_line_naming_the_port_and_PORT(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run("dev", env=clean_env(PORT=str(port), BOT_DATA_DIR=str(tmp_path / "data")))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: port {port} is already in use (another program, or the bot already running): stop it, "
        f"or choose another port with PORT, e.g. PORT={port + 1}"
    ], done.stderr
    assert postgres_processes(tmp_path / "data" / "postgres") == []


def test_serve_on_a_busy_port_says_the_same_and_stops_its_database(tmp_path: Path, database_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = clean_env(PORT=str(port), DATABASE_URL=database_url, SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s")
        done = run("serve", env=env)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: port {port} is already in use") and "PORT=" in line, done.stderr


# Ctrl-C and the embedded PostgreSQL


async def start_dev(env: Mapping[str, str]) -> tuple[asyncio.subprocess.Process, list[str]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "dev",
        cwd=REPO,
        env=dict(env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    printed: list[str] = []
    try:
        async with asyncio.timeout(120):
            while "Ctrl-C stops everything" not in "".join(printed):
                line = await process.stdout.readline()
                assert line, "`python -m bot dev` ended early:\n" + "".join(printed)
                printed.append(line.decode())
    except BaseException:
        process.kill()
        await process.wait()
        raise
    return process, printed


async def ctrl_c(process: asyncio.subprocess.Process) -> tuple[int, str]:
    assert process.stdout is not None
    process.send_signal(signal.SIGINT)
    async with asyncio.timeout(60):
        rest = (await process.stdout.read()).decode(errors="replace")
        return await process.wait(), rest


async def test_dev_shows_a_short_first_screen_and_ctrl_c_stops_its_postgresql_keeping_the_data(data: Path) -> None:
    pgdata = data / "postgres"
    port = free_port()
    env = clean_env(PORT=str(port), BOT_DATA_DIR=str(data))
    try:
        process, printed = await start_dev(env)
        screen = "".join(printed)
        # The first screen: the URL and what to do, nothing from PostgreSQL, warnings or library INFO lines.
        assert len(printed) <= 15, screen  # it fits a first screen
        assert f"Slack playground: http://127.0.0.1:{port}" in screen and "mention @agent" in screen
        assert str(data / "playground.log") in screen
        for noise in ("pgserver", "initdb", "INFO", "Warning", "WARNING", "Traceback"):
            assert noise not in screen, screen
        assert postgres_processes(pgdata), "the embedded PostgreSQL should be running"

        code, rest = await ctrl_c(process)
        assert code == 0, rest
        assert "Traceback" not in rest
        assert wait_until_gone(pgdata) == [], "Ctrl-C left the embedded PostgreSQL running"
        assert (pgdata / "PG_VERSION").exists(), "the data must be kept between runs"
        assert "embedded PostgreSQL" in (data / "playground.log").read_text()

        # The next run finds the same database (no new initdb) and stops it again.
        made = (pgdata / "PG_VERSION").stat().st_mtime_ns
        process, _ = await start_dev(env)
        code, rest = await ctrl_c(process)
        assert code == 0, rest
        assert wait_until_gone(pgdata) == []
        assert (pgdata / "PG_VERSION").stat().st_mtime_ns == made
    finally:
        stop_leftovers(pgdata)


def test_serve_stopping_on_a_settings_error_stops_the_postgresql_it_started(data: Path) -> None:
    env = clean_env(
        PORT=str(free_port()),
        BOT_DATA_DIR=str(data),
        SLACK_BOT_TOKEN="xoxb-1",
        SLACK_SIGNING_SECRET="s",
        BOT_GRAPH="graphs.no_such_module:graph",
    )
    try:
        done = run("serve", env=env, timeout=120)
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip().splitlines()[-1].startswith("error: BOT_GRAPH"), done.stderr
        assert (data / "postgres" / "PG_VERSION").exists(), "the database should have been started first"
        assert wait_until_gone(data / "postgres") == []
    finally:
        stop_leftovers(data / "postgres")


# socket without Slack, a route with no channel


async def test_socket_without_slack_or_signing_secret_says_one_line_per_attempt(database_url: str) -> None:
    env = clean_env(
        PORT=str(free_port()),
        DATABASE_URL=database_url,
        SLACK_BOT_TOKEN="xoxb-1",
        SLACK_APP_TOKEN="xapp-1",
        SLACK_API_URL=f"http://127.0.0.1:{free_port()}/api/",
        BOT_WORKERS="0",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "socket", cwd=REPO, env=env, stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    said: list[str] = []
    try:
        async with asyncio.timeout(60):
            while sum("can't connect" in line for line in said) < 2:
                line = await process.stderr.readline()
                assert line, "socket ended early:\n" + "".join(said)
                said.append(line.decode())
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        rest = (await process.stderr.read()).decode(errors="replace")
        code = await process.wait()
    lines = [line.rstrip("\n") for line in [*said, *rest.splitlines()] if line.strip()]
    assert code == 0, "\n".join(lines)
    attempts = [line for line in lines if "can't connect" in line]
    assert len(attempts) >= 2 and all(line.endswith("retrying in 10 s") for line in attempts)
    assert not [line for line in lines if "Traceback" in line or line.startswith(" ")], "\n".join(lines)
    assert not [line for line in lines if "token` will be unused" in line]


def test_a_route_with_no_channel_is_named_as_such(tmp_path: Path) -> None:
    config = tmp_path / "bot.toml"
    config.write_text('[[routes]]\nname = "refunds"\ntools = ["refund"]\n')
    env = clean_env(SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s", BOT_CONFIG=str(config))
    done = run("serve", env=env)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        'error: BOT_CONFIG has routes[0] with no channel: add channel = "C0123ABCD", the id of the channel it sends to'
    )
    config.write_text('[[routes]]\nchannel = "#refunds"\n')
    done = run("serve", env=env)
    assert done.stderr.strip() == (
        "error: BOT_CONFIG has a bad routes[0].channel ('#refunds'): write a channel id like C0123ABCD, not #name"
    )
