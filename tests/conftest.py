from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.db import open_database
from tests.support import database as pgdb
from tests.support.harness import BOT_TOKEN, SIGNING_SECRET, Harness


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    yield from pgdb.server_url()


@pytest.fixture(scope="session")
def pg_template(pg_server: str) -> Iterator[str]:
    """A database with every migration applied, cloned for each test."""
    name = f"lgslack_template_{uuid.uuid4().hex[:8]}"
    pgdb.admin(pg_server, f"CREATE DATABASE {name}")

    async def migrate() -> None:
        db = await open_database(pgdb.with_database(pg_server, name), Path(".data"))
        await db.close()

    asyncio.run(migrate())
    try:
        yield name
    finally:
        pgdb.admin(pg_server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def database_url(pg_server: str, pg_template: str) -> Iterator[str]:
    with pgdb.database(pg_server, template=pg_template) as url:
        yield url


@pytest.fixture
async def sandbox() -> AsyncIterator[object]:
    from bot.dev.sandbox import SlackSandbox

    sb = SlackSandbox(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN)
    await sb.start()
    try:
        yield sb
    finally:
        await sb.stop()


@pytest.fixture
async def slack(sandbox: object) -> AsyncIterator[object]:
    from bot.dev.sandbox import SandboxClient

    async with SandboxClient(sandbox.url) as client:  # type: ignore[attr-defined]
        yield client


@pytest.fixture
async def openai(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[object]:
    from bot.dev.fake_openai import FakeOpenAI
    from tests.support.models import reset_model_clients

    server = FakeOpenAI()
    await server.start()
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.delenv("OPENAI_MODEL", raising=False)
    reset_model_clients()
    try:
        yield server
    finally:
        reset_model_clients()
        await server.stop()


@pytest.fixture
async def harness(sandbox: object, database_url: str) -> AsyncIterator[Harness]:
    h = Harness(sandbox=sandbox, database_url=database_url)  # type: ignore[arg-type]
    try:
        yield h
    finally:
        await h.stop_all()
