"""The LangGraph Server runtime: the same turns and resumes, run by a LangGraph Server through langgraph-sdk.

`LANGGRAPH_URL` names the server (LangGraph Platform, a self-hosted `langgraph-api`, or `langgraph dev`);
`LANGGRAPH_ASSISTANT_ID` the assistant or graph. The server keeps the checkpoints; the bot keeps its own
records (conversations, requests, jobs) in its database as usual.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import LangGraphError

from bot.errors import GraphError
from bot.interrupts.values import as_json
from bot.rules.graphs import NO_OPTIONS, GraphOptions
from bot.runner import (
    BREAKPOINT,
    NO_RESULT,
    PAUSE,
    Delta,
    InputRule,
    Outcome,
    PendingInterrupt,
    Runners,
    Sink,
    Trace,
    already_said,
    breakpoint_value,
    derive_input_rule,
)
from bot.slack.files import user_message

log = logging.getLogger(__name__)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content.strip()
    if isinstance(content, list):
        return "".join(p.get("text", "") if isinstance(p, Mapping) else str(p) for p in content).strip()
    return str(content or "").strip()


def _delta(data: Any) -> Delta | None:
    """The text an AI message chunk adds, from a `messages-tuple` event: `[message, metadata]`."""
    if not isinstance(data, Sequence) or len(data) != 2 or not isinstance(data[0], Mapping):
        return None
    message, metadata = data[0], data[1] if isinstance(data[1], Mapping) else {}
    if message.get("type") != "AIMessageChunk" or not message.get("id"):
        return None
    content = message.get("content")
    if isinstance(content, list):
        text = "".join(p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type") == "text")
    else:
        text = content if isinstance(content, str) else ""
    last = message.get("chunk_position") == "last"
    if not text and not last:
        return None
    node = metadata.get("langgraph_node")
    return Delta(str(message["id"]), text, str(node) if node else None, last)


def _messages(values: Any) -> list[Mapping[str, Any]]:
    if isinstance(values, Mapping) and isinstance(values.get("messages"), list):
        values = values["messages"]
    if isinstance(values, Mapping) and values.get("type"):
        return [values]
    if isinstance(values, list):
        return [m for m in values if isinstance(m, Mapping) and m.get("type")]
    return []


class RemoteRunner:
    """Runs one assistant of a LangGraph Server: `runs.wait` for each turn, the thread's state for the rest."""

    def __init__(self, client: LangGraphClient, assistant: str, options: GraphOptions = NO_OPTIONS) -> None:
        self.client = client
        self.assistant = assistant
        self.assistant_id: str | None = None
        self.rule = InputRule("text")
        self.options = options

    async def setup(self) -> None:
        """Find the assistant (by id or graph name) and derive the input rule from its input schema."""
        if self.assistant_id is not None:
            return
        found = await self.client.assistants.search(graph_id=self.assistant, limit=1)
        if found:
            self.assistant_id = str(found[0]["assistant_id"])
        else:
            self.assistant_id = str((await self.client.assistants.get(self.assistant))["assistant_id"])
        schemas = await self.client.assistants.get_schemas(self.assistant_id)
        # A server that can't make the input schema (a `typing.TypedDict` state on Python < 3.12) sends null:
        # its state schema names the same fields.
        self.rule = derive_input_rule(dict(schemas.get("input_schema") or schemas.get("state_schema") or {}))

    async def start(
        self,
        thread_id: str,
        text: str,
        files: Sequence[Mapping[str, Any]] = (),
        *,
        trace: Trace | None = None,
        sink: Sink | None = None,
    ) -> Any:
        await self.setup()
        await self.client.threads.create(thread_id=thread_id, if_exists="do_nothing")
        graph_input = self.rule.build(text, user_message(text, files), files)
        return await self._run(thread_id, input=graph_input, trace=trace, sink=sink)

    async def checkpoint(self, thread_id: str) -> str | None:
        await self.client.threads.create(thread_id=thread_id, if_exists="do_nothing")
        state = await self.client.threads.get_state(thread_id)
        checkpoint = state.get("checkpoint") or {}
        return str(checkpoint.get("checkpoint_id") or "") or None

    async def settle(self, thread_id: str) -> None:
        """A run the server accepted goes on after the job that asked for it died: wait for it to end."""
        for status in ("running", "pending"):
            for run in await self.client.runs.list(thread_id, status=status, limit=20):
                await self.client.runs.join(thread_id, run["run_id"])

    async def resume(
        self, thread_id: str, interrupt_id: str, value: Any, *, trace: Trace | None = None, sink: Sink | None = None
    ) -> Any:
        await self.setup()
        if interrupt_id.startswith(BREAKPOINT):
            node, _, tool_call_id = interrupt_id.removeprefix(BREAKPOINT).partition(":")
            if not tool_call_id.startswith(PAUSE):
                content = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                tool_message = {"type": "tool", "tool_call_id": tool_call_id, "content": content}
                await self.client.threads.update_state(thread_id, {"messages": [tool_message]}, as_node=node)
            return await self._run(thread_id, input=None, trace=trace, sink=sink)
        return await self._run(thread_id, command={"resume": {interrupt_id: value}}, trace=trace, sink=sink)

    async def unfinished(self, thread_id: str) -> bool:
        # The server runs the graph: a bot process that dies doesn't cut a run short.
        return False

    async def proceed(self, thread_id: str, *, trace: Trace | None = None, sink: Sink | None = None) -> Any:
        return NO_RESULT

    async def _run(
        self,
        thread_id: str,
        *,
        input: Any = None,
        command: Any = None,
        trace: Trace | None = None,
        sink: Sink | None = None,
    ) -> Any:
        """Stream the run: AI text goes to `sink` as the server sends it (`messages-tuple`); the return value is
        what `runs.wait` gives (the last values, with `__interrupt__` when it stopped on interrupts)."""
        assert self.assistant_id is not None
        modes: list[Any] = ["messages-tuple", "values"] if sink is not None else ["values"]
        latest: Any = None
        async for part in self.client.runs.stream(
            thread_id,
            self.assistant_id,
            input=input,
            command=command,
            stream_mode=modes,
            multitask_strategy="enqueue",
            durability="sync",
            interrupt_before=self._breakpoints(),
            metadata=trace.metadata() if trace else None,
            config={"tags": trace.tags()} if trace else None,
        ):
            if part.event == "values":
                latest = part.data
            elif part.event == "error":
                # As `runs.wait` raises it.
                error = part.data if isinstance(part.data, Mapping) else {}
                raise Exception(f"{error.get('error')}: {error.get('message')}")
            elif part.event == "messages" and sink is not None:
                delta = _delta(part.data)
                try:
                    if delta is not None:
                        await sink(delta)
                except Exception:
                    log.exception("showing the text of message %s failed; the run goes on", delta and delta.message_id)
        return latest

    def _breakpoints(self) -> Any:
        before = self.options.interrupt_before
        return "*" if before == "*" else (list(before) or None)

    async def outcome(self, thread_id: str, *, since: str | None, result: Any = NO_RESULT) -> Outcome:
        seen: set[Any] = set()
        if since is not None:
            before = await self.client.threads.get_state(thread_id, checkpoint_id=since)
            seen = {m.get("id") for m in _messages(before.get("values"))}
        after = await self.client.threads.get_state(thread_id)
        if result is NO_RESULT:
            result = after.get("values")
        interrupts = self._pending(after, result)
        new = [m for m in _messages(after.get("values")) if m.get("type") == "ai" and m.get("id") not in seen]
        replies = [_text(m.get("content")) for m in new if _text(m.get("content"))]
        finished = not interrupts and not after.get("next")
        if isinstance(result, dict):
            result = {k: v for k, v in result.items() if k != "__interrupt__"}
        return Outcome(
            replies=replies,
            result=result if finished else None,
            finished=finished,
            interrupts=interrupts,
            show_result=not already_said(result, {m.get("id") for m in new}, set(replies)),
            reply_ids=[m.get("id") for m in new if _text(m.get("content"))],
        )

    def _pending(self, state: Mapping[str, Any], result: Any) -> list[PendingInterrupt]:
        schemas: dict[str, Any] = {}
        sources: dict[str, str] = {}
        raised = result.get("__interrupt__") if isinstance(result, Mapping) else None
        for task in state.get("tasks") or []:
            for pending in task.get("interrupts") or []:
                sources[pending.get("id")] = task.get("name")
                if pending.get("response_schema"):
                    schemas[pending["id"]] = pending["response_schema"]
        for pending in raised or []:
            if isinstance(pending, Mapping) and pending.get("response_schema"):
                schemas[pending["id"]] = pending["response_schema"]
        interrupts = [
            PendingInterrupt(str(i["id"]), as_json(i.get("value")), schemas.get(i["id"]), sources.get(i["id"]))
            for i in state.get("interrupts") or []
        ]
        if interrupts or not state.get("next"):
            return interrupts
        # Stopped with nodes due and no interrupt: a breakpoint (`interrupt_before`, compiled in or set per run).
        last = next((m for m in reversed(_messages(state.get("values"))) if m.get("type") == "ai"), None)
        checkpoint_id = (state.get("checkpoint") or {}).get("checkpoint_id")
        return [breakpoint_value(str(state["next"][0]), last, checkpoint_id)]


async def remote_runners(
    url: str, assistant: str, api_key: str | None, *, options: Mapping[str, GraphOptions] | None = None
) -> Runners:
    """Runners on a LangGraph Server; checks at start-up that it answers and has the assistant."""
    client = get_client(url=url, api_key=api_key)
    options = options or {}
    runners = Runners(assistant, lambda name: RemoteRunner(client, name, options.get(name, NO_OPTIONS)))
    default = RemoteRunner(client, assistant, options.get(assistant, NO_OPTIONS))
    try:
        await default.setup()
    except (httpx.HTTPError, LangGraphError) as exc:
        raise GraphError(
            "LANGGRAPH_URL",
            f"({url}) did not answer for assistant {assistant!r}",
            f"check the server is up and LANGGRAPH_ASSISTANT_ID names one of its graphs or assistants ({exc})",
        ) from None
    except ValueError as exc:
        problem = f"names {assistant!r}, whose input can't take a message"
        raise GraphError("LANGGRAPH_ASSISTANT_ID", problem, str(exc)) from None
    runners.add(assistant, default)
    return runners
