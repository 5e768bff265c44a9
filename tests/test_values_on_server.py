"""The same interrupt values and run-time breakpoints on a real `langgraph dev`: shown as in process, answered
with the same types."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph_sdk import get_client

from bot.dev.fake_openai import FakeOpenAI
from bot.records.conversations import derive_thread_id
from tests.support import odd_values
from tests.support.harness import Harness
from tests.support.langgraph_server import REPO, langgraph_dev, scripted_model
from tests.support.slack import GENERAL, buttons, containing, from_bot, thread, visible_text, wait_for_message

TEAM = "T0SANDBOX"


@pytest.fixture(scope="module")
def model() -> Iterator[FakeOpenAI]:
    yield from scripted_model()


@pytest.fixture(scope="module")
def langgraph_server(model: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    config = REPO / "tests" / "support" / "langgraph.json"
    yield from langgraph_dev(config, model, tmp_path_factory.mktemp("langgraph"))


async def _start(harness: Harness, server: str, assistant: str, **extra: str) -> None:
    env = harness.environ("graphs.assistant:graph", LANGGRAPH_URL=server, LANGGRAPH_ASSISTANT_ID=assistant, **extra)
    await harness.start("graphs.assistant:graph", environ=env)


async def _got(server: str, root: str) -> Any:
    state = await get_client(url=server).threads.get_state(derive_thread_id(TEAM, GENERAL, root))
    return state["values"].get("got")


async def test_a_pydantic_model_looks_the_same_and_a_json_reply_comes_back_as_data(
    harness: Harness, slack: Any, langgraph_server: str
) -> None:
    await _start(harness, langgraph_server, "odd_values")
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> pydantic")
    request = await wait_for_message(slack, GENERAL, root, lambda m: bool(buttons(m)))
    shown = visible_text(request)
    for expected in (
        '"title": "Printer on fire"',
        '"priority": "high"',
        '"due": "2026-12-01T09:30:00+00:00"',
        f'"id": "{odd_values.TICKET_ID}"',
    ):
        assert expected in shown, shown
    await slack.post("U0BOB", GENERAL, '{"assignee": "bob", "eta_hours": 2}', thread_ts=root)
    got = await slack.wait_for(lambda: _got(langgraph_server, root), timeout=20)
    assert got == {"assignee": "bob", "eta_hours": 2}


async def test_a_model_with_a_query_resumes_with_data(harness: Harness, slack: Any, langgraph_server: str) -> None:
    await _start(harness, langgraph_server, "odd_values")
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> pydantic_query")
    await wait_for_message(slack, GENERAL, root, containing("Which printer is on fire?"))
    await slack.post("U0BOB", GENERAL, "The one on floor 2", thread_ts=root)
    got = await slack.wait_for(lambda: _got(langgraph_server, root), timeout=20)
    assert got == {"data": "The one on floor 2"}


async def test_a_run_time_breakpoint_pauses_on_the_server(
    harness: Harness, slack: Any, langgraph_server: str, tmp_path: Path
) -> None:
    config = tmp_path / "bot.toml"
    config.write_text('[graphs."typed_state"]\ninterrupt_before = ["publish"]\n')
    await _start(harness, langgraph_server, "typed_state", BOT_CONFIG=str(config))
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> hello")
    await wait_for_message(slack, GENERAL, root, containing("paused before the step `publish`"))
    await slack.post("U0ALICE", GENERAL, "go on", thread_ts=root)
    await wait_for_message(slack, GENERAL, root, lambda m: m.get("text") == "HELLO!")
    said = [m.get("text") for m in await thread(slack, GENERAL, root) if from_bot(m)]
    assert said.count("HELLO!") == 1
    # Each run carries where it came from in Slack (LangSmith reads the run's metadata and tags).
    runs = await get_client(url=langgraph_server).runs.list(derive_thread_id(TEAM, GENERAL, root))
    assert sorted(r["metadata"]["slack_run_kind"] for r in runs) == ["resume", "turn"]
    assert {r["metadata"]["slack_thread_ts"] for r in runs} == {root}
    assert {r["metadata"]["slack_user_id"] for r in runs} == {"U0ALICE"}
