"""Each seed's code as written (tests/seeds/), served by a real `langgraph dev` from tests/seeds/langgraph.json and
driven through Slack to the output the seed documents: the exact text posted, the value the graph ended with, and
every bot message posted once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph_sdk import get_client

from bot.dev.fake_openai import FakeOpenAI
from tests.seeds import documented as doc
from tests.support.harness import BotProcess, Harness
from tests.support.langgraph_server import REPO, langgraph_dev, scripted_model
from tests.support.slack import ANSWER_BUTTON, GENERAL, buttons, typed_answer, wait_for_message
from tests.test_seeds_as_written import answer_by_modal, said, sections, settled

SEEDS = REPO / "tests" / "seeds" / "langgraph.json"
WAIT = 60.0
"""Seconds to wait for a message: a run goes through the server."""


@pytest.fixture(scope="module")
def model() -> Iterator[FakeOpenAI]:
    yield from scripted_model()


@pytest.fixture(scope="module")
def langgraph_server(model: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`langgraph dev` serving the seed modules, each under its module's name."""
    yield from langgraph_dev(SEEDS, model, tmp_path_factory.mktemp("seeds-server"))


@pytest.fixture
def server(langgraph_server: str, model: FakeOpenAI) -> Iterator[str]:
    model.clear()
    yield langgraph_server
    model.clear()


@pytest.fixture
async def sdk(server: str) -> AsyncIterator[Any]:
    client = get_client(url=server)
    try:
        yield client
    finally:
        await client.aclose()


async def start(harness: Harness, server: str, assistant: str, **extra: str) -> BotProcess:
    """The bot on the server's assistant (graph id) `assistant`."""
    environ = harness.environ(
        f"tests.seeds.{assistant}:graph", LANGGRAPH_URL=server, LANGGRAPH_ASSISTANT_ID=assistant, **extra
    )
    return await harness.start(environ["BOT_GRAPH"], environ=environ)


async def server_state(process: BotProcess, sdk: Any, root: str) -> dict[str, Any]:
    """The server's state of the thread the bot runs this Slack thread's conversation in."""
    conversation = await process.bot.store.find_conversation(team_id="T0SANDBOX", channel_id=GENERAL, thread_ts=root)
    assert conversation is not None
    state: dict[str, Any] = await sdk.threads.get_state(conversation.thread_id)
    return state


async def message(slack: Any, root: str, predicate: Any) -> dict[str, Any]:
    found: dict[str, Any] = await wait_for_message(slack, GENERAL, root, predicate, timeout=WAIT)
    return found


@pytest.mark.parametrize("assistant", ["seed000_feedback", "seed003_feedback"])
async def test_the_functional_feedback_workflow_on_the_server(
    harness: Harness, slack: Any, server: str, sdk: Any, assistant: str
) -> None:
    process = await start(harness, server, assistant)
    root = await slack.post("U0ALICE", GENERAL, f"<@U0BOT> {doc.FEEDBACK_INPUT}")

    question = await message(slack, root, lambda m: doc.FEEDBACK_QUESTION in sections(m))
    assert [b["action_id"] for b in buttons(question)] == [ANSWER_BUTTON]
    await slack.post("U0ALICE", GENERAL, doc.FEEDBACK_ANSWER, thread_ts=root)

    result = await message(slack, root, lambda m: said(m) == doc.FEEDBACK_RESULT)
    assert [m["ts"] for m in await settled(harness, slack, root)] == [question["ts"], result["ts"]]
    state = await server_state(process, sdk, root)
    assert (state["values"], state["next"]) == (doc.FEEDBACK_RESULT, [])


async def test_the_functional_react_agent_on_the_server(
    harness: Harness, slack: Any, server: str, sdk: Any, model: FakeOpenAI
) -> None:
    model.reply(*doc.react_script())
    process = await start(harness, server, "seed000_react_agent")
    root = await slack.post("U0ALICE", GENERAL, f"<@U0BOT> {doc.REACT_USER}")

    question = await message(slack, root, lambda m: doc.REACT_QUERY in sections(m))
    assert model.requests[0].last_user_text == doc.REACT_USER
    assert model.requests[0].tool_names == ["get_weather", "human_assistance"]
    await slack.post("U0BOB", GENERAL, doc.REACT_ANSWER, thread_ts=root)

    final = await message(slack, root, lambda m: said(m) == doc.REACT_FINAL.strip())
    assert [m["ts"] for m in await settled(harness, slack, root)] == [question["ts"], final["ts"]]
    assert len(model.requests) == 2
    assert [(m["tool_call_id"], m["content"]) for m in model.requests[1].tool_messages] == doc.REACT_TOOL_MESSAGES
    state = await server_state(process, sdk, root)
    assert state["next"] == []
    assert state["values"]["type"] == "ai" and state["values"]["content"] == doc.REACT_FINAL


