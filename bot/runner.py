"""Running the graph: what a Slack message becomes as graph input, and what a run leaves to show."""

from __future__ import annotations

import importlib
import json
import logging
import typing
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import StateGraph
from langgraph.pregel import Pregel
from langgraph.types import Command, Interrupt, StateSnapshot

from bot.errors import GraphError
from bot.interrupts.values import as_json
from bot.rules.graphs import NO_OPTIONS, GraphOptions
from bot.slack.files import content_blocks, for_graph, with_sections

InputShape = Literal["messages_key", "message_list", "text", "field"]
log = logging.getLogger(__name__)


BREAKPOINT = "breakpoint:"
PAUSE = "@"
"""A breakpoint id's tail after the node: a tool call id, or PAUSE and the checkpoint (no tool call to answer)."""
NO_RESULT: Any = object()
"""`outcome` reads the result from the saved state when the run's own return value is not at hand."""
INTERRUPT = "__interrupt__"


@dataclass(frozen=True)
class PendingInterrupt:
    interrupt_id: str
    value: Any
    schema: dict[str, Any] | None = None
    source: str | None = None
    """The node or task that raised it (e.g. "tools")."""


@dataclass(frozen=True)
class Outcome:
    """What one run leaves: new AI replies, the result when the graph finished, and pending interrupts."""

    replies: list[str] = field(default_factory=list)
    result: Any = None
    finished: bool = False
    interrupts: list[PendingInterrupt] = field(default_factory=list)
    show_result: bool = True
    """False when the result is only the reply already in `replies` (an entrypoint returning its last message)."""
    reply_ids: list[str | None] = field(default_factory=list)
    """The message id of each of `replies` (same order): a reply streamed while it was written is that message."""


@dataclass(frozen=True)
class Delta:
    """A piece of an AI message's text as the model writes it (LangGraph's `messages` stream)."""

    message_id: str
    text: str
    node: str | None = None
    last: bool = False
    """The model finished this message."""


Sink = Callable[[Delta], Awaitable[None]]
"""Receives the deltas of a run while it goes (bot/flow/streams.py shows them in Slack); it must not block."""


@dataclass(frozen=True)
class Trace:
    """Where a run comes from in Slack. It goes with every run as LangSmith metadata, tags and a run name, so a
    trace is found from a thread (filter on `slack_thread_ts`) and a thread from a trace (`slack_url`)."""

    team_id: str
    channel_id: str
    thread_ts: str
    user_id: str | None = None
    kind: str = "turn"
    """"turn" for a message, "resume" for an answer."""

    @property
    def run_name(self) -> str:
        return f"Slack {self.kind} in {self.channel_id} (thread {self.thread_ts})"

    def metadata(self) -> dict[str, Any]:
        return {
            "slack_team_id": self.team_id,
            "slack_channel_id": self.channel_id,
            "slack_thread_ts": self.thread_ts,
            "slack_user_id": self.user_id,
            "slack_run_kind": self.kind,
            "slack_url": f"https://app.slack.com/client/{self.team_id}/{self.channel_id}/thread/"
            f"{self.channel_id}-{self.thread_ts}",
        }

    def tags(self) -> list[str]:
        tags = ["slack", f"slack:{self.kind}", f"slack:team:{self.team_id}", f"slack:channel:{self.channel_id}"]
        tags.append(f"slack:thread:{self.thread_ts}")
        return [*tags, f"slack:user:{self.user_id}"] if self.user_id else tags


@dataclass(frozen=True)
class InputRule:
    """How a Slack message becomes graph input, derived from the graph's input JSON schema."""

    shape: InputShape
    field_name: str | None = None

    @property
    def conversational(self) -> bool:
        return self.shape in ("messages_key", "message_list")

    def build(self, text: str, message: Any = None, files: Sequence[Mapping[str, Any]] = ()) -> Any:
        """The graph input for `text` and the files shared with it (see bot.slack.files); `message` is the user
        message to use (default: a HumanMessage: with files, their content blocks and `additional_kwargs["files"]`).
        """
        if message is None and files:
            extra = {"files": [for_graph(f) for f in files]}
            message = HumanMessage(content=content_blocks(text, files), additional_kwargs=extra)
        message = HumanMessage(content=text) if message is None else message
        if self.shape == "messages_key":
            return {"messages": [message]}
        if self.shape == "message_list":
            return [message]
        if self.shape == "field":
            return {self.field_name: with_sections(text, files)}
        return with_sections(text, files)


