"""The processes the benchmark starts — the bot (`python -m bot serve` / `worker`) and `langgraph dev` — and their
memory and CPU. Every one is registered in `Children` and ended by `Children.stop_all`, whatever happened; on Linux
each also gets SIGTERM from the kernel if the benchmark itself dies (PR_SET_PDEATHSIG)."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import aiohttp
import psutil

REPO = Path(__file__).resolve().parents[1]
LANGGRAPH = Path(sys.executable).parent / "langgraph"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn asking Linux to send the child SIGTERM when we die (looked up before the fork)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def preexec() -> None:
        prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    return preexec


@dataclass
class Child:
    """One process we started: its role ("serve", "worker", "langgraph"), its log, its URL if it serves HTTP."""

    role: str
    process: subprocess.Popen[bytes]
    log_path: Path
    url: str | None = None
    group: bool = False
    _log: IO[bytes] | None = None
    _ps: psutil.Process | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def ps(self) -> psutil.Process:
        if self._ps is None:
            self._ps = psutil.Process(self.process.pid)
        return self._ps

    def rss(self) -> int:
        """Resident memory in bytes (0 once it has exited)."""
        try:
            return int(self.ps().memory_info().rss)
        except psutil.Error:
            return 0

    def cpu(self) -> float:
        """CPU seconds used so far, user + system."""
        try:
            times = self.ps().cpu_times()
        except psutil.Error:
            return 0.0
        return float(times.user + times.system)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Children:
    """Starts and always stops the benchmark's processes."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.running: list[Child] = []
        self._started = itertools.count()

    def start(
        self,
        role: str,
        argv: list[str],
        env: Mapping[str, str],
        *,
        url: str | None = None,
        group: bool = False,
        cwd: Path = REPO,
    ) -> Child:
        """Start `argv` with `env` in `cwd` (in its own process group when `group`), logging to a file of its own."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{next(self._started):02d}-{role}.log"
        log = log_path.open("wb")
        process = subprocess.Popen(
            argv,
            env=dict(env),
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent(),
            start_new_session=group,
        )
        child = Child(role=role, process=process, log_path=log_path, url=url, group=group, _log=log)
        self.running.append(child)
        return child

    def bot(self, command: str, env: Mapping[str, str]) -> Child:
        """`python -m bot <command>`; `serve` listens on a free port of its own (its URL is set)."""
        env = {**env, "PYTHONPATH": str(REPO)}
        url = None
        if command == "serve":
            port = free_port()
            env.update({"PORT": str(port), "HOST": "127.0.0.1"})
            url = f"http://127.0.0.1:{port}"
        return self.start(command, [sys.executable, "-m", "bot", command], env, url=url)

    def stop(self, child: Child, timeout: float = 20.0) -> None:
        """SIGTERM (to its group if it has one), then SIGKILL if it is still there after `timeout`."""
        if child.process.poll() is None:
            self._signal(child, signal.SIGTERM)
            try:
                child.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(child, signal.SIGKILL)
                child.process.wait(10)
        elif child.group:
            self._signal(child, signal.SIGKILL)  # whatever it left in its group
        if child._log is not None:
            child._log.close()
            child._log = None
        if child in self.running:
            self.running.remove(child)

    async def stop_async(self, child: Child, timeout: float = 20.0) -> None:  # noqa: ASYNC109
        """`stop` without blocking the event loop meanwhile (the sandbox and the proxies it serves run there: a
        process stopping may still need them)."""
        if child.process.poll() is None:
            self._signal(child, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(child.process.wait, timeout)
        self.stop(child, timeout=10.0)

    @staticmethod
    def _signal(child: Child, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if child.group:
                os.killpg(child.process.pid, sig)
            else:
                child.process.send_signal(sig)

    def stop_all(self) -> None:
        for child in list(reversed(self.running)):
            try:
                self.stop(child)
            except Exception as exc:  # keep stopping the others
                print(f"bench: could not stop {child.role} (pid {child.pid}): {exc}", file=sys.stderr)


async def wait_healthy(child: Child, timeout: float = 90.0) -> None:  # noqa: ASYNC109
    """Until the child's `/healthz` (or `/ok` for a LangGraph server) answers 200."""
    assert child.url is not None
    path = "/ok" if child.role == "langgraph" else "/healthz"
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while True:
            try:
                async with session.get(child.url + path) as response:
                    if response.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            if child.process.poll() is not None:
                raise RuntimeError(f"{child.role} exited with {child.process.returncode}:\n{child.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{child.role} did not become healthy in {timeout:.0f} s:\n{child.tail()}")
            await asyncio.sleep(0.1)


def langgraph_config(folder: Path) -> Path:
    """A langgraph.json serving bench/graphs.py's `echo` and `ask` (absolute paths: the server runs in `folder`)."""
    graphs = REPO / "bench" / "graphs.py"
    config: dict[str, Any] = {
        "python_version": f"{sys.version_info.major}.{sys.version_info.minor}",
        "dependencies": [str(REPO)],
        "graphs": {"echo": f"{graphs}:echo", "ask": f"{graphs}:ask"},
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "langgraph.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def start_langgraph(children: Children, folder: Path) -> Child:
    """`langgraph dev` (in-memory runtime) on a free port, in its own process group."""
    if not LANGGRAPH.exists():
        raise RuntimeError("the langgraph CLI is missing: pip install -e '.[test,bench]'")
    config = langgraph_config(folder)
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "LANGSMITH_TRACING": "false",
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    }
    argv = [str(LANGGRAPH), "dev", "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--no-browser", "--no-reload", "--n-jobs-per-worker", "10"]
    # It keeps its threads under its working folder (.langgraph_api): a fresh one for each start.
    return children.start("langgraph", argv, env, url=f"http://127.0.0.1:{port}", group=True, cwd=folder)
