"""The example graphs reproduce the LangGraph human-in-the-loop docs, against FakeOpenAI."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.pregel import Pregel
from langgraph.types import Command, Interrupt

from bot.dev.fake_openai import FakeOpenAI, Reply, ToolCall
from graphs import assistant, chatbot, feedback_workflow, react_agent, revise_text
from graphs._model import chat_model
from tests.support.models import reset_model_clients

REPO = Path(__file__).resolve().parents[1]

CAT_QUESTION = (
    "Can you reach out for human assistance: what should I feed my cat? "
    "Separately, can you check the weather in San Francisco?"
)
CAT_ANSWER = "You should feed your cat a fish."
EXPERT_REQUEST = "I need some expert guidance for building an AI agent. Could you request assistance for me?"
EXPERT_QUERY = (
    "A user is requesting expert guidance for building an AI agent. "
    "Could you please provide some expert advice or resources on this topic?"
)
EXPERT_ANSWER = (
    "We, the experts are here to help! We'd recommend you check out LangGraph to build your agent."
    " It's much more reliable and extensible than simple autonomous agents."
)


@pytest.fixture
async def fake_openai(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        for name in ("OPENAI_API_BASE", "OPENAI_MODEL", "LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2"):
            monkeypatch.delenv(name, raising=False)
        reset_model_clients()
        yield server
    reset_model_clients()


def with_memory(graph: Pregel) -> Pregel:
    return graph.copy(update={"checkpointer": InMemorySaver()})


def thread() -> RunnableConfig:
    return {"configurable": {"thread_id": str(uuid4())}}


def interrupt_values(interrupts: Any) -> list[Any]:
    assert all(isinstance(i, Interrupt) for i in interrupts)
    return [i.value for i in interrupts]


async def updates(graph: Pregel, value: Any, config: RunnableConfig) -> list[dict[str, Any]]:
    return [chunk async for chunk in graph.astream(value, config, stream_mode="updates")]


@pytest.mark.parametrize(
    "graph",
    [feedback_workflow.graph, revise_text.graph, chatbot.graph, react_agent.agent, assistant.graph],
    ids=["feedback_workflow", "revise_text", "chatbot", "react_agent", "assistant"],
)
def test_graphs_have_no_checkpointer_and_copy_attaches_one(graph: Pregel) -> None:
    copy = with_memory(graph)

    assert graph.checkpointer is None
    assert isinstance(copy.checkpointer, InMemorySaver)
    assert type(copy) is type(graph)
    assert copy.nodes.keys() == graph.nodes.keys()


def test_graph_kinds() -> None:
    assert type(feedback_workflow.graph) is Pregel
    assert type(react_agent.agent) is Pregel
    for graph in (revise_text.graph, chatbot.graph, assistant.graph):
        assert isinstance(graph, CompiledStateGraph)


def test_input_json_schemas() -> None:
    assert feedback_workflow.graph.get_input_jsonschema()["type"] == "string"
    assert react_agent.agent.get_input_jsonschema()["type"] == "array"
    revise = revise_text.graph.get_input_jsonschema()
    assert revise["type"] == "object"
    assert revise["properties"]["some_text"]["type"] == "string"
    for graph in (chatbot.graph, assistant.graph):
        schema = graph.get_input_jsonschema()
        assert schema["type"] == "object"
        assert schema["properties"]["messages"]["type"] == "array"


def test_importing_graphs_needs_no_api_key() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    code = (
        "import graphs.assistant, graphs.chatbot, graphs.feedback_workflow, graphs.react_agent, "
        "graphs.revise_text, graphs.approvals, graphs.ask_human\n"
        "from graphs._model import chat_model\n"
        "assert chat_model.cache_info().currsize == 0\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


def test_chat_model_reads_model_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_MODEL", "gpt-test-model")
    reset_model_clients()
    try:
        assert chat_model().model_name == "gpt-test-model"
        assert chat_model() is chat_model()
        monkeypatch.delenv("OPENAI_MODEL")
        reset_model_clients()
        assert chat_model().model_name == "gpt-4o-mini"
    finally:
        reset_model_clients()


def test_langgraph_json_points_at_the_graphs() -> None:
    config = json.loads((REPO / "langgraph.json").read_text())

    assert config["dependencies"] == ["."]
    assert set(config["graphs"]) == {
        "assistant",
        "chatbot",
        "react_agent",
        "feedback_workflow",
        "revise_text",
        "approvals",
        "ask_human",
    }
    for name, spec in config["graphs"].items():
        path, attr = spec.split(":")
        spec_obj = importlib.util.spec_from_file_location(f"_langgraph_json_{name}", REPO / path)
        assert spec_obj is not None and spec_obj.loader is not None
        module = importlib.util.module_from_spec(spec_obj)
        spec_obj.loader.exec_module(module)
        assert isinstance(getattr(module, attr), Pregel), name


async def test_feedback_workflow_seed_transcript(fake_openai: FakeOpenAI) -> None:
    graph = with_memory(feedback_workflow.graph)
    config = thread()

    first = await updates(graph, "foo", config)

    assert first[0] == {"step_1": "foo bar"}
    assert list(first[1]) == ["__interrupt__"]
    assert interrupt_values(first[1]["__interrupt__"]) == ["Please provide feedback: foo bar"]
    state = await graph.aget_state(config)
    assert interrupt_values(state.interrupts) == ["Please provide feedback: foo bar"]
    assert state.interrupts[0].id == first[1]["__interrupt__"][0].id

    second = await updates(graph, Command(resume="baz"), config)

    assert second == [
        {"human_feedback": "foo bar baz"},
        {"step_3": "foo bar baz qux"},
        {"graph": "foo bar baz qux"},
    ]
    assert (await graph.aget_state(config)).interrupts == ()
    assert fake_openai.requests == []


async def test_feedback_workflow_with_ainvoke() -> None:
    graph = with_memory(feedback_workflow.graph)
    config = thread()

    paused = await graph.ainvoke("foo", config)

    assert interrupt_values(paused["__interrupt__"]) == ["Please provide feedback: foo bar"]
    assert await graph.ainvoke(Command(resume="baz"), config) == "foo bar baz qux"


async def test_revise_text_seed_transcript() -> None:
    graph = with_memory(revise_text.graph)
    config = thread()

    paused = await graph.ainvoke({"some_text": "original text"}, config)

    assert paused["some_text"] == "original text"
    assert interrupt_values(paused["__interrupt__"]) == [{"text_to_revise": "original text"}]
    state = await graph.aget_state(config)
    assert state.next == ("human_node",)
    assert interrupt_values(state.interrupts) == [{"text_to_revise": "original text"}]

    assert await graph.ainvoke(Command(resume="Edited text"), config) == {"some_text": "Edited text"}


async def test_chatbot_seed_transcript(fake_openai: FakeOpenAI) -> None:
    fake_openai.reply(
        Reply(
            content="Certainly! I'll request expert assistance for you.",
            tool_calls=[ToolCall("human_assistance", {"query": EXPERT_QUERY})],
        ),
        Reply(content="The experts recommend LangGraph for building your agent."),
    )
    graph = with_memory(chatbot.graph)
    config = thread()

    paused = await graph.ainvoke({"messages": [{"role": "user", "content": EXPERT_REQUEST}]}, config)

    assert interrupt_values(paused["__interrupt__"]) == [{"query": EXPERT_QUERY}]
    snapshot = await graph.aget_state(config)
    assert snapshot.next == ("tools",)
    last = snapshot.values["messages"][-1]
    assert isinstance(last, AIMessage)
    assert [(c["name"], c["args"]) for c in last.tool_calls] == [("human_assistance", {"query": EXPERT_QUERY})]

    done = await graph.ainvoke(Command(resume={"data": EXPERT_ANSWER}), config)

    human, ai, tool_message, final = done["messages"]
    assert isinstance(human, HumanMessage) and human.content == EXPERT_REQUEST
    assert isinstance(tool_message, ToolMessage)
    assert (tool_message.name, tool_message.content) == ("human_assistance", EXPERT_ANSWER)
    assert tool_message.tool_call_id == ai.tool_calls[0]["id"]
    assert final.content == "The experts recommend LangGraph for building your agent."
    first, second = fake_openai.requests
    assert first.tool_names == ["get_weather", "human_assistance"]
    assert first.body["parallel_tool_calls"] is False
    assert second.tool_messages[0]["content"] == EXPERT_ANSWER
    assert (await graph.aget_state(config)).next == ()


async def test_chatbot_weather_without_interrupt(fake_openai: FakeOpenAI) -> None:
    fake_openai.reply(
        Reply(tool_calls=[ToolCall("get_weather", {"location": "Boston"})]),
        Reply(content="It's rainy in Boston."),
    )
    graph = with_memory(chatbot.graph)

    result = await graph.ainvoke({"messages": [{"role": "user", "content": "Weather in Boston?"}]}, thread())

    assert "__interrupt__" not in result
    assert [m.content for m in result["messages"][2:]] == ["It's rainy!", "It's rainy in Boston."]
    assert fake_openai.requests[1].tool_messages[0]["content"] == "It's rainy!"


async def test_chatbot_keeps_only_the_first_of_several_tool_calls(fake_openai: FakeOpenAI) -> None:
    fake_openai.reply(
        Reply(
            tool_calls=[
                ToolCall("get_weather", {"location": "sf"}),
                ToolCall("human_assistance", {"query": "Anything else?"}),
            ]
        ),
        Reply(content="It's sunny in SF."),
    )
    graph = with_memory(chatbot.graph)

    result = await graph.ainvoke({"messages": [{"role": "user", "content": "sf weather, and ask"}]}, thread())

    assert "__interrupt__" not in result
    ai = result["messages"][1]
    assert [c["name"] for c in ai.tool_calls] == ["get_weather"]
    assert fake_openai.requests[1].messages[1]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert len(fake_openai.requests[1].messages[1]["tool_calls"]) == 1


async def test_react_agent_seed_transcript(fake_openai: FakeOpenAI) -> None:
    fake_openai.reply(
        Reply(
            tool_calls=[
                ToolCall("human_assistance", {"query": "What should I feed my cat?"}),
                ToolCall("get_weather", {"location": "San Francisco"}),
            ]
        ),
        Reply(
            content="For human assistance, you should feed your cat fish.\n\nRegarding the weather in "
            "San Francisco, it's sunny!"
        ),
    )
    graph = with_memory(react_agent.agent)
    config = thread()

    first = await updates(graph, [{"role": "user", "content": CAT_QUESTION}], config)

    assert list(first[0]) == ["call_model"]
    assert sorted(list(step) for step in first[1:]) == [["__interrupt__"], ["call_tool"]]
    [weather] = [step["call_tool"] for step in first if "call_tool" in step]
    assert isinstance(weather, ToolMessage)
    assert (weather.name, weather.content) == ("get_weather", "It's sunny!")
    [paused] = [step["__interrupt__"] for step in first if "__interrupt__" in step]
    assert interrupt_values(paused) == [{"query": "What should I feed my cat?"}]
    state = await graph.aget_state(config)
    assert interrupt_values(state.interrupts) == [{"query": "What should I feed my cat?"}]
    assert len(fake_openai.requests) == 1

    second = await updates(graph, Command(resume={"data": CAT_ANSWER}), config)

    assert [list(step) for step in second] == [["call_tool"], ["call_model"], ["agent"]]
    human_tool = second[0]["call_tool"]
    assert (human_tool.name, human_tool.content) == ("human_assistance", CAT_ANSWER)
    final = second[2]["agent"]
    assert isinstance(final, AIMessage) and final.content.endswith("it's sunny!")
    second_request = fake_openai.requests[1]
    assert [m["content"] for m in second_request.tool_messages] == [CAT_ANSWER, "It's sunny!"]
    assert second_request.tool_names == ["get_weather", "human_assistance"]


async def test_react_agent_remembers_the_thread(fake_openai: FakeOpenAI) -> None:
    fake_openai.reply(Reply(content="Hello!"), Reply(content="You said hi."))
    graph = with_memory(react_agent.agent)
    config = thread()

    first = await graph.ainvoke([{"role": "user", "content": "hi"}], config)
    second = await graph.ainvoke([{"role": "user", "content": "what did I say?"}], config)

    assert (first.content, second.content) == ("Hello!", "You said hi.")
    assert [(m["role"], m["content"]) for m in fake_openai.requests[1].messages] == [
        ("user", "hi"),
        ("assistant", "Hello!"),
        ("user", "what did I say?"),
    ]
    state = await graph.aget_state(config)
    assert isinstance(state.values, AIMessage) and state.values.content == "You said hi."
    checkpoint = await graph.checkpointer.aget(config)
    assert checkpoint is not None
    saved = checkpoint["channel_values"]["__previous__"]
    assert [m.content for m in saved] == ["hi", "Hello!", "what did I say?", "You said hi."]


async def test_assistant_asks_a_human_and_keeps_parallel_results(fake_openai: FakeOpenAI) -> None:
    fake_openai.reply(
        Reply(
            tool_calls=[
                ToolCall("human_assistance", {"query": "What should I feed my cat?"}),
                ToolCall("get_weather", {"location": "San Francisco"}),
            ]
        ),
        Reply(content="Feed your cat fish; it's sunny in San Francisco."),
    )
    graph = with_memory(assistant.graph)
    config = thread()

    await graph.ainvoke({"messages": [{"role": "user", "content": CAT_QUESTION}]}, config)

    state = await graph.aget_state(config)
    assert interrupt_values(state.interrupts) == [{"query": "What should I feed my cat?"}]
    request = fake_openai.requests[0]
    assert request.messages[0]["role"] == "system"
    assert "Slack" in request.system_text and "human_assistance" in request.system_text
    assert sorted(request.tool_names) == ["get_weather", "human_assistance", "send_email"]

    await graph.ainvoke(Command(resume={state.interrupts[0].id: {"data": CAT_ANSWER}}), config)

    assert sorted(m["content"] for m in fake_openai.requests[1].tool_messages) == sorted([CAT_ANSWER, "It's sunny!"])
    assert len(fake_openai.requests) == 2
    done = await graph.aget_state(config)
    assert done.next == ()
    messages = done.values["messages"]
    assert not any(isinstance(m, SystemMessage) for m in messages)
    assert messages[-1].content == "Feed your cat fish; it's sunny in San Francisco."


async def test_assistant_plain_answer(fake_openai: FakeOpenAI) -> None:
    fake_openai.reply(Reply(content="Hi! How can I help?"))
    graph = with_memory(assistant.graph)

    result = await graph.ainvoke({"messages": [{"role": "user", "content": "hello"}]}, thread())

    assert [m.content for m in result["messages"]] == ["hello", "Hi! How can I help?"]
    assert "__interrupt__" not in result
