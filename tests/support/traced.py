"""A one-node graph that keeps the run config's LangSmith metadata and tags, as its tracer would see them."""

from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

SEEN: list[dict[str, Any]] = []


class State(TypedDict):
    text: str


def echo(state: State, config: RunnableConfig) -> State:
    metadata = config.get("metadata") or {}
    SEEN.append({"metadata": {k: v for k, v in metadata.items() if k.startswith("slack_")}, "tags": config["tags"]})
    return {"text": f"echo: {state['text']}"}


_builder = StateGraph(State)
_builder.add_node("echo", echo)
_builder.add_edge(START, "echo")
_builder.add_edge("echo", END)
graph = _builder.compile()
