from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.dev.sandbox import SandboxClient, SlackSandbox

SECRET = "test-signing-secret"
TOKEN = "xoxb-sandbox-test"


@pytest.fixture
async def sb() -> AsyncIterator[SlackSandbox]:
    sandbox = SlackSandbox(
        signing_secret=SECRET,
        bot_token=TOKEN,
        delivery_timeout=0.5,
        retry_delays=(0.05, 0.1, 0.2),
    )
    await sandbox.start()
    try:
        yield sandbox
    finally:
        await sandbox.stop()


@pytest.fixture
async def web(sb: SlackSandbox) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=sb.api_url)


@pytest.fixture
async def people(sb: SlackSandbox) -> AsyncIterator[SandboxClient]:
    async with SandboxClient(sb.url) as client:
        yield client
