"""An OpenAI-compatible chat completions server on loopback, scripted per test.

The real ``langchain_openai.ChatOpenAI`` (and the ``openai`` SDK under it) talks to
this server over HTTP exactly as it would talk to api.openai.com, so tests exercise
the real request/response path, tool calls and streaming included::

    server = FakeOpenAI()
    await server.start()
    server.reply(Reply(content="hi"))
    model = ChatOpenAI(base_url=server.base_url, api_key="sk-test", model="gpt-4o-mini")
    assert (await model.ainvoke("hello")).content == "hi"
    await server.stop()

Replies queued with :meth:`FakeOpenAI.reply` are consumed in order; when the queue is
empty the :attr:`FakeOpenAI.responder` callback (if any) is asked. A request that gets
no reply is answered with HTTP 500 naming the request, so a failing test says why.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import itertools
import json
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web

__all__ = ["ChatRequest", "FakeOpenAI", "Reply", "Responder", "ToolCall", "echo_responder"]

_ERROR_TYPES: Mapping[int, tuple[str, str]] = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "permission_denied"),
    404: ("invalid_request_error", "model_not_found"),
    409: ("invalid_request_error", "conflict"),
    422: ("invalid_request_error", "unprocessable_entity"),
    429: ("requests", "rate_limit_exceeded"),
    503: ("server_error", "service_unavailable"),
}


@dataclass(frozen=True)
class ToolCall:
    """A tool call the fake model makes; ``id`` is generated (``call_<n>``) when None."""

    name: str
    args: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None


@dataclass(frozen=True)
class Reply:
    """One scripted answer of the fake model.

    ``status`` other than 200 answers with an OpenAI-style error body carrying
    ``error`` as its message. ``delay`` seconds pass before anything is sent;
    ``chunk_delay`` seconds pass between streamed chunks. ``headers`` are added to
    the HTTP response (e.g. ``{"x-should-retry": "false"}`` or ``retry-after-ms``).
    """

    content: str = ""
    tool_calls: Sequence[ToolCall] = ()
    delay: float = 0.0
    status: int = 200
    error: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    chunk_delay: float = 0.0
    pieces: int = 3
    """How many streamed chunks the content is cut into (words stay whole)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "tool_calls", tuple(self.tool_calls))

    @property
    def finish_reason(self) -> str:
        """``"tool_calls"`` when the reply calls tools, else ``"stop"``."""
        return "tool_calls" if self.tool_calls else "stop"