async def test_revise_text_with_a_typing_typeddict_state_on_the_server(
    harness: Harness, slack: Any, server: str, sdk: Any
) -> None:
    process = await start(harness, server, "seed001_revise_text")
    root = await slack.post("U0ALICE", GENERAL, f"<@U0BOT> {doc.REVISE_INPUT}")

    question = await message(slack, root, lambda m: doc.REVISE_INPUT in sections(m))
    (edit,) = buttons(question)
    assert edit["text"]["text"] == "Edit"
    await slack.click("U0BOB", GENERAL, question["ts"], ANSWER_BUTTON)
    (modal,) = await slack.wait_for(lambda: slack.views("U0BOB"))
    field = next(b for b in modal["blocks"] if b.get("block_id") == "lgslack_answer")
    assert field["element"]["initial_value"] == doc.REVISE_INPUT
    outcome = await slack.submit("U0BOB", typed_answer(doc.REVISE_ANSWER))
    assert not outcome.get("errors")

    result = await message(slack, root, lambda m: said(m) == doc.REVISE_ANSWER)
    assert [m["ts"] for m in await settled(harness, slack, root)] == [question["ts"], result["ts"]]
    state = await server_state(process, sdk, root)
    assert (state["values"], state["next"]) == (doc.REVISE_OUTPUT, [])


async def test_the_tutorial_chatbot_on_the_server(
    harness: Harness, slack: Any, server: str, sdk: Any, model: FakeOpenAI
) -> None:
    model.reply(*doc.chatbot_script())
    process = await start(harness, server, "seed002_chatbot")
    root = await slack.post("U0ALICE", GENERAL, f"<@U0BOT> {doc.CHATBOT_USER}")

    intro = await message(slack, root, lambda m: said(m) == doc.CHATBOT_INTRO)
    question = await message(slack, root, lambda m: doc.CHATBOT_QUERY in sections(m))
    assert model.requests[0].last_user_text == doc.CHATBOT_USER
    assert model.requests[0].tool_names == doc.CHATBOT_TOOLS
    await answer_by_modal(slack, question, "U0BOB", doc.CHATBOT_ANSWER)

    final = await message(slack, root, lambda m: said(m) == doc.CHATBOT_FINAL)
    assert [m["ts"] for m in await settled(harness, slack, root)] == [intro["ts"], question["ts"], final["ts"]]
    assert [m["content"] for m in model.requests[1].tool_messages] == [doc.CHATBOT_ANSWER]
    state = await server_state(process, sdk, root)
    tool = next(m for m in state["values"]["messages"] if m["type"] == "tool")
    assert (tool["name"], tool["content"]) == ("human_assistance", doc.CHATBOT_ANSWER)


async def test_wait_for_user_input_with_a_breakpoint_set_per_run_on_the_server(
    harness: Harness, slack: Any, server: str, sdk: Any, model: FakeOpenAI, tmp_path: Path
) -> None:
    config = tmp_path / "bot.toml"
    config.write_text(doc.breakpoints_toml("seed004_ask_human"))
    model.reply(*doc.ask_script())
    process = await start(harness, server, "seed004_ask_human", BOT_CONFIG=str(config))
    root = await slack.post("U0ALICE", GENERAL, f"<@U0BOT> {doc.ASK_USER}")

    intro = await message(slack, root, lambda m: said(m) == doc.ASK_INTRO)
    question = await message(slack, root, lambda m: doc.ASK_QUESTION in sections(m))
    assert (await server_state(process, sdk, root))["next"] == ["ask_human"]
    await slack.post("U0ALICE", GENERAL, doc.ASK_ANSWER, thread_ts=root)

    final = await message(slack, root, lambda m: said(m) == doc.ASK_FINAL)
    thanks = await message(slack, root, lambda m: said(m) == doc.ASK_THANKS)
    messages = await settled(harness, slack, root)
    assert [m["ts"] for m in messages] == [intro["ts"], question["ts"], thanks["ts"], final["ts"]]
    assert len(model.requests) == 3
    assert [(m["tool_call_id"], m["content"]) for m in model.requests[1].tool_messages] == [
        (doc.ASK_CALL_ID, doc.ASK_ANSWER)
    ]
    assert [(m["tool_call_id"], m["content"]) for m in model.requests[2].tool_messages][-1] == (
        doc.SEARCH_CALL_ID,
        doc.ASK_SEARCH_RESULT,
    )
    state = await server_state(process, sdk, root)
    assert state["next"] == []
    answered = next(m for m in state["values"]["messages"] if m.get("tool_call_id") == doc.ASK_CALL_ID)
    assert (answered["type"], answered["content"]) == ("tool", doc.ASK_ANSWER)
