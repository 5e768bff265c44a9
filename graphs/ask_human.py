"""Wait for user input with a breakpoint (LangGraph Server how-to "How to Wait for User Input").

The model may call the `AskHuman` tool; the graph is compiled with `interrupt_before=["ask_human"]`, so it
stops before that node with no interrupt payload. The client (here, the Slack bot) asks the question from
the tool call and applies the answer with `update_state(..., as_node="ask_human")` as the tool message.

Annotations are evaluated eagerly (no ``from __future__ import annotations``) so that the graph's schemas
resolve even when a server loads this file by path.
"""

from typing import Annotated, Any

from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode
from pydantic import BaseModel
from typing_extensions import TypedDict

from graphs._model import chat_model

__all__ = ["AskHuman", "State", "graph", "search"]


class AskHuman(BaseModel):
    """Ask the human a question"""

    question: str


@tool
def search(query: str) -> list[str]:
    """Call to surf the web."""
    return [f"I looked up: {query}. Result: It's sunny in San Francisco, but you better look out if you're a Gemini."]


tools = [search]


class State(TypedDict):
    messages: Annotated[list[Any], add_messages]


def call_model(state: State) -> dict[str, Any]:
    response = chat_model().bind_tools([*tools, AskHuman]).invoke(state["messages"])
    return {"messages": [response]}


def should_continue(state: State) -> str:
    last = state["messages"][-1]
    if not isinstance(last, AIMessage) or not last.tool_calls:
        return END
    if last.tool_calls[0]["name"] == "AskHuman":
        return "ask_human"
    return "action"


def ask_human(state: State) -> None:
    """Does nothing: the answer arrives through `update_state(..., as_node="ask_human")`."""


workflow = StateGraph(State)
workflow.add_node("agent", call_model)
workflow.add_node("action", ToolNode(tools))
workflow.add_node("ask_human", ask_human)
workflow.add_edge(START, "agent")
workflow.add_conditional_edges("agent", should_continue, ["action", "ask_human", END])
workflow.add_edge("action", "agent")
workflow.add_edge("ask_human", "agent")

graph = workflow.compile(interrupt_before=["ask_human"])
