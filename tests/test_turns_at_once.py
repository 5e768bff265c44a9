"""Turns that wait (for a model, tools, a LangGraph Server) keep their job's place while they wait: with the default
BOT_WORKERS, one process has many conversations in flight at once, not four (issue 11)."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.config import DEFAULT_WORKERS
from tests.support.harness import Harness
from tests.support.slack import GENERAL, containing, visible_text, wait_for_message
from tests.support.waiting import GATHERING

WAITING = "tests.support.waiting:graph"


async def test_a_dozen_conversations_wait_for_their_model_at_once_in_one_process(harness: Harness, slack: Any) -> None:
    assert DEFAULT_WORKERS >= GATHERING.size
    GATHERING.reset()
    environ = harness.environ(WAITING)
    assert "BOT_WORKERS" not in environ  # the default, as a user gets it
    await harness.start(WAITING, environ=environ)

    roots = await asyncio.gather(
        *(slack.post("U0ALICE", GENERAL, f"<@U0BOT> question {i}") for i in range(GATHERING.size))
    )
    answered = lambda message: containing("together")(message) or containing("alone")(message)  # noqa: E731
    replies = await asyncio.gather(*(wait_for_message(slack, GENERAL, root, answered) for root in roots))
    # Every turn was waiting while all the others were: none gave up.
    assert ["alone" not in visible_text(reply) for reply in replies] == [True] * GATHERING.size
    assert GATHERING.most == GATHERING.size
