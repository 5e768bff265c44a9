"""`python -m bot <command>`: dev, serve, socket, worker, audit, pending."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import gc
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.config import Settings, load_settings, log_options
from bot.errors import SetupError
from bot.logs import setup_logging

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger("bot")

PLAYGROUND_LOG = "playground.log"
"""The playground's full log, under its data folder (BOT_DATA_DIR, default .data/)."""


class PortInUse(SetupError):
    """The HTTP port is taken (another program, or another bot already running)."""


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _listen(
    settings: Settings, serve: Callable[[], Awaitable[tuple[web.AppRunner, int]]]
) -> tuple[web.AppRunner, int]:
    try:
        return await serve()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(_port_in_use(settings.port)) from None
        raise


def _port_in_use(port: int) -> str:
    return (
        f"port {port} is already in use (another program, or the bot already running): stop it, "
        f"or choose another port with PORT, e.g. PORT={port + 1 if port < 65535 else 3000}"
    )


def _steady_memory() -> None:
    """What the process built to start (its modules, the app, the graphs) lives as long as it does: frozen out of
    the garbage collector's way, so a full collection scans only what serving made since, not the whole heap. A
    full collection of that heap (about 148,000 objects) took 16–90 ms here, a pause for every request in flight
    (issue 11)."""
    gc.collect()
    gc.freeze()


async def run_serve(environ: Mapping[str, str]) -> None:
    from bot.runtime import build_bot, serve_http

    settings = load_settings(environ, "serve")
    bot = await build_bot(settings)
    _steady_memory()
    try:
        bot.start_workers()
        await bot.open_claims()
        runner, port = await _listen(settings, lambda: serve_http(bot, host=settings.host, port=settings.port))
        log.info("listening on %s:%d: POST /slack/events, GET /healthz", settings.host, port)
        await _until_stopped()
        await runner.cleanup()
    finally:
        await bot.close()


async def run_socket(environ: Mapping[str, str]) -> None:
    from bot.runtime import build_bot, serve_http, socket_mode_handler

    settings = load_settings(environ, "socket")
    bot = await build_bot(settings)
    _steady_memory()
    try:
        bot.start_workers()
        await bot.open_claims()
        runner, port = await _listen(
            settings, lambda: serve_http(bot, host=settings.host, port=settings.port, events=False)
        )
        log.info("listening on %s:%d: GET /healthz", settings.host, port)
        handler = socket_mode_handler(bot)

        async def connect() -> None:
            await handler.connect_async()  # retries until it connects
            log.info("connected over Socket Mode")

        connecting = asyncio.create_task(connect())
        try:
            await _until_stopped()
        finally:
            connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await connecting
            await handler.close_async()
            await runner.cleanup()
    finally:
        await bot.close()


def _yield_cpu(nice: int) -> None:
    """A `worker` process runs below the intake's CPU priority (BOT_WORKER_NICE): on a machine both share, a burst
    of runs never makes Slack's requests wait for their ack. Where the OS refuses, it runs as it is."""
    if nice <= 0 or not hasattr(os, "nice"):
        return
    try:
        os.nice(nice)
    except OSError as exc:
        log.warning("could not lower the worker's CPU priority (BOT_WORKER_NICE=%s): %s", nice, exc)


async def run_worker(environ: Mapping[str, str]) -> None:
    from bot.runtime import build_bot

    settings = load_settings(environ, "worker")
    _yield_cpu(settings.worker_nice)
    bot = await build_bot(settings)
    _steady_memory()
    try:
        bot.start_workers(max(settings.workers, 1))
        log.info("worker running")
        await _until_stopped()
    finally:
        await bot.close()


async def run_dev(environ: Mapping[str, str]) -> None:
    try:
        from bot.dev.playground import run_playground
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("bot.dev"):
            raise
        raise SetupError("the playground (bot/dev/) is not part of this install: run it from a checkout") from None

    try:
        await run_playground(environ)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(_port_in_use(load_settings(environ, "dev").port)) from None
        raise


async def run_audit(environ: Mapping[str, str], argv: Sequence[str] = ()) -> None:
    from bot.audit import run_audit as audit

    await audit(argv, environ)


async def run_pending(environ: Mapping[str, str], argv: Sequence[str] = ()) -> None:
    from bot.pending import run_pending as pending

    await pending(argv, environ)


