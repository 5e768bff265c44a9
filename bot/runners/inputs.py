"""What a Slack message becomes as graph input, derived from the graph's input schema; and loading a graph."""

from __future__ import annotations

import importlib
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.messages import HumanMessage
from langgraph.graph.state import StateGraph
from langgraph.pregel import Pregel

from bot.errors import GraphError
from bot.slack.files import content_blocks, for_graph, with_sections

InputShape = Literal["messages_key", "message_list", "text", "field"]


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
