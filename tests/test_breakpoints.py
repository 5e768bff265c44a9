"""Breakpoints a deployment sets at run time (`[graphs."…"] interrupt_before` in BOT_CONFIG), as a LangGraph
client passes `interrupt_before=[...]` per run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.harness import Harness
from tests.support.slack import GENERAL, buttons, containing, from_bot, thread, visible_text, wait_for_message

GRAPH = "tests.support.typed_state:graph"


def _config(tmp_path: Path, nodes: str) -> str:
    path = tmp_path / "bot.toml"
    path.write_text(f'[graphs."{GRAPH}"]\ninterrupt_before = {nodes}\n')
    return str(path)


async def test_a_run_time_breakpoint_pauses_before_the_node_and_a_reply_lets_it_go_on(
    harness: Harness, slack: Any, tmp_path: Path
) -> None:
    await harness.start(GRAPH, environ=harness.environ(GRAPH, BOT_CONFIG=_config(tmp_path, '["publish"]')))
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> hello")
    paused = await wait_for_message(slack, GENERAL, root, containing("paused before the step"))
    assert "publish" in visible_text(paused) and buttons(paused)

    await slack.post("U0ALICE", GENERAL, "go on", thread_ts=root)
    done = await wait_for_message(slack, GENERAL, root, lambda m: m.get("text") == "HELLO!")
    assert done
    said = [m for m in await thread(slack, GENERAL, root) if from_bot(m)]
    assert [m.get("text") for m in said].count("HELLO!") == 1


async def test_without_the_setting_the_same_graph_runs_through(harness: Harness, slack: Any) -> None:
    await harness.start(GRAPH)
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> hello")
    await wait_for_message(slack, GENERAL, root, lambda m: m.get("text") == "HELLO!")


async def test_a_breakpoint_before_every_node_pauses_twice(harness: Harness, slack: Any, tmp_path: Path) -> None:
    await harness.start(GRAPH, environ=harness.environ(GRAPH, BOT_CONFIG=_config(tmp_path, '"*"')))
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> hi")
    first = await wait_for_message(slack, GENERAL, root, containing("`shout`"))
    await slack.click("U0BOB", GENERAL, first["ts"], "lgslack.act:answer")
    (modal,) = await slack.wait_for(lambda: slack.views("U0BOB"))
    assert modal
    await slack.submit("U0BOB", {"lgslack_answer": "ok"})
    second = await wait_for_message(slack, GENERAL, root, containing("`publish`"))
    await slack.post("U0ALICE", GENERAL, "ok", thread_ts=root)
    await wait_for_message(slack, GENERAL, root, lambda m: m.get("text") == "HI!")
    assert second["ts"] != first["ts"]
