"""PostgreSQL stopped for 40 seconds under a running bot: Slack is told to come back, nothing is processed twice
or lost, /healthz says so meanwhile, and the bot carries on by itself when the database returns."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from bot.dev.sandbox import SandboxClient, SlackSandbox
from tests.support.drain import wait_drained
from tests.support.harness import BOT_TOKEN, SIGNING_SECRET, Harness
from tests.support.private_pg import PrivatePostgres, private_postgres
from tests.support.processes import start_bot
from tests.support.slack import (
    ANSWER_BUTTON,
    GENERAL,
    containing,
    from_bot,
    thread,
    typed_answer,
    visible_text,
    wait_for_message,
)

pytestmark = pytest.mark.faults

OUTAGE = 40.0
# Slack retries a failed delivery a few times over minutes; here the last retry comes after the outage.
RETRY_DELAYS = (2.0, 10.0, 40.0)


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    with private_postgres(database="bot") as pg:
        yield pg


@pytest.fixture
async def patient_slack() -> AsyncIterator[tuple[SlackSandbox, SandboxClient]]:
    sandbox = SlackSandbox(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN, retry_delays=RETRY_DELAYS)
    await sandbox.start()
    try:
        async with SandboxClient(sandbox.url) as client:
            yield sandbox, client
    finally:
        await sandbox.stop()


async def health(url: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(url + "/healthz") as response:
        return response.status


async def test_a_forty_second_outage_loses_nothing_and_needs_no_restart(
    postgres: PrivatePostgres, patient_slack: tuple[SlackSandbox, SandboxClient]
) -> None:
    sandbox, slack = patient_slack
    harness = Harness(sandbox=sandbox, database_url=postgres.url)
    bot = await start_bot(harness, BOT_STALLED_AFTER="2", BOT_RECONCILE_EVERY="1")
    try:
        sandbox.request_url = bot.events_url
        first = await slack.post("U0ALICE", GENERAL, "<@U0BOT> foo")
        await wait_for_message(slack, GENERAL, first, containing("Please provide feedback: foo bar"))
        second = await slack.post("U0CAROL", GENERAL, "<@U0BOT> spam")
        question = await wait_for_message(slack, GENERAL, second, containing("Please provide feedback: spam bar"))
        await slack.click("U0BOB", GENERAL, question["ts"], ANSWER_BUTTON)
        await slack.wait_for(lambda: slack.views("U0BOB"))

        postgres.stop()
        await slack.wait_for(lambda: _is(health(bot.url), 503), timeout=20)
        # During the outage: a reply (Slack is answered with an error and delivers it again later) and a modal
        # submission (the person is shown the error and nothing is decided).
        await slack.post("U0ALICE", GENERAL, "baz", thread_ts=first)
        refused = await slack.submit("U0BOB", typed_answer("eggs"))
        assert not refused["ok"], refused
        await asyncio.sleep(OUTAGE)  # the outage itself
        postgres.start()

        await slack.wait_for(lambda: _is(health(bot.url), 200), timeout=30)
        await wait_for_message(slack, GENERAL, first, containing("foo bar baz qux"), timeout=90)
        # The person tries again once Slack works for them again: the question is still open.
        await slack.click("U0BOB", GENERAL, question["ts"], ANSWER_BUTTON)
        await slack.wait_for(lambda: slack.views("U0BOB"))
        answered = await slack.submit("U0BOB", typed_answer("eggs"))
        assert not answered.get("errors"), answered
        await wait_for_message(slack, GENERAL, second, containing("spam bar eggs qux"), timeout=30)
        await wait_drained(postgres.url, slack, timeout=60)

        for root in (first, second):
            texts = [visible_text(m) for m in await thread(slack, GENERAL, root) if from_bot(m)]
            assert len(texts) == len(set(texts)), texts
            assert sum("qux" in text for text in texts) == 1, texts
    finally:
        assert bot.terminate(timeout=25) == 0


async def _is(status: Any, expected: int) -> bool:
    try:
        return await status == expected
    except aiohttp.ClientError:
        return False