def derive_input_rule(schema: dict[str, Any]) -> InputRule:
    """The documented rule, first match wins:

    1. an object with a `messages` property → `{"messages": [user message]}`;
    2. an array → `[user message]`;
    3. an object with exactly one required property (or exactly one property) → `{that_property: text}`;
    4. a string, or no declared type → the text itself.
    """
    kind = schema.get("type")
    properties: dict[str, Any] = schema.get("properties") or {}
    if kind == "object" or properties:
        if "messages" in properties:
            return InputRule("messages_key")
        required = list(schema.get("required") or [])
        candidates = required if len(required) == 1 else list(properties)
        if len(candidates) == 1:
            return InputRule("field", candidates[0])
        raise ValueError(
            f"its input has the fields {', '.join(sorted(properties))}: give it a `messages` field, "
            "or exactly one required field for the message text"
        )
    if kind == "array":
        return InputRule("message_list")
    return InputRule("text")


def _typed_schema(schema: Any) -> dict[str, Any] | None:
    """The fields of a TypedDict/dataclass/Pydantic state read from its annotations, without Pydantic's schema
    generation (which refuses `typing.TypedDict` on Python < 3.12)."""
    if not isinstance(schema, type):
        return None
    try:
        hints = typing.get_type_hints(schema)
    except Exception:
        hints = dict(getattr(schema, "__annotations__", {}) or {})
    if not hints:
        return None
    required = getattr(schema, "__required_keys__", None)
    return {"type": "object", "properties": {name: {} for name in hints}, "required": sorted(required or [])}


def input_schema(graph: Pregel) -> dict[str, Any]:
    """The graph's input JSON schema; when LangGraph can't make one, its input or state type's fields, else its
    state channels (as a LangGraph Server falls back to the state schema)."""
    try:
        return dict(graph.get_input_jsonschema())
    except Exception:
        pass
    builder = getattr(graph, "builder", None)
    for schema in (getattr(builder, "input_schema", None), getattr(builder, "state_schema", None)):
        found = _typed_schema(schema)
        if found is not None:
            return found
    channels = [c for c in getattr(graph, "stream_channels_list", []) if not c.startswith("__")]
    return {"type": "object", "properties": {c: {} for c in channels}} if channels else {}


def load_graph(spec: str) -> Pregel:
    """Import `module:attribute`; a StateGraph builder is compiled. Errors name BOT_GRAPH."""
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise GraphError("BOT_GRAPH", f"names module {module_name!r}, which can't be imported", str(exc)) from None
    target = getattr(module, attribute, None)
    if target is None:
        raise GraphError("BOT_GRAPH", f"names {attribute!r}, which {module_name} does not define", spec)
    if isinstance(target, StateGraph):
        target = target.compile()
    if not isinstance(target, Pregel):
        raise GraphError(
            "BOT_GRAPH", f"names a {type(target).__name__}", "point it at a compiled graph or an @entrypoint"
        )
    return target


def _messages_of(values: Any) -> list[BaseMessage]:
    if isinstance(values, BaseMessage):
        return [values]
    if isinstance(values, dict):
        values = values.get("messages")
    if isinstance(values, Sequence) and not isinstance(values, str):
        return [m for m in values if isinstance(m, BaseMessage)]
    return []


def _schema(pending: Interrupt) -> dict[str, Any] | None:
    schema = getattr(pending, "response_schema", None)
    return schema if isinstance(schema, dict) else None


