"""One runner for both runtimes: a graph run through LangGraph's `PregelProtocol`, a compiled graph in this
process (bot/runners/local.py) or `RemoteGraph` for a LangGraph Server (bot/runners/server.py).

Streaming AI text to a sink, breakpoints (`interrupt_before`), tracing, `durability="sync"` and working out what
a run left since a checkpoint are written once, here; the runtimes only find their graph and input rule.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.pregel.protocol import PregelProtocol
from langgraph.types import All, Command, StateSnapshot

from bot.errors import GraphError
from bot.interrupts.values import as_json
from bot.runners.inputs import InputRule
from bot.runners.outcomes import (
    BREAKPOINT,
    INTERRUPT,
    NO_RESULT,
    PAUSE,
    TOOLS_CALLED,
    Outcome,
    PendingInterrupt,
    Sink,
    Trace,
    already_said,
    breakpoint_value,
    called_tools,
    delta,
    field_of,
    is_ai,
    message_ids,
    messages_of,
    new_ai_messages,
    response_schema,
)

log = logging.getLogger(__name__)

REMEMBERED = 1024
"""Checkpoints whose messages a runner keeps from `checkpoint` for `outcome` (one per run under way)."""


class Runner(Protocol):
    """Runs a graph; each run returns the graph's own result, and `outcome` reads what it left to show.

    `checkpoint` names where a thread stands, so a retried job can tell whether its run began, finished or was
    cut short, and `outcome(since=...)` shows what changed since then, whichever process ran it.
    """

    rule: InputRule
    checkpoints_in_db: bool

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


def _checkpoint_id(state: StateSnapshot) -> str | None:
    checkpoint_id = ((state.config or {}).get("configurable") or {}).get("checkpoint_id")
    return str(checkpoint_id) if checkpoint_id else None


class GraphRunner:
    """Runs one graph, in process or on a server, through the same `PregelProtocol` calls.

    `stops_at` names the nodes a stop before which is a breakpoint ("*": any); `interrupt_before` is what each
    run is asked to stop before (the deployment's breakpoints, BOT_CONFIG).
    """

    tools_from_stream = False
    """Whether the tools the model calls are told (`TOOLS_CALLED`) from the run's stream: for a graph whose tool
    callbacks this process can't see (on a server); in process the callbacks say more (a tool's `slack_status`)."""
    checkpoints_in_db = False
    """Whether the thread's checkpoints are in our database (LangGraph's Postgres tables beside our own rows), so the
    job's first read can tell where the thread stands (`bot.records.conversations.checkpoint_join`)."""
    seen_from_stream = False
    """Whether a run's first streamed values hold the whole `messages` channel as it stood when the run began (in
    process, when the output channels include it): then `outcome` needs no read of the state it began from."""

    def __init__(
        self,
        graph: PregelProtocol,
        rule: InputRule,
        *,
        stops_at: Sequence[str],
        interrupt_before: All | Sequence[str] | None,
    ) -> None:
        self.graph = graph
        self.rule = rule
        self.stops_at = list(stops_at)
        self.interrupt_before = interrupt_before
        self._seen: OrderedDict[tuple[str, str], set[Any]] = OrderedDict()
        self._began: OrderedDict[str, tuple[Any, set[Any], bool]] = OrderedDict()

    # what a runtime adds

    def _message(self, text: str, files: Sequence[Mapping[str, Any]]) -> Any:
        """The user message for `text` (None: the input rule's HumanMessage)."""
        return None

    def _tool_message(self, content: str, tool_call_id: str) -> Any:
        return ToolMessage(content=content, tool_call_id=tool_call_id)

    def _run_options(self, trace: Trace | None) -> dict[str, Any]:
        """Keyword arguments for `astream` only one runtime takes."""
        return {}

    async def _state(self, thread_id: str, checkpoint_id: str | None = None) -> StateSnapshot:
        return await self.graph.aget_state(self._config(thread_id, checkpoint_id))

    async def settle(self, thread_id: str) -> None:
        # In process, a run ends with the job that ran it.
        return None

    # runs

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
        graph_input = self.rule.build(text, self._message(text, files), files)
        return await self._run(thread_id, graph_input, trace, sink, began=True)

    async def resume(
        self, thread_id: str, interrupt_id: str, value: Any, *, trace: Trace | None = None, sink: Sink | None = None
    ) -> Any:
        if not interrupt_id.startswith(BREAKPOINT):
            return await self._run(thread_id, Command(resume={interrupt_id: value}), trace, sink, began=True)
        # The seeds' pattern: the answer becomes the tool call's message, applied as the node, then on it goes.
        node, _, tool_call_id = interrupt_id.removeprefix(BREAKPOINT).partition(":")
        if not tool_call_id.startswith(PAUSE):
            content = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            update = {"messages": [self._tool_message(content, tool_call_id)]}
            await self.graph.aupdate_state(self._config(thread_id), update, as_node=node)
        return await self._run(thread_id, None, trace, sink, began=True)

    async def proceed(self, thread_id: str, *, trace: Trace | None = None, sink: Sink | None = None) -> Any:
        """Carry on a run that was cut short, from its last checkpoint."""
        return await self._run(thread_id, None, trace, sink)

    async def _run(
        self,
        thread_id: str,
        graph_input: Any,
        trace: Trace | None = None,
        sink: Sink | None = None,
        *,
        began: bool = False,
    ) -> Any:
        """Stream the run: AI text goes to `sink` as it is written; the return value is `ainvoke`'s (the last
        values, with `__interrupt__` when the run stopped on interrupts). With `began` (a run from where the
        thread stood when the job found it: not one carried on after a crash), the messages of its first values
        are kept for `outcome`, as those it began with (`seen_from_stream`)."""
        modes: list[Any] = ["messages", "updates", "values"] if sink is not None else ["updates", "values"]
        latest: Any = None
        first: set[Any] | None = None
        interrupts: list[Any] = []
        stopped = False
        self._began.pop(thread_id, None)
        # "sync": each step's checkpoint is written before the next step starts, so a step that finished is never
        # run again after a crash (a side effect such as a sent email happens once). Not in PregelProtocol's
        # signature, but both Pregel.astream and RemoteGraph.astream (to `runs.stream`) take it.
        options: dict[str, Any] = {"durability": "sync", **self._run_options(trace)}
        async for part in self.graph.astream(
            graph_input,
            self._config(thread_id, trace=trace),
            stream_mode=modes,
            interrupt_before=self.interrupt_before,
            **options,
        ):
            # (mode, payload) in process; RemoteGraph's parts carry an event id after them.
            mode, payload = part[0], part[1]
            if mode == "messages" and sink is not None:
                piece = delta(*payload)
                try:
                    if piece is not None:
                        await sink(piece)
                except Exception:
                    log.exception("showing the text of message %s failed; the run goes on", piece and piece.message_id)
            elif mode == "updates" and isinstance(payload, dict) and INTERRUPT in payload:
                # Empty for a stop at a breakpoint (interrupt_before/after): a stop all the same.
                stopped = True
                interrupts.extend(payload[INTERRUPT] or ())
            elif mode == "updates" and self.tools_from_stream and (told := TOOLS_CALLED.get()) is not None:
                for name in called_tools(payload)[:1]:
                    told(name)
            elif mode == "values":
                if latest is None and isinstance(payload, Mapping):
                    # The first values: the state the run began from (LangGraph emits it before any node runs,
                    # for new input, a resume and a run carried on alike). No `messages` yet: none seen.
                    first = message_ids(payload) if "messages" in payload else set()
                latest = payload
        result = latest
        if interrupts:
            result = {**latest, INTERRUPT: interrupts} if isinstance(latest, dict) else {INTERRUPT: interrupts}
        if began and self.seen_from_stream and first is not None and result is not None:
            # Kept with the result it goes with: `outcome` uses it only for that very result. A run whose stream
            # ended without a stop (no `__interrupt__` update, not even the empty one of a breakpoint) ran until
            # no task was due: in process, LangGraph ends a stream any other way only by raising (an error, the
            # recursion limit), and with "sync" durability its last checkpoint is written before the stream ends.
            self._began[thread_id] = (result, first, not stopped)
            while len(self._began) > REMEMBERED:
                self._began.popitem(last=False)
        return result

    # what a run left

    async def checkpoint(self, thread_id: str) -> str | None:
        """Where the thread stands. Its messages are kept for `outcome(since=...)`, which then reads the state
        once (a retried job in another process reads the checkpoint again)."""
        state = await self._state(thread_id)
        checkpoint_id = _checkpoint_id(state)
        if checkpoint_id is not None:
            self._seen[(thread_id, checkpoint_id)] = message_ids(state.values)
            while len(self._seen) > REMEMBERED:
                self._seen.popitem(last=False)
        return checkpoint_id

    async def _seen_at(self, thread_id: str, since: str | None) -> set[Any]:
        if since is None:
            return set()
        seen = self._seen.pop((thread_id, since), None)
        return message_ids((await self._state(thread_id, since)).values) if seen is None else seen

    async def unfinished(self, thread_id: str) -> bool:
        """True when a run was cut short: nodes are due and nothing waits for a person."""
        state = await self._state(thread_id)
        return bool(state.next) and not state.interrupts and not self._breakpoints(state)

    def _breakpoints(self, state: StateSnapshot) -> list[PendingInterrupt]:
        """A stop before an `interrupt_before` node (compiled in, or set for this graph in BOT_CONFIG)."""
        stops = [node for node in state.next if "*" in self.stops_at or node in self.stops_at]
        if not stops or state.interrupts:
            return []
        last = next((m for m in reversed(messages_of(state.values)) if is_ai(m)), None)
        return [breakpoint_value(stops[0], last, _checkpoint_id(state))]

    def _pending(self, state: StateSnapshot, result: Any) -> list[PendingInterrupt]:
        sources = {i.id: task.name for task in state.tasks for i in task.interrupts}
        raised = result.get(INTERRUPT) if isinstance(result, Mapping) else None
        # A server's state may leave out a schema its run's stream carried.
        schemas = {field_of(i, "id"): response_schema(i) for i in raised or ()}
        pending = [
            PendingInterrupt(i.id, as_json(i.value), response_schema(i) or schemas.get(i.id), sources.get(i.id))
            for i in state.interrupts
        ]
        return pending + self._breakpoints(state)

    async def outcome(self, thread_id: str, *, since: str | None, result: Any = NO_RESULT) -> Outcome:
        """The new AI replies since checkpoint `since`, the result if the graph finished, and what it waits on,
        read from the thread's latest checkpoint."""
        began = self._began.pop(thread_id, None)
        if began is not None and began[0] is result:
            if since is not None:
                self._seen.pop((thread_id, since), None)
            seen = began[1]
            if began[2]:
                # It finished: its last values are the state it left (the output channels hold `messages`), and
                # nothing is due or waiting, so there is no state to read.
                return _outcome(result, new_ai_messages(result, seen), [], finished=True)
        else:
            seen = await self._seen_at(thread_id, since)
        after = await self._state(thread_id)
        if result is NO_RESULT:
            result = after.values
        interrupts = self._pending(after, result)
        finished = not interrupts and not after.next
        return _outcome(result, new_ai_messages(after.values, seen), interrupts, finished=finished)


