"""`python -m bot socket` as a real process against the sandbox's Socket Mode."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

import aiohttp

from tests.support.database import free_port
from tests.support.harness import Harness
from tests.support.processes import BotProcess, start_bot


async def healthz(url: str) -> tuple[int, Any]:
    """`GET /healthz`: the status and the JSON body."""
    async with aiohttp.ClientSession() as session, session.get(url + "/healthz") as response:
        return response.status, await response.json()


async def wait_healthy(bot: BotProcess, timeout: float = 60.0) -> None:  # noqa: ASYNC109
    """Until the process answers `/healthz` with 200 (fails if it exits first)."""

    async def until() -> None:
        while True:
            if bot.process.poll() is not None:
                raise RuntimeError(f"the bot exited with {bot.process.returncode}")
            try:
                if (await healthz(bot.url))[0] == 200:
                    return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)

    await asyncio.wait_for(until(), timeout)


async def start_socket_bot(harness: Harness, graph: str, **extra: str) -> BotProcess:
    """Start `python -m bot socket` with the sandbox's app-level token; return once it is healthy and connected."""
    sockets = harness.sandbox.socket_mode
    bot = await start_bot(harness, graph, command="socket", SLACK_APP_TOKEN=sockets.app_token, **extra)
    try:
        await wait_healthy(bot)
        await sockets.wait_connected(timeout=60)
    except BaseException:
        bot.kill()
        raise
    return bot


async def stop(bot: BotProcess, timeout: float = 30.0) -> int:  # noqa: ASYNC109
    """SIGTERM, and the exit code, waiting without blocking the event loop: the process closes its websocket on
    the way out, and the sandbox (in this loop) must answer the close."""
    if bot.process.poll() is None:
        bot.process.send_signal(signal.SIGTERM)
    return await asyncio.to_thread(bot.process.wait, timeout)


async def spawn_socket_bot(harness: Harness, graph: str, **extra: str) -> asyncio.subprocess.Process:
    """`python -m bot socket` with its log (stderr) piped, for reading what it says."""
    env = {
        **os.environ,
        **harness.environ(graph),
        "PORT": str(free_port()),
        "HOST": "127.0.0.1",
        "SLACK_APP_TOKEN": harness.sandbox.socket_mode.app_token,
        **extra,
    }
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "socket", env=env, stderr=asyncio.subprocess.PIPE
    )


async def read_until(stream: asyncio.StreamReader, text: str, timeout: float = 60.0) -> list[str]:  # noqa: ASYNC109
    """The lines read up to and including the first that contains `text`."""

    async def until() -> list[str]:
        lines: list[str] = []
        while True:
            raw = await stream.readline()
            if not raw:
                raise EOFError(f"the process ended before saying {text!r}: {lines}")
            lines.append(raw.decode(errors="replace").rstrip("\n"))
            if text in lines[-1]:
                return lines

    return await asyncio.wait_for(until(), timeout)
