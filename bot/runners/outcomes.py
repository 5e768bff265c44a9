"""What a run leaves to show, and how a run is found from Slack: the values both runtimes share.

A graph in process gives LangChain messages and `Interrupt`s; a LangGraph Server gives the same as JSON. The
readers here take either, so what a run left is worked out once (bot/runners/core.py).
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import BaseMessage

from bot.interrupts.values import as_json

BREAKPOINT = "breakpoint:"
PAUSE = "@"
"""A breakpoint id's tail after the node: a tool call id, or PAUSE and the checkpoint (no tool call to answer)."""
NO_RESULT: Any = object()
"""`outcome` reads the result from the saved state when the run's own return value is not at hand."""
INTERRUPT = "__interrupt__"
AI_TYPES = ("ai", "AIMessageChunk")


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


TOOLS_CALLED: contextvars.ContextVar[Callable[[str], None] | None] = contextvars.ContextVar(
    "lgslack_tools_called", default=None
)
"""Told the name of each tool a run's model calls, as seen in its stream (set by the live status, bot/flow/status.py,
for runners that can't report a tool's start through callbacks: a LangGraph Server's)."""


def called_tools(update: Any) -> list[str]:
    """The tools the AI messages of one `updates` part call (messages as objects or as a server's JSON)."""
    names: list[str] = []
    for value in update.values() if isinstance(update, Mapping) else ():
        messages = value.get("messages") if isinstance(value, Mapping) else None
        for message in messages if isinstance(messages, list) else [messages]:
            calls = message.get("tool_calls") if isinstance(message, Mapping) else getattr(message, "tool_calls", None)
            for call in calls if isinstance(calls, list) else ():
                name = call.get("name") if isinstance(call, Mapping) else None
                if isinstance(name, str) and name:
                    names.append(name)
    return names


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


# Messages as a graph in process (LangChain messages) or a server (their JSON) gives them.


def field_of(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)


def _is_message(item: Any) -> bool:
    return isinstance(item, BaseMessage) or (isinstance(item, Mapping) and isinstance(item.get("type"), str))


def is_ai(item: Any) -> bool:
    return _is_message(item) and field_of(item, "type") in AI_TYPES


def message_text(message: Any) -> str:
    """The text of a message: its string content, or its text blocks joined (as LangChain's `.text`)."""
    if isinstance(message, BaseMessage):
        return message.text if isinstance(message.text, str) else str(message.text)
    content = field_of(message, "content")
    if isinstance(content, list):
        texts = (p.get("text") if isinstance(p, Mapping) and p.get("type") == "text" else p for p in content)
        return "".join(t for t in texts if isinstance(t, str))
    return content if isinstance(content, str) else ""


def messages_of(values: Any) -> list[Any]:
    """The messages of a state: its `messages`, a list of messages, or one message."""
    if isinstance(values, Mapping) and "messages" in values:
        values = values["messages"]
    if _is_message(values):
        return [values]
    if isinstance(values, Sequence) and not isinstance(values, str):
        return [m for m in values if _is_message(m)]
    return []


def message_ids(values: Any) -> set[Any]:
    return {field_of(m, "id") for m in messages_of(values)}


def new_ai_messages(values: Any, seen: set[Any]) -> list[tuple[str, str | None]]:
    """The text and id of each AI message not in `seen` (by id)."""
    new = [m for m in messages_of(values) if is_ai(m) and field_of(m, "id") not in seen]
    return [(message_text(m).strip(), field_of(m, "id")) for m in new]


def already_said(result: Any, ids: set[Any], texts: set[str]) -> bool:
    """True when the result is only messages the replies already show (by id, or by the same text)."""
    items = result if isinstance(result, list) else [result]
    if not items:
        return False
    for item in items:
        if not is_ai(item):
            return False
        message_id, text = field_of(item, "id"), message_text(item).strip()
        if not ((message_id is not None and message_id in ids) or (text and text in texts)):
            return False
    return True


def delta(message: Any, metadata: Any) -> Delta | None:
    """The text an AI message chunk adds (none for tool-call pieces, whole messages or other messages)."""
    if not _is_message(message) or field_of(message, "type") != "AIMessageChunk" or not field_of(message, "id"):
        return None
    text = message_text(message)
    last = field_of(message, "chunk_position") == "last"
    if not text and not last:
        return None
    node = metadata.get("langgraph_node") if isinstance(metadata, Mapping) else None
    return Delta(str(field_of(message, "id")), text, str(node) if node else None, last)


def response_schema(pending: Any) -> dict[str, Any] | None:
    schema = field_of(pending, "response_schema")
    return schema if isinstance(schema, dict) else None


def breakpoint_value(node: str, last_ai: Any, checkpoint_id: str | None) -> PendingInterrupt:
    """A stop before an `interrupt_before` node: asked as the question of the model's tool call (the seeds' ask-human
    pattern: the answer becomes that call's tool message), or, with no tool call, as a pause to let go on."""
    calls = list(field_of(last_ai, "tool_calls") or []) if last_ai is not None else []
    if calls:
        args = calls[0].get("args") or {}
        question = args.get("question") if isinstance(args.get("question"), str) else json.dumps(as_json(args))
        value = {"type": "breakpoint", "node": node, "question": question, "tool": calls[0].get("name")}
        return PendingInterrupt(f"{BREAKPOINT}{node}:{calls[0].get('id')}", value)
    question = f"The agent paused before the step `{node}`. Reply (anything) to let it carry on."
    value = {"type": "breakpoint", "node": node, "question": question, "tool": None}
    return PendingInterrupt(f"{BREAKPOINT}{node}:{PAUSE}{checkpoint_id or ''}", value)
