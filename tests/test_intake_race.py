"""A mention's two events (`app_mention` and `message`) arriving at the same moment, as Slack may send them, make
one conversation and one turn, and both get a 200."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import psycopg
from slack_sdk.signature import SignatureVerifier

from bot.dev.sandbox.events import envelope
from tests.support.harness import SIGNING_SECRET, Harness
from tests.support.slack import GENERAL, wait_for_message

MENTIONS = 10


async def test_a_mentions_two_events_at_once_make_one_turn(
    harness: Harness, sandbox: Any, slack: Any, database_url: str, monkeypatch: Any
) -> None:
    bot = await harness.start("tests.support.traced:graph")
    held: list[dict[str, Any]] = []
    monkeypatch.setattr(sandbox, "emit", lambda event: held.append(event) or "EvHELD")
    roots = [await slack.post("U0ALICE", GENERAL, f"<@U0BOT> hi {n}") for n in range(MENTIONS)]
    monkeypatch.undo()
    assert sorted(event["type"] for event in held) == sorted(["app_mention", "message"] * MENTIONS)

    signer = SignatureVerifier(SIGNING_SECRET)

    async def deliver(http: aiohttp.ClientSession, index: int, event: dict[str, Any]) -> int:
        body = json.dumps(envelope(event, f"EvRACE{index}", int(time.time())))
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signer.generate_signature(timestamp=stamp, body=body),
        }
        async with http.post(bot.url + "/slack/events", data=body, headers=headers) as response:
            return response.status

    async with aiohttp.ClientSession() as http:
        statuses = await asyncio.gather(*(deliver(http, i, event) for i, event in enumerate(held)))
    assert statuses == [200] * len(held)
    for n, root in enumerate(roots):
        await wait_for_message(slack, GENERAL, root, lambda m, n=n: m.get("text") == f"echo: hi {n}")
    with psycopg.connect(database_url) as conn:
        conversations = conn.execute("SELECT count(*) FROM lgslack_conversations").fetchone()
        inbound = conn.execute("SELECT count(*) FROM lgslack_inbound").fetchone()
    assert conversations == (MENTIONS,) and inbound == (MENTIONS,)