def already_said(result: Any, ids: set[Any], texts: set[str]) -> bool:
    """True when the result is only messages the replies already show (by id, or by the same text)."""
    items = result if isinstance(result, list) else [result]
    if not items:
        return False
    for item in items:
        text: str | None
        if isinstance(item, AIMessage):
            message_id, text = item.id, _reply_text(item)
        elif isinstance(item, Mapping) and item.get("type") in ("ai", "AIMessageChunk"):
            content = item.get("content")
            message_id, text = item.get("id"), content.strip() if isinstance(content, str) else None
        else:
            return False
        if not ((message_id is not None and message_id in ids) or (text and text in texts)):
            return False
    return True


def breakpoint_value(node: str, last_ai: Mapping[str, Any] | None, checkpoint_id: str | None) -> PendingInterrupt:
    """A stop before an `interrupt_before` node: asked as the question of the model's tool call (the seeds' ask-human
    pattern: the answer becomes that call's tool message), or, with no tool call, as a pause to let go on."""
    calls = list((last_ai or {}).get("tool_calls") or [])
    if calls:
        args = calls[0].get("args") or {}
        question = args.get("question") if isinstance(args.get("question"), str) else json.dumps(as_json(args))
        value = {"type": "breakpoint", "node": node, "question": question, "tool": calls[0].get("name")}
        return PendingInterrupt(f"{BREAKPOINT}{node}:{calls[0].get('id')}", value)
    question = f"The agent paused before the step `{node}`. Reply (anything) to let it carry on."
    value = {"type": "breakpoint", "node": node, "question": question, "tool": None}
    return PendingInterrupt(f"{BREAKPOINT}{node}:{PAUSE}{checkpoint_id or ''}", value)


def _reply_text(message: AIMessage) -> str:
    return message.text.strip() if isinstance(message.text, str) else str(message.text).strip()


def _delta(message: Any, metadata: Any) -> Delta | None:
    """The text an AI message chunk adds (none for tool-call pieces, whole messages or other messages)."""
    if not isinstance(message, AIMessageChunk) or not message.id:
        return None
    text = message.text if isinstance(message.text, str) else str(message.text)
    last = message.chunk_position == "last"
    if not text and not last:
        return None
    node = metadata.get("langgraph_node") if isinstance(metadata, Mapping) else None
    return Delta(message.id, text, str(node) if node else None, last)


class Runner(Protocol):
    """Runs a graph; each run returns the graph's own result, and `outcome` reads what it left to show.

    `checkpoint` names where a thread stands, so a retried job can tell whether its run began, finished or was
    cut short, and `outcome(since=...)` shows what changed since then, whichever process ran it.
    """

    rule: InputRule

    async def start(
        self,
        thread_id: str,
        text: str,
        files: Sequence[Mapping[str, Any]] = (),
        *,
        trace: Trace | None = None,
        sink: Sink | None = None,
    ) -> Any: ...

    async def resume(
        self, thread_id: str, interrupt_id: str, value: Any, *, trace: Trace | None = None, sink: Sink | None = None
    ) -> Any: ...

    async def proceed(self, thread_id: str, *, trace: Trace | None = None, sink: Sink | None = None) -> Any: ...

    async def checkpoint(self, thread_id: str) -> str | None: ...

    async def settle(self, thread_id: str) -> None:
        """Wait for a run another process started on this thread to end (a server's run outlives our job)."""
        ...

    async def outcome(self, thread_id: str, *, since: str | None, result: Any = NO_RESULT) -> Outcome: ...

    async def unfinished(self, thread_id: str) -> bool: ...


