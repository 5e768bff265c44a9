"""Each seed graph end to end through Slack: question posted, answered, graph resumed, result posted."""

from __future__ import annotations

from typing import Any

from bot.dev.fake_openai import Reply, ToolCall
from bot.interrupts.base import ANSWER_BLOCK
from tests.support.harness import Harness
from tests.support.slack import (
    ANSWER_BUTTON,
    GENERAL,
    buttons,
    containing,
    thread,
    typed_answer,
    visible_text,
    wait_for_message,
)


async def test_feedback_workflow_answered_by_a_thread_reply(harness: Harness, slack: Any) -> None:
    await harness.start("graphs.feedback_workflow:graph")
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> foo")

    question = await wait_for_message(slack, GENERAL, root, containing("Please provide feedback: foo bar"))
    assert [b["action_id"] for b in buttons(question)] == [ANSWER_BUTTON]

    await slack.post("U0ALICE", GENERAL, "baz", thread_ts=root)
    await wait_for_message(slack, GENERAL, root, containing("foo bar baz qux"))

    decided = next(m for m in await thread(slack, GENERAL, root) if m["ts"] == question["ts"])
    assert not buttons(decided)
    assert "Answered by <@U0ALICE>" in visible_text(decided)
    assert "baz" in visible_text(decided)


async def test_revise_text_edited_in_a_prefilled_modal(harness: Harness, slack: Any) -> None:
    await harness.start("graphs.revise_text:graph")
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> teh first draft")
    question = await wait_for_message(slack, GENERAL, root, containing("teh first draft"))
    (edit,) = buttons(question)
    assert edit["text"]["text"] == "Edit"

    await slack.click("U0BOB", GENERAL, question["ts"], ANSWER_BUTTON)
    (modal,) = await slack.wait_for(lambda: slack.views("U0BOB"))
    field = next(b for b in modal["blocks"] if b.get("block_id") == ANSWER_BLOCK)
    assert field["element"]["initial_value"] == "teh first draft"

    outcome = await slack.submit("U0BOB", typed_answer("the first draft"))
    assert not outcome.get("errors")
    await wait_for_message(slack, GENERAL, root, lambda m: m["text"] == "the first draft")
    decided = next(m for m in await thread(slack, GENERAL, root) if m["ts"] == question["ts"])
    assert "Answered by <@U0BOB>" in visible_text(decided) and not buttons(decided)


async def test_chatbot_asks_a_human_and_the_model_sees_the_answer(harness: Harness, slack: Any, openai: Any) -> None:
    openai.reply(Reply(tool_calls=[ToolCall("human_assistance", {"query": "Expert guidance for building an agent?"})]))
    openai.reply(Reply(content="The experts recommend **LangGraph**."))
    await harness.start("graphs.chatbot:graph")

    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> I need expert guidance for building an AI agent")
    question = await wait_for_message(slack, GENERAL, root, containing("Expert guidance for building an agent?"))
    await slack.click("U0BOB", GENERAL, question["ts"], ANSWER_BUTTON)
    await slack.wait_for(lambda: slack.views("U0BOB"))
    await slack.submit("U0BOB", typed_answer("Check out LangGraph."))

    await wait_for_message(slack, GENERAL, root, containing("The experts recommend *LangGraph*."))
    assert openai.requests[0].last_user_text == "I need expert guidance for building an AI agent"
    assert [m["content"] for m in openai.requests[1].tool_messages] == ["Check out LangGraph."]


async def test_react_agent_weather_runs_while_the_human_is_asked(harness: Harness, slack: Any, openai: Any) -> None:
    openai.reply(
        Reply(
            tool_calls=[
                ToolCall("human_assistance", {"query": "What should I feed my cat?"}),
                ToolCall("get_weather", {"location": "San Francisco"}),
            ]
        )
    )
    openai.reply(Reply(content="Feed your cat fish. In San Francisco it's sunny!"))
    bot = await harness.start("graphs.react_agent:agent")

    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> cat food? and the weather in SF?")
    await wait_for_message(slack, GENERAL, root, containing("What should I feed my cat?"))
    conversation = await bot.bot.store.find_conversation(team_id="T0SANDBOX", channel_id=GENERAL, thread_ts=root)
    assert conversation is not None
    saved = await bot.bot.db.checkpointer.aget_tuple({"configurable": {"thread_id": conversation.thread_id}})
    assert saved is not None
    assert any("It's sunny!" in str(value) for _, _, value in saved.pending_writes or [])

    await slack.post("U0BOB", GENERAL, "You should feed your cat a fish.", thread_ts=root)
    await wait_for_message(slack, GENERAL, root, containing("Feed your cat fish."))
    assert len(openai.requests) == 2
    assert sorted(m["content"] for m in openai.requests[1].tool_messages) == [
        "It's sunny!",
        "You should feed your cat a fish.",
    ]
