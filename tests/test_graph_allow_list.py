"""A conversation runs only a graph the bot is configured for (BOT_GRAPH, BOT_GRAPHS): a channel-graph row naming
any other is refused in the thread, never imported, and nothing is lost."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from bot.runner import GraphRefused, Runners
from tests.support.drain import wait_drained
from tests.support.harness import Harness
from tests.support.slack import GENERAL, containing, from_bot, thread, wait_for_message

FEEDBACK = "graphs.feedback_workflow:graph"
REVISE = "graphs.revise_text:graph"
REFUSED = "is not one this bot is set up to run"


def test_runners_make_only_the_graphs_they_allow() -> None:
    made: list[str] = []

    def make(spec: str) -> Any:
        made.append(spec)
        return object()

    runners = Runners("a:graph", make, ["b:graph"])
    assert runners.allows(None) and runners.allows("a:graph") and runners.allows("b:graph")
    runners.get("b:graph")
    with pytest.raises(GraphRefused, match=r"^BOT_GRAPHS does not list 'os:system'"):
        runners.get("os:system")
    assert not runners.allows("os:system")
    assert made == ["b:graph"]


async def test_a_channel_graph_outside_the_list_is_refused_in_the_thread(
    harness: Harness, slack: Any, caplog: pytest.LogCaptureFixture
) -> None:
    process = await harness.start(FEEDBACK, environ=harness.environ(FEEDBACK, BOT_GRAPHS=REVISE))
    store = process.bot.store
    await store.set_channel_graph(team_id="T0SANDBOX", channel_id=GENERAL, graph="tests.support.graphs:form")
    with caplog.at_level(logging.ERROR, logger="bot.flow.turns"):
        root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> foo")
        await wait_for_message(slack, GENERAL, root, containing(REFUSED))
        await wait_drained(harness.database_url, slack)
    assert any("'tests.support.graphs:form' not allowed" in r.getMessage() for r in caplog.records)
    # Said once, and nothing else: no run, no failure; the message is kept, done.
    said = [m for m in await thread(slack, GENERAL, root) if from_bot(m)]
    assert len(said) == 1
    async with process.bot.db.pool.connection() as conn:
        cur = await conn.execute("SELECT text, status FROM lgslack_inbound WHERE ts = %s", (root,))
        assert await cur.fetchone() == {"text": "foo", "status": "done"}
        cur = await conn.execute("SELECT count(*) AS n FROM lgslack_runs")
        assert await cur.fetchone() == {"n": 0}

    # A graph on the list runs, in the same channel.
    await store.set_channel_graph(team_id="T0SANDBOX", channel_id=GENERAL, graph=REVISE)
    second = await slack.post("U0ALICE", GENERAL, "<@U0BOT> a draft")
    await wait_for_message(slack, GENERAL, second, containing("Please revise this text"))