@dataclass(frozen=True)
class Command:
    run: Callable[..., Coroutine[Any, Any, None]]
    summary: str
    options: str
    tool: bool = False

    @property
    def label(self) -> str:
        return "options" if self.tool else "settings"


COMMANDS: dict[str, Command] = {
    "dev": Command(
        run_dev,
        "the playground: a local Slack page, the bot and an embedded PostgreSQL, no accounts or keys",
        "PORT (default 3000), BOT_DATA_DIR, OPENAI_API_KEY/OPENAI_BASE_URL for a real model",
    ),
    "serve": Command(
        run_serve,
        "the bot for Slack over HTTP: POST /slack/events and GET /healthz, with its job workers",
        "SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET, DATABASE_URL, HOST, PORT, BOT_WORKERS…",
    ),
    "socket": Command(
        run_socket,
        "the bot for Slack over Socket Mode (no public URL), GET /healthz on PORT",
        "SLACK_BOT_TOKEN, SLACK_APP_TOKEN, DATABASE_URL, HOST, PORT…",
    ),
    "worker": Command(
        run_worker,
        "run queued jobs only, beside `serve` replicas started with BOT_WORKERS=0",
        "SLACK_BOT_TOKEN, DATABASE_URL, BOT_WORKERS (jobs at once, default 32)",
    ),
    "audit": Command(
        run_audit,
        "print or export the decision audit",
        "--since, --until, --conversation, --format table|csv|json, --output FILE",
        tool=True,
    ),
    "pending": Command(
        run_pending, "list open requests with their age, route and link", "--format table|json", tool=True
    ),
}
ENVIRONMENT = "Settings are environment variables: see the README's table (LOG_LEVEL, LOG_FORMAT=json for logs)."


def build_parser() -> argparse.ArgumentParser:
    width = max(len(name) for name in COMMANDS)
    listing = "\n".join(
        f"  {name.ljust(width)}  {command.summary}\n  {''.ljust(width)}  {command.label}: {command.options}"
        for name, command in COMMANDS.items()
    )
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        usage="python -m bot <command> [options]",
        description="The Slack front door for LangGraph agents.",
        epilog=f"commands:\n{listing}\n\n{ENVIRONMENT}\n`python -m bot <command> --help` describes one command.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="<command>", help=argparse.SUPPRESS)
    for name, command in COMMANDS.items():
        commands.add_parser(
            name,
            add_help=not command.tool,  # audit and pending parse (and describe) their own options
            prog=f"python -m bot {name}",
            description=f"{command.summary[0].upper()}{command.summary[1:]}.",
            epilog=f"{command.label}: {command.options}\n{ENVIRONMENT}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    return parser


def _log_file(command: str, env: Mapping[str, str]) -> Path | None:
    if command != "dev":
        return None
    return load_settings(env, "dev").data_dir / PLAYGROUND_LOG


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        parser.print_help(sys.stderr)
        return 2
    args, rest = parser.parse_known_args(argv)
    command = COMMANDS[args.command]
    if rest and not command.tool:
        parser.error(f"{args.command} takes no arguments (settings are environment variables): {' '.join(rest)}")
    env = dict(os.environ if environ is None else environ)
    # SIGTERM while starting stops like Ctrl-C (what was started, the embedded PostgreSQL too, is stopped).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        level, fmt = log_options(env)
        setup_logging(level=level, fmt=fmt, file=_log_file(args.command, env))
        if command.tool:
            asyncio.run(command.run(env, rest))
        else:
            asyncio.run(command.run(env))
    except SetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        if "bot.db" in sys.modules:  # only a command that opened the database can have started one
            sys.modules["bot.db"].stop_embedded()
    return 0


def _command(name: str) -> int:
    return main([name, *sys.argv[1:]])


def serve() -> int:
    """The `lgslack-serve` script: `python -m bot serve`."""
    return _command("serve")


def worker() -> int:
    """The `lgslack-worker` script: `python -m bot worker`."""
    return _command("worker")


def socket() -> int:
    """The `lgslack-socket` script: `python -m bot socket`."""
    return _command("socket")


def dev() -> int:
    """The `lgslack-dev` script: `python -m bot dev` (needs the `dev` extra)."""
    return _command("dev")
