"""Revise a text with a human (LangGraph "interrupt" docs, Graph API).

``{"some_text": "original text"}`` pauses with ``{"text_to_revise": "original text"}``;
resuming with ``Command(resume="Edited text")`` ends with ``{"some_text": "Edited text"}``.

Annotations are evaluated eagerly (no ``from __future__ import annotations``) so that
the graph's schemas resolve even when a server loads this file by path.
"""

from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict


class State(TypedDict):
    """The text under revision."""

    some_text: str


def human_node(state: State) -> dict[str, Any]:
    """Show the text to a human and replace it with what they send back."""
    value = interrupt({"text_to_revise": state["some_text"]})
    return {"some_text": value}


graph_builder = StateGraph(State)
graph_builder.add_node("human_node", human_node)
graph_builder.add_edge(START, "human_node")
graph_builder.add_edge("human_node", END)

graph = graph_builder.compile()
