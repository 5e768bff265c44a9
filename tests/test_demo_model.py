"""The offline demo model: pure, deterministic, and able to drive every example graph."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import pytest
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.pregel import Pregel
from langgraph.types import Command

from bot.dev.demo_model import DEMO_LABEL, demo_responder, plan_tool_calls
from bot.dev.fake_openai import ChatRequest, FakeOpenAI, Reply, ToolCall
from tests.support.models import reset_model_clients

ALL_TOOLS = ["get_weather", "human_assistance", "send_email"]


def tool_spec(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}


def request(*messages: dict[str, Any], tools: list[str] = ALL_TOOLS, **body: Any) -> ChatRequest:
    return ChatRequest(number=1, body={"messages": list(messages), "tools": [tool_spec(t) for t in tools], **body})


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def called(name: str, args: dict[str, Any], call_id: str = "call_1") -> dict[str, Any]:
    function = {"name": name, "arguments": json.dumps(args)}
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": call_id, "type": "function", "function": function}],
    }


def result(text: str, call_id: str = "call_1") -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": text}


def test_weather_questions_call_get_weather() -> None:
    reply = demo_responder(request(user("What's the weather in Boston?")))
    assert reply.tool_calls == (ToolCall("get_weather", {"location": "Boston"}),)
    assert plan_tool_calls("weather in SF and Boston today", ALL_TOOLS) == [
        ToolCall("get_weather", {"location": "SF"}),
        ToolCall("get_weather", {"location": "Boston"}),
    ]


def test_asking_a_person_calls_human_assistance_with_the_question() -> None:
    reply = demo_responder(request(user("ask an expert: which database should we use? thanks")))
    assert reply.tool_calls == (ToolCall("human_assistance", {"query": "which database should we use?"}),)
    tutorial = "I need some expert guidance for building an AI agent. Could you request assistance for me?"
    assert plan_tool_calls(tutorial, ALL_TOOLS) == [ToolCall("human_assistance", {"query": tutorial})]
    assert plan_tool_calls("ask a human: where are you?", ["search", "AskHuman"]) == [
        ToolCall("AskHuman", {"question": "where are you?"})
    ]


def test_email_requests_call_send_email_only_when_it_is_offered() -> None:
    text = "send an email to bob@example.com about lunch"
    (call,) = demo_responder(request(user(text))).tool_calls
    assert call.name == "send_email"
    assert call.args["to"] == "bob@example.com"
    assert call.args["subject"] == "Lunch"
    assert "Hi Bob" in call.args["body"]
    named = plan_tool_calls("email carol about the budget saying the numbers are in", ALL_TOOLS)
    assert named == [
        ToolCall("send_email", {"to": "carol@example.com", "subject": "The budget", "body": "the numbers are in"})
    ]
    two = plan_tool_calls(
        "send an email to bob@example.com about lunch and one to carol@example.com about x", ALL_TOOLS
    )
    assert [c.args["to"] for c in two] == ["bob@example.com", "carol@example.com"]
    without = demo_responder(request(user(text), tools=["get_weather", "human_assistance"]))
    assert not without.tool_calls and DEMO_LABEL in without.content


def test_calls_come_in_the_order_asked_and_one_at_a_time_when_parallel_calls_are_off() -> None:
    text = "Can you reach out for human assistance: what should I feed my cat? Also the weather in San Francisco?"
    both = demo_responder(request(user(text)))
    assert [c.name for c in both.tool_calls] == ["human_assistance", "get_weather"]
    assert both.tool_calls[0].args == {"query": "what should I feed my cat?"}
    one = demo_responder(request(user(text), parallel_tool_calls=False))
    assert [c.name for c in one.tool_calls] == ["human_assistance"]


def test_tool_results_are_summarised() -> None:
    weather = demo_responder(
        request(user("weather in Boston?"), called("get_weather", {"location": "Boston"}), result("It's rainy!"))
    )
    assert weather.content == "**Weather in Boston:** It's rainy!"
    answered = demo_responder(
        request(user("ask an expert: db?"), called("human_assistance", {"query": "db?"}), result("Postgres."))
    )
    assert answered.content == "A person answered: “Postgres.”"
    sent = demo_responder(
        request(
            user("email bob@example.com"),
            called("send_email", {"to": "bob@example.com", "subject": "Hi", "body": "x"}),
            result("Email sent to bob@example.com with subject 'Hi'."),
        )
    )
    assert sent.content == "Done: Email sent to bob@example.com with subject 'Hi'."
    rejected = demo_responder(
        request(
            user("email bob@example.com"),
            called("send_email", {"to": "bob@example.com", "subject": "Hi", "body": "x"}),
            result("User rejected the tool call for `send_email` with reason: not now"),
        )
    )
    assert rejected.content.startswith("I did not send the email to bob@example.com.")


def test_other_messages_get_a_plain_answer_that_says_it_is_the_demo_model() -> None:
    reply = demo_responder(request(user("hello")))
    assert not reply.tool_calls
    assert DEMO_LABEL in reply.content and "hello" in reply.content
    assert "weather in Boston" in reply.content and "bob@example.com" in reply.content
    assert DEMO_LABEL in demo_responder(request(user("hi"), tools=[])).content


def test_deterministic() -> None:
    conversation = request(user("ask an expert: which database should we use?"))
    assert demo_responder(conversation) == demo_responder(conversation)


# ---- driving the example graphs through the real ChatOpenAI HTTP path ---------------------------------


@pytest.fixture
async def demo(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(responder=demo_responder) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-demo")
        monkeypatch.delenv("OPENAI_MODEL", raising=False)
        reset_model_clients()
        yield server
    reset_model_clients()


def config() -> RunnableConfig:
    return {"configurable": {"thread_id": str(uuid4())}}


def with_memory(graph: Pregel) -> Pregel:
    return graph.copy(update={"checkpointer": InMemorySaver()})


def last_ai(values: Any) -> str:
    messages = values["messages"] if isinstance(values, dict) else values
    return next(m.text for m in reversed(messages) if isinstance(m, AIMessage) and m.text)


async def test_drives_the_assistant_weather_and_question(demo: FakeOpenAI) -> None:
    from graphs import assistant

    graph, cfg = with_memory(assistant.graph), config()
    out = await graph.ainvoke({"messages": [("user", "what's the weather in Boston?")]}, cfg)
    assert last_ai(out) == "**Weather in Boston:** It's rainy!"

    cfg = config()
    await graph.ainvoke({"messages": [("user", "ask an expert: which database should we use?")]}, cfg)
    (pending,) = (await graph.aget_state(cfg)).interrupts
    assert pending.value == {"query": "which database should we use?"}
    out = await graph.ainvoke(Command(resume={pending.id: {"data": "PostgreSQL"}}), cfg)
    assert last_ai(out) == "A person answered: “PostgreSQL”"


async def test_drives_an_approval_gated_email(demo: FakeOpenAI) -> None:
    from graphs import approvals

    graph, cfg = with_memory(approvals.graph), config()
    await graph.ainvoke({"messages": [("user", "send an email to bob@example.com about lunch")]}, cfg)
    (pending,) = (await graph.aget_state(cfg)).interrupts
    (action,) = pending.value["action_requests"]
    assert action["name"] == "send_email" and action["args"]["to"] == "bob@example.com"
    out = await graph.ainvoke(Command(resume={pending.id: {"decisions": [{"type": "approve"}]}}), cfg)
    assert last_ai(out) == "Done: Email sent to bob@example.com with subject 'Lunch'."


async def test_drives_the_chatbot_and_the_react_agent(demo: FakeOpenAI) -> None:
    from graphs import chatbot, react_agent

    graph, cfg = with_memory(chatbot.graph), config()
    await graph.ainvoke({"messages": [("user", "ask an expert: how do I build an agent? And weather in SF?")]}, cfg)
    (pending,) = (await graph.aget_state(cfg)).interrupts
    assert pending.value == {"query": "how do I build an agent?"}
    assert demo.requests[-1].body.get("parallel_tool_calls") is False

    agent, cfg = with_memory(react_agent.agent), config()
    await agent.ainvoke([("user", "ask a human: what should I feed my cat? And the weather in San Francisco?")], cfg)
    (pending,) = (await agent.aget_state(cfg)).interrupts
    assert pending.value == {"query": "what should I feed my cat?"}
    out = await agent.ainvoke(Command(resume={pending.id: "fish"}), cfg)
    assert out.text == "A person answered: “fish”\n**Weather in San Francisco:** It's sunny!"


def test_replies_are_plain_data() -> None:
    reply = demo_responder(request(user("hello")))
    assert isinstance(reply, Reply) and reply.status == 200
