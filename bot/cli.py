"""`python -m bot serve | socket | worker | dev`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence

from bot.config import load_settings
from bot.errors import SetupError

log = logging.getLogger("bot")


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def run_serve(environ: Mapping[str, str]) -> None:
    from bot.runtime import build_bot, serve_http

    settings = load_settings(environ, "serve")
    bot = await build_bot(settings)
    try:
        bot.start_workers()
        runner, port = await serve_http(bot, host=environ.get("HOST", "0.0.0.0"), port=settings.port)
        log.info("listening on port %d: POST /slack/events, GET /healthz", port)
        await _until_stopped()
        await runner.cleanup()
    finally:
        await bot.close()


async def run_socket(environ: Mapping[str, str]) -> None:
    from bot.runtime import build_bot, serve_http, socket_mode_handler

    settings = load_settings(environ, "socket")
    bot = await build_bot(settings)
    try:
        bot.start_workers()
        runner, port = await serve_http(bot, host=environ.get("HOST", "0.0.0.0"), port=settings.port, events=False)
        log.info("listening on port %d: GET /healthz", port)
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


async def run_worker(environ: Mapping[str, str]) -> None:
    from bot.runtime import build_bot

    settings = load_settings(environ, "worker")
    bot = await build_bot(settings)
    try:
        bot.start_workers(max(settings.workers, 1))
        log.info("worker running")
        await _until_stopped()
    finally:
        await bot.close()


async def run_dev(environ: Mapping[str, str]) -> None:
    from bot.playground import run_playground

    await run_playground(environ)


async def run_audit(environ: Mapping[str, str], argv: Sequence[str] = ()) -> None:
    from bot.audit import run_audit as audit

    await audit(argv, environ)


async def run_pending(environ: Mapping[str, str], argv: Sequence[str] = ()) -> None:
    from bot.pending import run_pending as pending

    await pending(argv, environ)


COMMANDS = {
    "serve": run_serve,
    "socket": run_socket,
    "worker": run_worker,
    "dev": run_dev,
    "audit": run_audit,
    "pending": run_pending,
}
TOOLS = {"audit": run_audit, "pending": run_pending}


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description="The Slack front door for LangGraph agents.")
    parser.add_argument("command", choices=sorted(COMMANDS), help="what to run")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    env = dict(os.environ if environ is None else environ)
    logging.basicConfig(
        level=env.get("LOG_LEVEL", "INFO").upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("httpx", "aiohttp.access", "procrastinate"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        if args.command in TOOLS:
            asyncio.run(TOOLS[args.command](env, args.rest))
        else:
            asyncio.run(COMMANDS[args.command](env))
    except SetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