class LocalRunner:
    """Runs a compiled graph in this process with the Postgres checkpointer attached."""

    def __init__(
        self,
        graph: Pregel,
        checkpointer: BaseCheckpointSaver[Any],
        spec: str = "",
        options: GraphOptions = NO_OPTIONS,
    ) -> None:
        self.graph = graph.copy(update={"checkpointer": checkpointer})
        try:
            self.rule = derive_input_rule(input_schema(graph))
        except ValueError as exc:
            raise GraphError(
                "BOT_GRAPH", f"names {spec or 'a graph'} whose input can't take a message", str(exc)
            ) from None
        unknown = [n for n in options.interrupt_before if n != "*" and n not in graph.nodes]
        if options.interrupt_before != "*" and unknown:
            raise GraphError(
                "BOT_CONFIG",
                f"has interrupt_before = {unknown} for {spec or 'a graph'}, which has no such node",
                f"its nodes are {', '.join(n for n in graph.nodes if not n.startswith('__'))}",
            )
        self.breakpoints = options.nodes(graph.interrupt_before_nodes)

    def _config(self, thread_id: str, checkpoint_id: str | None = None, trace: Trace | None = None) -> RunnableConfig:
        configurable = {"thread_id": thread_id}
        if checkpoint_id:
            configurable["checkpoint_id"] = checkpoint_id
        config: RunnableConfig = {"configurable": configurable, "recursion_limit": 50}
        if trace is not None:
            config["metadata"] = trace.metadata()
            config["tags"] = trace.tags()
            config["run_name"] = trace.run_name
        return config

    async def start(
        self,
        thread_id: str,
        text: str,
        files: Sequence[Mapping[str, Any]] = (),
        *,
        trace: Trace | None = None,
        sink: Sink | None = None,
    ) -> Any:
        return await self._run(thread_id, self.rule.build(text, files=files), trace, sink)

    async def checkpoint(self, thread_id: str) -> str | None:
        state = await self.graph.aget_state(self._config(thread_id))
        checkpoint_id = (state.config or {}).get("configurable", {}).get("checkpoint_id")
        return str(checkpoint_id) if checkpoint_id else None

    async def settle(self, thread_id: str) -> None:
        # In process, a run ends with the job that ran it.
        return None

    async def resume(
        self, thread_id: str, interrupt_id: str, value: Any, *, trace: Trace | None = None, sink: Sink | None = None
    ) -> Any:
        if interrupt_id.startswith(BREAKPOINT):
            return await self._answer_breakpoint(thread_id, interrupt_id, value, trace, sink)
        return await self._run(thread_id, Command(resume={interrupt_id: value}), trace, sink)

    async def unfinished(self, thread_id: str) -> bool:
        """True when a run was cut short: nodes are due and nothing waits for a person."""
        state = await self.graph.aget_state(self._config(thread_id))
        return bool(state.next) and not state.interrupts and not self._breakpoints(state)

    async def proceed(self, thread_id: str, *, trace: Trace | None = None, sink: Sink | None = None) -> Any:
        """Carry on a run that was cut short, from its last checkpoint."""
        return await self._run(thread_id, None, trace, sink)

    async def _answer_breakpoint(
        self, thread_id: str, interrupt_id: str, value: Any, trace: Trace | None, sink: Sink | None
    ) -> Any:
        """The seed's pattern: the answer becomes the tool message, applied as the human node, then continue."""
        node, _, tool_call_id = interrupt_id.removeprefix(BREAKPOINT).partition(":")
        if not tool_call_id.startswith(PAUSE):
            content = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            update = {"messages": [ToolMessage(content=content, tool_call_id=tool_call_id)]}
            await self.graph.aupdate_state(self._config(thread_id), update, as_node=node)
        return await self._run(thread_id, None, trace, sink)

    def _breakpoints(self, state: StateSnapshot) -> list[PendingInterrupt]:
        """A stop before an `interrupt_before` node (compiled in, or set for this graph in BOT_CONFIG)."""
        stops = [node for node in state.next if "*" in self.breakpoints or node in self.breakpoints]
        if not stops or state.interrupts:
            return []
        last = next((m for m in reversed(_messages_of(state.values)) if isinstance(m, AIMessage)), None)
        checkpoint_id = (state.config or {}).get("configurable", {}).get("checkpoint_id")
        return [breakpoint_value(stops[0], {"tool_calls": last.tool_calls} if last else None, checkpoint_id)]

    async def _run(self, thread_id: str, graph_input: Any, trace: Trace | None = None, sink: Sink | None = None) -> Any:
        """Stream the run: AI text goes to `sink` as it is written; the return value is `ainvoke`'s (the last
        values, with `__interrupt__` when the run stopped on interrupts)."""
        # "sync": each step's checkpoint is written before the next step starts, so a step that finished is never
        # run again after a crash (a side effect such as a sent email happens once).
        modes: list[Any] = ["messages", "updates", "values"] if sink is not None else ["updates", "values"]
        latest: Any = None
        interrupts: list[Interrupt] = []
        async for mode, payload in self.graph.astream(
            graph_input,
            self._config(thread_id, trace=trace),
            stream_mode=modes,
            output_keys=self.graph.output_channels,
            durability="sync",
            interrupt_before="*" if "*" in self.breakpoints else (self.breakpoints or None),
        ):
            if mode == "messages" and sink is not None:
                delta = _delta(*payload)
                try:
                    if delta is not None:
                        await sink(delta)
                except Exception:
                    log.exception("showing the text of message %s failed; the run goes on", delta and delta.message_id)
            elif mode == "updates" and isinstance(payload, dict) and payload.get(INTERRUPT) is not None:
                interrupts.extend(payload[INTERRUPT])
            elif mode == "values":
                latest = payload
        if interrupts:
            return {**latest, INTERRUPT: interrupts} if isinstance(latest, dict) else {INTERRUPT: interrupts}
        return latest

    async def outcome(self, thread_id: str, *, since: str | None, result: Any = NO_RESULT) -> Outcome:
        """The new AI replies since checkpoint `since`, the result if the graph finished, and what it waits on."""
        seen: set[str | None] = set()
        if since is not None:
            before = await self.graph.aget_state(self._config(thread_id, since))
            seen = {m.id for m in _messages_of(before.values)}
        after = await self.graph.aget_state(self._config(thread_id))
        sources = {i.id: task.name for task in after.tasks for i in task.interrupts}
        interrupts = [PendingInterrupt(i.id, as_json(i.value), _schema(i), sources.get(i.id)) for i in after.interrupts]
        interrupts += self._breakpoints(after)
        new = [m for m in _messages_of(after.values) if isinstance(m, AIMessage) and m.id not in seen]
        replies = [_reply_text(m) for m in new if _reply_text(m)]
        finished = not interrupts and not after.next
        if result is NO_RESULT:
            result = after.values
        if isinstance(result, dict):
            result = {k: v for k, v in result.items() if k != INTERRUPT}
        return Outcome(
            replies=replies,
            result=result if finished else None,
            finished=finished,
            interrupts=interrupts,
            show_result=not already_said(result, {m.id for m in new}, set(replies)),
            reply_ids=[m.id for m in new if _reply_text(m)],
        )


class Runners:
    """The runner of each graph a conversation may use, made on first use by `factory`; `default` is BOT_GRAPH
    (or, with a LangGraph Server, LANGGRAPH_ASSISTANT_ID)."""

    def __init__(self, default: str, factory: Callable[[str], Runner]) -> None:
        self.default = default
        self._factory = factory
        self._runners: dict[str, Runner] = {}

    def add(self, spec: str, runner: Runner) -> None:
        self._runners[spec] = runner

    def get(self, spec: str | None = None) -> Runner:
        spec = spec or self.default
        runner = self._runners.get(spec)
        if runner is None:
            runner = self._factory(spec)
            self._runners[spec] = runner
        return runner


def local_runners(
    default: str, checkpointer: BaseCheckpointSaver[Any], *, options: Mapping[str, GraphOptions] | None = None
) -> Runners:
    """Graphs imported by `module:attribute` and run in this process with the Postgres checkpointer."""
    options = options or {}

    def make(spec: str) -> LocalRunner:
        return LocalRunner(load_graph(spec), checkpointer, spec, options.get(spec, NO_OPTIONS))

    runners = Runners(default, make)
    runners.add(default, make(default))
    return runners
