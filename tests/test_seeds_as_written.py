"""Each seed's code as written (tests/seeds/), run in this process and driven through Slack to the output the seed
documents: the exact text posted, the exact value the graph got back, and every bot message posted once."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import ToolMessage

from tests.seeds import documented as doc
from tests.support.drain import wait_drained
from tests.support.harness import BotProcess, Harness
from tests.support.slack import (
    ANSWER_BUTTON,
    GENERAL,
    Message,
    buttons,
    from_bot,
    thread,
    typed_answer,
    wait_for_message,
)

RESUME = "__resume__"
"""The checkpoint channel where a task keeps what its `interrupt()` calls returned (langgraph's RESUME), a list."""


@pytest.fixture(autouse=True)
def fresh_seeds() -> Iterator[None]:
    """The seed modules are imported anew by each test: their models read OPENAI_BASE_URL when built, at import."""

    def forget() -> None:
        for name in [n for n in sys.modules if n.startswith("tests.seeds.") and n != "tests.seeds.documented"]:
            del sys.modules[name]

    forget()
    yield
    forget()


def sections(message: Message) -> list[str]:
    """The texts of the message's section blocks, as posted."""
    return [b["text"]["text"] for b in message.get("blocks") or [] if b.get("type") == "section" and b.get("text")]


def said(message: Message) -> str:
    """A reply's whole text (long replies are split into sections whose texts join back to the text)."""
    return "".join(sections(message))


async def bot_messages(slack: Any, root: str) -> list[Message]:
    return [m for m in await thread(slack, GENERAL, root) if from_bot(m)]


async def settled(harness: Harness, slack: Any, root: str) -> list[Message]:
    """The bot's messages in the thread once it has nothing left to do."""
    await wait_drained(harness.database_url, slack)
    return await bot_messages(slack, root)


async def saved(process: BotProcess, root: str) -> tuple[Any, dict[str, Any]]:
    """The graph as the bot runs it (with its checkpointer) and the config of the thread's conversation."""
    conversation = await process.bot.store.find_conversation(team_id="T0SANDBOX", channel_id=GENERAL, thread_ts=root)
    assert conversation is not None
    runner = process.bot.flows.turns.runners.get(conversation.graph)
    return runner.graph, {"configurable": {"thread_id": conversation.thread_id}}  # type: ignore[attr-defined]


async def resumed_with(process: BotProcess, root: str) -> list[Any]:
    """Every value an `interrupt()` call returned in this conversation, as its tasks saved them (oldest first)."""
    graph, config = await saved(process, root)
    newest_first = [checkpoint async for checkpoint in graph.checkpointer.alist(config)]
    return [
        returned
        for checkpoint in reversed(newest_first)
        for _task, channel, values in checkpoint.pending_writes or []
        if channel == RESUME
        for returned in values
    ]


async def answer_by_modal(slack: Any, question: Message, user: str, text: str) -> None:
    await slack.click(user, GENERAL, question["ts"], ANSWER_BUTTON)
    await slack.wait_for(lambda: slack.views(user))
    outcome = await slack.submit(user, typed_answer(text))
    assert not outcome.get("errors")


@pytest.mark.parametrize("module", ["seed000_feedback", "seed003_feedback"])
async def test_the_functional_feedback_workflow_as_written(harness: Harness, slack: Any, module: str) -> None:
    process = await harness.start(f"tests.seeds.{module}:graph")
    root = await slack.post("U0ALICE", GENERAL, f"<@U0BOT> {doc.FEEDBACK_INPUT}")

    question = await wait_for_message(slack, GENERAL, root, lambda m: doc.FEEDBACK_QUESTION in sections(m))
    assert [b["action_id"] for b in buttons(question)] == [ANSWER_BUTTON]
    await slack.post("U0ALICE", GENERAL, doc.FEEDBACK_ANSWER, thread_ts=root)

    result = await wait_for_message(slack, GENERAL, root, lambda m: said(m) == doc.FEEDBACK_RESULT)
    assert [m["ts"] for m in await settled(harness, slack, root)] == [question["ts"], result["ts"]]
    assert await resumed_with(process, root) == [doc.FEEDBACK_ANSWER]
    graph, config = await saved(process, root)
    assert (await graph.aget_state(config)).values == doc.FEEDBACK_RESULT


async def test_the_functional_react_agent_as_written(harness: Harness, slack: Any, openai: Any) -> None:
    openai.reply(*doc.react_script())
    process = await harness.start("tests.seeds.seed000_react_agent:agent")
    root = await slack.post("U0ALICE", GENERAL, f"<@U0BOT> {doc.REACT_USER}")

    question = await wait_for_message(slack, GENERAL, root, lambda m: doc.REACT_QUERY in sections(m))
    assert openai.requests[0].last_user_text == doc.REACT_USER
    assert openai.requests[0].tool_names == ["get_weather", "human_assistance"]
    # The weather ran while the human is asked: its result is saved (the only tool result), not to be run again.
    graph, config = await saved(process, root)
    pending = await graph.checkpointer.aget_tuple(config)
    finished = [(v.tool_call_id, v.content) for _, c, v in pending.pending_writes or [] if isinstance(v, ToolMessage)]
    assert finished == [doc.REACT_TOOL_MESSAGES[1]]

    await slack.post("U0BOB", GENERAL, doc.REACT_ANSWER, thread_ts=root)
    final = await wait_for_message(slack, GENERAL, root, lambda m: said(m) == doc.REACT_FINAL.strip())
    assert [m["ts"] for m in await settled(harness, slack, root)] == [question["ts"], final["ts"]]
    assert len(openai.requests) == 2
    assert [(m["tool_call_id"], m["content"]) for m in openai.requests[1].tool_messages] == doc.REACT_TOOL_MESSAGES
    assert await resumed_with(process, root) == [{"data": doc.REACT_ANSWER}]


async def test_revise_text_with_a_typing_typeddict_state_as_written(harness: Harness, slack: Any) -> None:
    process = await harness.start("tests.seeds.seed001_revise_text:graph")
    root = await slack.post("U0ALICE", GENERAL, f"<@U0BOT> {doc.REVISE_INPUT}")

    question = await wait_for_message(slack, GENERAL, root, lambda m: doc.REVISE_INPUT in sections(m))
    (edit,) = buttons(question)
    assert edit["text"]["text"] == "Edit"
    await slack.click("U0BOB", GENERAL, question["ts"], ANSWER_BUTTON)
    (modal,) = await slack.wait_for(lambda: slack.views("U0BOB"))
    field = next(b for b in modal["blocks"] if b.get("block_id") == "lgslack_answer")
    assert field["element"]["initial_value"] == doc.REVISE_INPUT
    outcome = await slack.submit("U0BOB", typed_answer(doc.REVISE_ANSWER))
    assert not outcome.get("errors")

    result = await wait_for_message(slack, GENERAL, root, lambda m: said(m) == doc.REVISE_ANSWER)
    assert [m["ts"] for m in await settled(harness, slack, root)] == [question["ts"], result["ts"]]
    assert await resumed_with(process, root) == [doc.REVISE_ANSWER]
    graph, config = await saved(process, root)
    assert (await graph.aget_state(config)).values == doc.REVISE_OUTPUT


async def test_the_tutorial_chatbot_as_written(harness: Harness, slack: Any, openai: Any) -> None:
    openai.reply(*doc.chatbot_script())
    process = await harness.start("tests.seeds.seed002_chatbot:graph")
    root = await slack.post("U0ALICE", GENERAL, f"<@U0BOT> {doc.CHATBOT_USER}")

    intro = await wait_for_message(slack, GENERAL, root, lambda m: said(m) == doc.CHATBOT_INTRO)
    question = await wait_for_message(slack, GENERAL, root, lambda m: doc.CHATBOT_QUERY in sections(m))
    assert openai.requests[0].last_user_text == doc.CHATBOT_USER
    assert openai.requests[0].tool_names == doc.CHATBOT_TOOLS
    await answer_by_modal(slack, question, "U0BOB", doc.CHATBOT_ANSWER)

    final = await wait_for_message(slack, GENERAL, root, lambda m: said(m) == doc.CHATBOT_FINAL)
    messages = await settled(harness, slack, root)
    assert [m["ts"] for m in messages] == [intro["ts"], question["ts"], final["ts"]]
    assert [m["content"] for m in openai.requests[1].tool_messages] == [doc.CHATBOT_ANSWER]
    assert await resumed_with(process, root) == [{"data": doc.CHATBOT_ANSWER}]


async def test_wait_for_user_input_with_a_breakpoint_set_per_run(
    harness: Harness, slack: Any, openai: Any, tmp_path: Path
) -> None:
    spec = "tests.seeds.seed004_ask_human:graph"
    config = tmp_path / "bot.toml"
    config.write_text(doc.breakpoints_toml(spec))
    openai.reply(*doc.ask_script())
    process = await harness.start(spec, environ=harness.environ(spec, BOT_CONFIG=str(config)))
    root = await slack.post("U0ALICE", GENERAL, f"<@U0BOT> {doc.ASK_USER}")

    intro = await wait_for_message(slack, GENERAL, root, lambda m: said(m) == doc.ASK_INTRO)
    question = await wait_for_message(slack, GENERAL, root, lambda m: doc.ASK_QUESTION in sections(m))
    graph, thread_config = await saved(process, root)
    assert (await graph.aget_state(thread_config)).next == ("ask_human",)
    await slack.post("U0ALICE", GENERAL, doc.ASK_ANSWER, thread_ts=root)

    final = await wait_for_message(slack, GENERAL, root, lambda m: said(m) == doc.ASK_FINAL)
    thanks = await wait_for_message(slack, GENERAL, root, lambda m: said(m) == doc.ASK_THANKS)
    messages = await settled(harness, slack, root)
    assert [m["ts"] for m in messages] == [intro["ts"], question["ts"], thanks["ts"], final["ts"]]
    assert len(openai.requests) == 3
    assert [(m["tool_call_id"], m["content"]) for m in openai.requests[1].tool_messages] == [
        (doc.ASK_CALL_ID, doc.ASK_ANSWER)
    ]
    assert [(m["tool_call_id"], m["content"]) for m in openai.requests[2].tool_messages][-1] == (
        doc.SEARCH_CALL_ID,
        doc.ASK_SEARCH_RESULT,
    )
    state = await graph.aget_state(thread_config)
    assert not state.next
    answered = next(m for m in state.values["messages"] if getattr(m, "tool_call_id", None) == doc.ASK_CALL_ID)
    assert (type(answered).__name__, answered.content) == ("ToolMessage", doc.ASK_ANSWER)
