"""Runs carry where they come from in Slack, as LangSmith metadata and tags: a trace is found from a thread and
a thread from a trace."""

from __future__ import annotations

from typing import Any

from bot.runner import Trace
from tests.support import traced
from tests.support.harness import Harness
from tests.support.slack import GENERAL, wait_for_message


async def test_a_run_carries_the_team_channel_thread_and_user(harness: Harness, slack: Any) -> None:
    traced.SEEN.clear()
    await harness.start("tests.support.traced:graph")
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> hello")
    await wait_for_message(slack, GENERAL, root, lambda m: m.get("text") == "echo: hello")
    (seen,) = traced.SEEN
    assert seen["metadata"] == {
        "slack_team_id": "T0SANDBOX",
        "slack_channel_id": GENERAL,
        "slack_thread_ts": root,
        "slack_user_id": "U0ALICE",
        "slack_run_kind": "turn",
        "slack_url": f"https://app.slack.com/client/T0SANDBOX/{GENERAL}/thread/{GENERAL}-{root}",
    }
    assert seen["tags"] == [
        "slack",
        "slack:turn",
        "slack:team:T0SANDBOX",
        f"slack:channel:{GENERAL}",
        f"slack:thread:{root}",
        "slack:user:U0ALICE",
    ]


def test_the_run_name_reads_where_it_came_from() -> None:
    trace = Trace(team_id="T1", channel_id="C1", thread_ts="1.5", user_id=None, kind="resume")
    assert trace.run_name == "Slack resume in C1 (thread 1.5)"
    assert "slack:user:" not in " ".join(trace.tags())