def _outcome(
    result: Any, new: list[tuple[str, str | None]], interrupts: list[PendingInterrupt], *, finished: bool
) -> Outcome:
    """What a run left: `new`, its new AI messages (text, id); its result is kept only if it finished."""
    replies = [text for text, _ in new if text]
    if isinstance(result, dict):
        result = {k: v for k, v in result.items() if k != INTERRUPT}
    return Outcome(
        replies=replies,
        result=result if finished else None,
        finished=finished,
        interrupts=interrupts,
        show_result=not already_said(result, {i for _, i in new}, set(replies)),
        reply_ids=[i for text, i in new if text],
    )


class GraphRefused(GraphError):
    """A conversation names a graph outside the configured list (BOT_GRAPH/BOT_GRAPHS, or the assistant)."""

    def __init__(self, graph: str, allowed: Sequence[str]) -> None:
        super().__init__("BOT_GRAPHS", f"does not list {graph!r}", "a conversation runs only BOT_GRAPH or those listed")
        self.graph = graph


class Runners:
    """The runner of each graph a conversation may use, made on first use by `factory`; `default` is BOT_GRAPH
    (or, with a LangGraph Server, LANGGRAPH_ASSISTANT_ID), `allowed` the others it may use (BOT_GRAPHS). A graph
    outside them is never imported or run: a channel-graph row can't name an arbitrary `module:attribute`."""

    def __init__(self, default: str, factory: Callable[[str], Runner], allowed: Sequence[str] = ()) -> None:
        self.default = default
        self.allowed = list(dict.fromkeys([default, *allowed]))
        self._factory = factory
        self._runners: dict[str, Runner] = {}

    def add(self, spec: str, runner: Runner) -> None:
        self._runners[spec] = runner

    def allows(self, spec: str | None) -> bool:
        return spec is None or spec in self.allowed

    def get(self, spec: str | None = None) -> Runner:
        """The runner of `spec` (default: the default graph); GraphRefused when it is not an allowed graph."""
        spec = spec or self.default
        runner = self._runners.get(spec)
        if runner is None:
            if spec not in self.allowed:
                raise GraphRefused(spec, self.allowed)
            runner = self._factory(spec)
            self._runners[spec] = runner
        return runner
