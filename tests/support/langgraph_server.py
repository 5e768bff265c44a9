"""A real `langgraph dev` for the LangGraph Server tests, and a scripted model the server process can reach.

Both are generators for module-scoped fixtures::

    @pytest.fixture(scope="module")
    def model() -> Iterator[FakeOpenAI]:
        yield from scripted_model()

    @pytest.fixture(scope="module")
    def langgraph_server(model: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
        yield from langgraph_dev(REPO / "langgraph.json", model, tmp_path_factory.mktemp("langgraph"))
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.dev.fake_openai import FakeOpenAI
from tests.support.database import free_port

REPO = Path(__file__).resolve().parents[2]
LANGGRAPH = Path(sys.executable).parent / "langgraph"
START_TIMEOUT = 90.0


def scripted_model() -> Iterator[FakeOpenAI]:
    """A scripted model on its own event loop in a thread, for a whole module: the server process keeps its HTTP
    client (and the graphs their models) across tests, so the model must outlive each test's event loop."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = FakeOpenAI()
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def _absolute(config: Path) -> dict[str, Any]:
    """The config with its graph paths and local dependencies made absolute: langgraph.json names them relative to
    itself, and the server runs elsewhere."""
    data: dict[str, Any] = json.loads(config.read_text())
    base = config.parent.resolve()

    def graph(spec: Any) -> Any:
        if not isinstance(spec, str) or "/" not in spec:
            return spec
        path, _, attribute = spec.rpartition(":")
        return f"{(base / path).resolve()}:{attribute}"

    data["graphs"] = {name: graph(spec) for name, spec in data.get("graphs", {}).items()}
    data["dependencies"] = [
        str((base / dep).resolve()) if isinstance(dep, str) and dep.startswith(".") else dep
        for dep in data.get("dependencies", [])
    ]
    return data


def langgraph_dev(config: Path, model: FakeOpenAI, workdir: Path) -> Iterator[str]:
    """`langgraph dev` serving `config`'s graphs on a free port; yields its URL, stops it when closed.

    It runs in `workdir`, where the in-memory server keeps its threads (so each start is fresh) and its log goes
    (`server.log`); the graphs' models reach `model` through OPENAI_BASE_URL.
    """
    if not LANGGRAPH.exists():
        pytest.fail("the langgraph CLI is missing: pip install -e '.[test]'")
    served = workdir / "langgraph.json"
    served.write_text(json.dumps(_absolute(config), indent=2))
    port = free_port()
    env = {
        **os.environ,
        "OPENAI_BASE_URL": model.base_url,
        "OPENAI_API_KEY": "sk-test",
        "LANGSMITH_TRACING": "false",
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    }
    command = [
        str(LANGGRAPH),
        "dev",
        "--config",
        str(served),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-browser",
        "--no-reload",
    ]
    log_path = workdir / "server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_until_up(process, url, log_path)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def _wait_until_up(process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            with urllib.request.urlopen(url + "/ok", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
            raise RuntimeError(f"langgraph dev did not start; see {log_path}:\n{tail}")
        time.sleep(0.3)
