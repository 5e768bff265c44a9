"""Graphs whose state is a `typing.TypedDict` (Pydantic can't make their JSON schema on Python < 3.12), and a
pipeline with no tool calls, for a breakpoint set at run time."""

from typing import TypedDict

from langgraph.graph import END, START, StateGraph


class State(TypedDict):
    some_text: str


def shout(state: State) -> State:
    return {"some_text": state["some_text"].upper()}


def publish(state: State) -> State:
    return {"some_text": state["some_text"] + "!"}


_builder = StateGraph(State)
_builder.add_node("shout", shout)
_builder.add_node("publish", publish)
_builder.add_edge(START, "shout")
_builder.add_edge("shout", "publish")
_builder.add_edge("publish", END)
graph = _builder.compile()


class Pair(TypedDict):
    first: str
    second: str


_pair = StateGraph(Pair)
_pair.add_node("shout", lambda state: state)
_pair.add_edge(START, "shout")
pair = _pair.compile()
