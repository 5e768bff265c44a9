"""Bots as real processes (`python -m bot serve` / `worker`), for tests that kill them."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import aiohttp

from tests.support.database import free_port
from tests.support.harness import BOT_TOKEN, SIGNING_SECRET, Harness


@dataclass
class BotProcess:
    process: subprocess.Popen[bytes]
    url: str

    @property
    def events_url(self) -> str:
        return self.url + "/slack/events"

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to tidy up."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, and the exit code; fails if it does not stop within `timeout`."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


async def start_bot(
    harness: Harness, graph: str = "graphs.feedback_workflow:graph", *, command: str = "serve", **extra: str
) -> BotProcess:
    """Start `python -m bot serve` against the harness's sandbox and database; wait until /healthz says 200."""
    port = free_port()
    env = {
        **os.environ,
        **harness.environ(graph),
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        **extra,
    }
    process = subprocess.Popen([sys.executable, "-m", "bot", command], env=env)  # noqa: ASYNC220
    url = f"http://127.0.0.1:{port}"
    if command != "serve":
        return BotProcess(process, url)
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            try:
                async with session.get(url + "/healthz") as response:
                    if response.status == 200:
                        return BotProcess(process, url)
            except aiohttp.ClientError:
                pass
            if process.poll() is not None:
                raise RuntimeError(f"the bot exited with {process.returncode}")
            await asyncio.sleep(0.1)
    process.kill()
    raise TimeoutError("the bot did not become healthy in 60 s")


class Bots:
    """The bot processes of one test; whatever still runs at the end is killed."""

    def __init__(self, harness: Harness, sandbox: Any) -> None:
        self.harness = harness
        self.sandbox = sandbox
        self.started: list[BotProcess] = []

    async def serve(self, graph: str, **env: str) -> BotProcess:
        """A healthy `python -m bot serve` process, which the sandbox then delivers to."""
        bot = await start_bot(self.harness, graph, **env)
        self.started.append(bot)
        self.sandbox.request_url = bot.events_url
        return bot

    async def worker(self, graph: str, **env: str) -> BotProcess:
        """A `python -m bot worker` process."""
        bot = await start_bot(self.harness, graph, command="worker", **env)
        self.started.append(bot)
        return bot

    @staticmethod
    async def stop(bot: BotProcess) -> None:
        """SIGTERM; the survivor must exit 0 within 25 s. (In a thread: the sandbox shares this event loop.)"""
        assert await asyncio.to_thread(bot.terminate, 25.0) == 0

    def kill_all(self) -> None:
        for bot in self.started:
            bot.kill()
