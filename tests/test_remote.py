"""The LangGraph Server runtime: the same flows through Slack, with the graphs run by a real `langgraph dev`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from bot.dev.fake_openai import FakeOpenAI, Reply, ToolCall
from tests.support.database import free_port
from tests.support.harness import Harness
from tests.support.langgraph_server import REPO, langgraph_dev, scripted_model
from tests.support.slack import ANSWER_BUTTON, GENERAL, containing, typed_answer, wait_for_message


@pytest.fixture(scope="module")
def model() -> Iterator[FakeOpenAI]:
    """A scripted model for the whole module, on its own event loop: the server process keeps its client."""
    yield from scripted_model()


@pytest.fixture(scope="module")
def langgraph_server(model: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`langgraph dev` serving langgraph.json's graphs on a free port."""
    yield from langgraph_dev(REPO / "langgraph.json", model, tmp_path_factory.mktemp("langgraph"))


@pytest.fixture
def remote(langgraph_server: str, model: FakeOpenAI) -> Iterator[dict[str, str]]:
    model.clear()
    yield {"LANGGRAPH_URL": langgraph_server}
    model.clear()


async def start(harness: Harness, remote: dict[str, str], assistant: str) -> None:
    await harness.start(
        "graphs.assistant:graph",
        environ=harness.environ("graphs.assistant:graph", LANGGRAPH_ASSISTANT_ID=assistant, **remote),
    )


async def test_the_feedback_workflow_runs_on_the_server(harness: Harness, slack: Any, remote: dict[str, str]) -> None:
    await start(harness, remote, "feedback_workflow")
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> foo")
    await wait_for_message(slack, GENERAL, root, containing("Please provide feedback: foo bar"))
    await slack.post("U0BOB", GENERAL, "baz", thread_ts=root)
    await wait_for_message(slack, GENERAL, root, containing("foo bar baz qux"))


async def test_the_chatbot_asks_a_human_through_the_server(
    harness: Harness, slack: Any, remote: dict[str, str], model: FakeOpenAI
) -> None:
    model.reply(Reply(tool_calls=[ToolCall("human_assistance", {"query": "Which agent framework?"})]))
    model.reply(Reply(content="The experts recommend LangGraph."))
    await start(harness, remote, "chatbot")
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> I need expert advice")
    question = await wait_for_message(slack, GENERAL, root, containing("Which agent framework?"))
    await slack.click("U0BOB", GENERAL, question["ts"], ANSWER_BUTTON)
    await slack.wait_for(lambda: slack.views("U0BOB"))
    await slack.submit("U0BOB", typed_answer("LangGraph, of course."))
    await wait_for_message(slack, GENERAL, root, containing("The experts recommend LangGraph."))
    assert model.requests[1].tool_messages[0]["content"] == "LangGraph, of course."


async def test_an_approval_decided_in_slack_resumes_the_server_run(
    harness: Harness, slack: Any, remote: dict[str, str], model: FakeOpenAI
) -> None:
    model.reply(Reply(tool_calls=[ToolCall("send_email", {"to": "a@b.c", "subject": "Hi", "body": "Hello"})]))
    model.reply(Reply(content="Sent."))
    await start(harness, remote, "approvals")
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> email a@b.c")
    request = await wait_for_message(slack, GENERAL, root, containing("The agent asks for approval"))
    await slack.click("U0BOB", GENERAL, request["ts"], "lgslack.act:approve:0")
    await wait_for_message(slack, GENERAL, root, containing("Sent."))
    assert model.requests[1].tool_messages[0]["content"].startswith("Email sent to a@b.c")


async def test_the_breakpoint_pattern_on_the_server(
    harness: Harness, slack: Any, remote: dict[str, str], model: FakeOpenAI
) -> None:
    model.reply(Reply(tool_calls=[ToolCall("AskHuman", {"question": "Where are you?"})]))
    model.reply(Reply(content="Sunny where you are."))
    await start(harness, remote, "ask_human")
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> ask me where I am")
    await wait_for_message(slack, GENERAL, root, containing("Where are you?"))
    await slack.post("U0ALICE", GENERAL, "san francisco", thread_ts=root)
    await wait_for_message(slack, GENERAL, root, containing("Sunny where you are."))
    assert model.requests[1].tool_messages[0]["content"] == "san francisco"


def test_a_server_that_does_not_answer_stops_the_bot_with_one_line(database_url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot", "serve"],
        env={
            **os.environ,
            "SLACK_BOT_TOKEN": "xoxb-1",
            "SLACK_SIGNING_SECRET": "s",
            "DATABASE_URL": database_url,
            "LANGGRAPH_URL": f"http://127.0.0.1:{free_port()}",
            "LANGGRAPH_ASSISTANT_ID": "agent",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()[-1:]
    assert line.startswith("error: LANGGRAPH_URL (http://127.0.0.1:") and "did not answer for assistant 'agent'" in line