@dataclass(frozen=True)
class ChatRequest:
    """A chat completion request as received; ``number`` counts from 1 per server."""

    number: int
    body: Mapping[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def model(self) -> str:
        """The ``model`` the client asked for."""
        return str(self.body.get("model", ""))

    @property
    def stream(self) -> bool:
        """Whether the client asked for a server-sent-events stream."""
        return bool(self.body.get("stream", False))

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The request's messages, as the JSON dicts the client sent."""
        return list(self.body.get("messages", []))

    @property
    def tools(self) -> list[dict[str, Any]]:
        """The tools offered to the model, as sent (``{"type": "function", ...}``)."""
        return list(self.body.get("tools") or [])

    @property
    def tool_names(self) -> list[str]:
        """Names of the function tools offered to the model."""
        return [t["function"]["name"] for t in self.tools if isinstance(t.get("function"), dict)]

    @property
    def tool_messages(self) -> list[dict[str, Any]]:
        """The ``role == "tool"`` messages, in order."""
        return [m for m in self.messages if m.get("role") == "tool"]

    @property
    def system_text(self) -> str:
        """Text of the system (or developer) messages, joined by newlines."""
        return "\n".join(message_text(m) for m in self.messages if m.get("role") in ("system", "developer"))

    @property
    def last_user_text(self) -> str:
        """Text of the last ``role == "user"`` message, or ``""`` when there is none."""
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return message_text(message)
        return ""

    @property
    def api_key(self) -> str | None:
        """The bearer token the client sent, if any."""
        auth = self.headers.get("Authorization") or self.headers.get("authorization") or ""
        return auth.removeprefix("Bearer ").strip() or None


Responder = Callable[[ChatRequest], Reply | Awaitable[Reply | None] | None]
"""Called for a request when no queued reply is left; may be async; None means no reply."""


def message_text(message: Mapping[str, Any]) -> str:
    """The text of an OpenAI chat message whose content is a string or a list of parts."""
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(
        str(part.get("text", "")) for part in content if isinstance(part, dict) and part.get("type") == "text"
    )


def echo_responder(request: ChatRequest) -> Reply:
    """A responder that answers ``echo: <last user message>``."""
    return Reply(content=f"echo: {request.last_user_text}")


def _pieces(text: str, parts: int = 3) -> list[str]:
    """Split ``text`` into at most ``parts`` consecutive non-empty pieces."""
    if not text:
        return []
    words = re.findall(r"\S+\s*|\s+", text)
    if len(words) < parts:
        size = max(1, -(-len(text) // parts))
        return [text[i : i + size] for i in range(0, len(text), size)]
    per = -(-len(words) // parts)
    return ["".join(words[i : i + per]) for i in range(0, len(words), per)]


def _count_tokens(text: str) -> int:
    return len(text.split())


class FakeOpenAI:
    """An aiohttp server speaking enough of the OpenAI API for ``ChatOpenAI``.

    Endpoints: ``POST /v1/chat/completions`` (plain or ``stream: true``) and
    ``GET /v1/models``. Every chat request is recorded in :attr:`requests`.
    Usable as ``async with FakeOpenAI() as server: ...``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        responder: Responder | None = None,
        models: Sequence[str] = ("gpt-4o-mini",),
    ) -> None:
        self.host = host
        self.port = port
        self.responder: Responder | None = responder
        self.models: tuple[str, ...] = tuple(models)
        self.requests: list[ChatRequest] = []
        self._queue: deque[Reply] = deque()
        self._call_ids: Iterator[int] = itertools.count(1)
        self._completion_ids: Iterator[int] = itertools.count(1)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` of the running server."""
        if self._runner is None:
            raise RuntimeError("FakeOpenAI is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI ``base_url`` to give clients: :attr:`url` + ``/v1``."""
        return f"{self.url}/v1"

    @property
    def pending(self) -> int:
        """How many queued replies have not been consumed yet."""
        return len(self._queue)

    def reply(self, *replies: Reply) -> None:
        """Queue replies, consumed one per request in order."""
        self._queue.extend(replies)

    def clear(self) -> None:
        """Forget queued replies and recorded requests."""
        self._queue.clear()
        self.requests.clear()

    async def start(self) -> None:
        """Bind and serve; with ``port=0`` the chosen port is then in :attr:`port`."""
        if self._runner is not None:
            return
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat_completions)
        app.router.add_get("/v1/models", self._list_models)
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self.port = int(runner.addresses[0][1])
        self._runner = runner

    async def stop(self) -> None:
        """Stop serving and close open connections."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> FakeOpenAI:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _next_reply(self, request: ChatRequest) -> Reply | None:
        if self._queue:
            return self._queue.popleft()
        if self.responder is None:
            return None
        result = self.responder(request)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def _list_models(self, _: web.Request) -> web.Response:
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake-openai"} for m in self.models]
        return web.json_response({"object": "list", "data": data})

    async def _chat_completions(self, http_request: web.Request) -> web.StreamResponse:
        try:
            body = await http_request.json()
        except json.JSONDecodeError as exc:
            return _error_response(400, f"FakeOpenAI: request body is not JSON: {exc}")
        if not isinstance(body, dict):
            return _error_response(400, "FakeOpenAI: request body must be a JSON object")
        request = ChatRequest(number=len(self.requests) + 1, body=body, headers=dict(http_request.headers))
        self.requests.append(request)
        reply = await self._next_reply(request)
        if reply is None:
            text = request.last_user_text
            problem = f"FakeOpenAI: no scripted reply for request #{request.number} (last user message: {text[:200]!r})"
            return _error_response(500, problem, {"x-should-retry": "false"})
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.status != 200:
            return _error_response(reply.status, reply.error or f"FakeOpenAI: scripted {reply.status}", reply.headers)
        tool_calls = [
            {
                "id": call.id or f"call_{next(self._call_ids)}",
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(dict(call.args))},
            }
            for call in reply.tool_calls
        ]
        completion_id = f"chatcmpl-fake{next(self._completion_ids)}"
        usage = _usage(request, reply, tool_calls)
        if request.stream:
            return await self._stream(http_request, request, reply, tool_calls, completion_id, usage)
        message: dict[str, Any] = {"role": "assistant", "content": reply.content or None, "refusal": None}
        if tool_calls:
            message["tool_calls"] = tool_calls
        elif message["content"] is None:
            message["content"] = ""
        payload = {
            "id": completion_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": reply.finish_reason}],
            "usage": usage,
        }
        return web.json_response(payload, headers=dict(reply.headers))

    async def _stream(
        self,
        http_request: web.Request,
        request: ChatRequest,
        reply: Reply,
        tool_calls: list[dict[str, Any]],
        completion_id: str,
        usage: dict[str, Any],
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            status=200,
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", **reply.headers},
        )
        await response.prepare(http_request)
        created = int(time.time())

        def chunk(delta: dict[str, Any] | None, finish_reason: str | None = None) -> dict[str, Any]:
            choices = (
                []
                if delta is None
                else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
            )
            return {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": request.model,
                "system_fingerprint": "fp_fake",
                "choices": choices,
            }

        chunks = [chunk({"role": "assistant", "content": "", "refusal": None})]
        chunks += [chunk({"content": piece}) for piece in _pieces(reply.content, reply.pieces)]
        for index, call in enumerate(tool_calls):
            function = call["function"]
            head = {
                "index": index,
                "id": call["id"],
                "type": "function",
                "function": {"name": function["name"], "arguments": ""},
            }
            chunks.append(chunk({"tool_calls": [head]}))
            chunks += [
                chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
                for piece in _pieces(function["arguments"])
            ]
        chunks.append(chunk({}, reply.finish_reason))
        options = request.body.get("stream_options") or {}
        if isinstance(options, dict) and options.get("include_usage"):
            chunks.append({**chunk(None), "usage": usage})
        for i, data in enumerate(chunks):
            if i and reply.chunk_delay:
                await asyncio.sleep(reply.chunk_delay)
            await response.write(f"data: {json.dumps(data)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def _usage(request: ChatRequest, reply: Reply, tool_calls: list[dict[str, Any]]) -> dict[str, Any]:
    prompt = sum(_count_tokens(message_text(m)) + 3 for m in request.messages)
    completion = _count_tokens(reply.content) + sum(
        _count_tokens(c["function"]["name"] + " " + c["function"]["arguments"]) for c in tool_calls
    )
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    error_type, code = _ERROR_TYPES.get(status, ("server_error", "server_error"))
    body = {"error": {"message": message, "type": error_type, "param": None, "code": code}}
    return web.json_response(body, status=status, headers=dict(headers or {}))


async def _serve_forever(host: str, port: int) -> None:
    server = FakeOpenAI(host=host, port=port, responder=echo_responder)
    await server.start()
    print(f"FakeOpenAI listening on {server.base_url} (echo responder); Ctrl-C to stop", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m bot.dev.fake_openai --port 8100``: serve with the echo responder."""
    parser = argparse.ArgumentParser(description="OpenAI-compatible fake chat server that echoes.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(args.host, args.port))


if __name__ == "__main__":
    main()
