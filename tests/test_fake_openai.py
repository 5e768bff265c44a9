"""The fake OpenAI server, exercised through the real ChatOpenAI and openai clients."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from bot.dev.fake_openai import ChatRequest, FakeOpenAI, Reply, ToolCall, echo_responder, message_text

REPO = Path(__file__).resolve().parents[1]


@tool
def get_weather(location: str) -> str:
    """Call to get the weather from a specific location."""
    return "It's sunny!"


@tool
def human_assistance(query: str) -> str:
    """Request assistance from a human."""
    return "a human answer"


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(host="127.0.0.1", port=0) as fake:
        yield fake


def model_for(server: FakeOpenAI, **kwargs: object) -> ChatOpenAI:
    params: dict[str, object] = {"max_retries": 0, **kwargs}
    return ChatOpenAI(base_url=server.base_url, api_key="sk-test", model="gpt-4o-mini", **params)


async def test_urls_and_port(server: FakeOpenAI) -> None:
    assert server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}"
    assert server.base_url == server.url + "/v1"


async def test_url_needs_start() -> None:
    fake = FakeOpenAI()
    with pytest.raises(RuntimeError, match="not started"):
        _ = fake.url


async def test_invoke_returns_content_and_records_request(server: FakeOpenAI) -> None:
    server.reply(Reply(content="hi there"))

    result = await model_for(server).ainvoke([HumanMessage("hello")])

    assert isinstance(result, AIMessage)
    assert result.content == "hi there"
    assert result.tool_calls == []
    assert result.response_metadata["finish_reason"] == "stop"
    assert result.usage_metadata is not None and result.usage_metadata["total_tokens"] > 0
    [request] = server.requests
    assert request.number == 1
    assert request.model == "gpt-4o-mini"
    assert request.stream is False
    assert request.messages == [{"role": "user", "content": "hello"}]
    assert request.last_user_text == "hello"
    assert request.api_key == "sk-test"
    assert server.pending == 0


async def test_replies_are_consumed_in_order(server: FakeOpenAI) -> None:
    server.reply(Reply(content="one"), Reply(content="two"))
    model = model_for(server)

    first = await model.ainvoke("a")
    second = await model.ainvoke("b")

    assert (first.content, second.content) == ("one", "two")
    assert [r.last_user_text for r in server.requests] == ["a", "b"]
    assert [r.number for r in server.requests] == [1, 2]


async def test_astream_sends_content_in_pieces(server: FakeOpenAI) -> None:
    text = "The weather in San Francisco is sunny today."
    server.reply(Reply(content=text))

    chunks = [chunk async for chunk in model_for(server).astream("weather?")]

    pieces = [c.content for c in chunks if c.content]
    assert len(pieces) >= 2
    assert "".join(str(p) for p in pieces) == text
    assert server.requests[0].stream is True


async def test_astream_reports_usage_when_asked(server: FakeOpenAI) -> None:
    server.reply(Reply(content="counted words here"))
    full: AIMessageChunk | None = None

    async for chunk in model_for(server, stream_usage=True).astream("count"):
        full = chunk if full is None else full + chunk

    assert full is not None and full.content == "counted words here"
    assert full.usage_metadata is not None
    assert full.usage_metadata["output_tokens"] == 3
    assert server.requests[0].body["stream_options"] == {"include_usage": True}


async def test_bind_tools_parses_tool_calls(server: FakeOpenAI) -> None:
    server.reply(
        Reply(
            tool_calls=[
                ToolCall("get_weather", {"location": "sf"}),
                ToolCall("human_assistance", {"query": "What should I feed my cat?"}, id="call_cat"),
            ]
        )
    )
    model = model_for(server).bind_tools([get_weather, human_assistance])

    result = await model.ainvoke("weather in sf, and ask a human about my cat")

    assert isinstance(result, AIMessage)
    assert [(c["name"], c["args"], c["id"]) for c in result.tool_calls] == [
        ("get_weather", {"location": "sf"}, "call_1"),
        ("human_assistance", {"query": "What should I feed my cat?"}, "call_cat"),
    ]
    assert result.response_metadata["finish_reason"] == "tool_calls"
    assert server.requests[0].tool_names == ["get_weather", "human_assistance"]


async def test_streamed_tool_calls_are_reassembled(server: FakeOpenAI) -> None:
    server.reply(
        Reply(
            content="Checking.",
            tool_calls=[
                ToolCall("get_weather", {"location": "San Francisco, California"}),
                ToolCall("get_weather", {"location": "Boston"}),
            ],
        )
    )
    model = model_for(server).bind_tools([get_weather])
    full: AIMessageChunk | None = None

    async for chunk in model.astream("two cities"):
        full = chunk if full is None else full + chunk

    assert full is not None
    assert full.content == "Checking."
    assert [(c["name"], c["args"]) for c in full.tool_calls] == [
        ("get_weather", {"location": "San Francisco, California"}),
        ("get_weather", {"location": "Boston"}),
    ]
    assert [c["id"] for c in full.tool_calls] == ["call_1", "call_2"]


async def test_tool_messages_are_recorded_on_the_next_request(server: FakeOpenAI) -> None:
    server.reply(Reply(tool_calls=[ToolCall("get_weather", {"location": "sf"})]), Reply(content="Sunny."))
    model = model_for(server).bind_tools([get_weather], parallel_tool_calls=False)
    question = HumanMessage("weather in sf?")

    ai = await model.ainvoke([question])
    assert isinstance(ai, AIMessage)
    observation = await get_weather.ainvoke(ai.tool_calls[0])
    assert isinstance(observation, ToolMessage)
    final = await model.ainvoke([question, ai, observation])

    assert final.content == "Sunny."
    first, second = server.requests
    assert first.body["parallel_tool_calls"] is False
    assert second.tool_messages == [{"role": "tool", "content": "It's sunny!", "tool_call_id": "call_1"}]
    assert second.messages[1]["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": '{"location": "sf"}',
    }


async def test_server_error_raises_openai_error(server: FakeOpenAI) -> None:
    server.reply(Reply(status=500, error="the model fell over"))

    with pytest.raises(openai.InternalServerError, match="the model fell over") as info:
        await model_for(server).ainvoke("hi")

    assert info.value.status_code == 500
    assert isinstance(info.value.body, dict) and info.value.body["type"] == "server_error"


async def test_rate_limit_raises_rate_limit_error(server: FakeOpenAI) -> None:
    server.reply(Reply(status=429, error="slow down"))

    with pytest.raises(openai.RateLimitError, match="slow down") as info:
        await model_for(server).ainvoke("hi")

    assert isinstance(info.value.body, dict) and info.value.body["code"] == "rate_limit_exceeded"


async def test_streaming_request_error_raises(server: FakeOpenAI) -> None:
    server.reply(Reply(status=401, error="bad key"))

    with pytest.raises(openai.AuthenticationError, match="bad key"):
        async for _ in model_for(server).astream("hi"):
            pass


async def test_client_retries_a_scripted_failure(server: FakeOpenAI) -> None:
    server.reply(Reply(status=503, error="busy", headers={"retry-after-ms": "1"}), Reply(content="recovered"))

    result = await model_for(server, max_retries=1).ainvoke("hi")

    assert result.content == "recovered"
    assert len(server.requests) == 2


async def test_missing_reply_is_a_clear_500_without_retries(server: FakeOpenAI) -> None:
    model = model_for(server, max_retries=2)

    with pytest.raises(openai.InternalServerError) as info:
        await model.ainvoke("what is unscripted?")

    assert "FakeOpenAI: no scripted reply for request #1 (last user message: 'what is unscripted?')" in str(info.value)
    assert len(server.requests) == 1


async def test_responder_answers_when_queue_is_empty(server: FakeOpenAI) -> None:
    seen: list[ChatRequest] = []

    def respond(request: ChatRequest) -> Reply:
        seen.append(request)
        return Reply(content=f"you said {request.last_user_text}")

    server.reply(Reply(content="queued first"))
    server.responder = respond
    model = model_for(server)

    assert (await model.ainvoke("a")).content == "queued first"
    assert (await model.ainvoke("b")).content == "you said b"
    assert [r.number for r in seen] == [2]


async def test_async_responder_and_none_means_no_reply(server: FakeOpenAI) -> None:
    async def respond(request: ChatRequest) -> Reply | None:
        return Reply(content="async") if request.last_user_text == "known" else None

    server.responder = respond
    model = model_for(server)

    assert (await model.ainvoke("known")).content == "async"
    with pytest.raises(openai.InternalServerError, match="no scripted reply for request #2"):
        await model.ainvoke("unknown")


async def test_delay_can_trip_the_client_timeout(server: FakeOpenAI) -> None:
    server.reply(Reply(content="too late", delay=2.0))

    with pytest.raises(openai.APITimeoutError):
        await model_for(server, timeout=0.2).ainvoke("hurry")


async def test_list_models(server: FakeOpenAI) -> None:
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
    try:
        models = await client.models.list()
    finally:
        await client.close()

    assert [m.id for m in models.data] == ["gpt-4o-mini"]


async def test_raw_openai_client_sees_chat_completion_fields(server: FakeOpenAI) -> None:
    server.reply(Reply(tool_calls=[ToolCall("get_weather", {"location": "Boston"})]))
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
    try:
        completion = await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "boston?"}]
        )
    finally:
        await client.close()

    assert completion.object == "chat.completion"
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.role == "assistant"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert (call.function.name, call.function.arguments) == ("get_weather", '{"location": "Boston"}')
    assert completion.usage is not None


def test_reply_and_request_helpers() -> None:
    reply = Reply(tool_calls=[ToolCall("get_weather", {"location": "sf"})])
    assert reply.tool_calls == (ToolCall("get_weather", {"location": "sf"}),)
    assert reply.finish_reason == "tool_calls"
    assert Reply(content="x").finish_reason == "stop"
    request = ChatRequest(
        number=1,
        body={
            "messages": [
                {"role": "system", "content": "be nice"},
                {"role": "user", "content": [{"type": "text", "text": "first "}, {"type": "text", "text": "part"}]},
                {"role": "tool", "content": "42", "tool_call_id": "call_1"},
            ],
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}],
        },
    )
    assert request.last_user_text == "first part"
    assert request.system_text == "be nice"
    assert request.tool_messages == [{"role": "tool", "content": "42", "tool_call_id": "call_1"}]
    assert request.tool_names == ["get_weather"]
    assert request.stream is False
    assert request.api_key is None
    assert message_text({"role": "assistant", "content": None}) == ""
    assert echo_responder(request).content == "echo: first part"


async def test_clear_forgets_replies_and_requests(server: FakeOpenAI) -> None:
    server.reply(Reply(content="a"), Reply(content="b"))
    await model_for(server).ainvoke("x")
    assert server.pending == 1

    server.clear()

    assert server.pending == 0
    assert server.requests == []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_cli_serves_an_echo_model() -> None:
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.dev.fake_openai",
        "--port",
        str(port),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), timeout=30)).decode()
        assert f"http://127.0.0.1:{port}/v1" in line
        model = ChatOpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-test", model="gpt-4o-mini", max_retries=0
        )
        result = await model.ainvoke("ping")
        assert result.content == "echo: ping"
    finally:
        if proc.returncode is None:
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), timeout=10)
        except TimeoutError:
            proc.kill()
            await proc.wait()
