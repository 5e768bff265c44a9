"""Seed 001, "Human-in-the-loop", the extended example using `interrupt`: as written in the seed.

The state is a `typing.TypedDict` (not `typing_extensions`) and the graph is compiled with no checkpointer, as the
seed has it for a LangGraph API server. `{"some_text": "original text"}` pauses with
`{"text_to_revise": "original text"}`; resuming with "Edited text" ends with `{"some_text": "Edited text"}`.
"""

import uuid  # noqa: F401  (imported as in the seed)
from typing import TypedDict

from langgraph.checkpoint.memory import InMemorySaver  # noqa: F401  (imported as in the seed)
from langgraph.constants import START
from langgraph.graph import StateGraph
from langgraph.types import Command, interrupt  # noqa: F401  (imported as in the seed)


class State(TypedDict):
    some_text: str


def human_node(state: State):
    value = interrupt(
        {
            "text_to_revise": state["some_text"],
        }
    )
    return {
        "some_text": value,
    }


# Build the graph
graph_builder = StateGraph(State)
graph_builder.add_node("human_node", human_node)
graph_builder.add_edge(START, "human_node")

graph = graph_builder.compile()
