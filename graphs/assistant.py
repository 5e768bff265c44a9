"""The bot's default graph: a helpful Slack assistant that can ask a human (Graph API).

A plain ``StateGraph`` chat agent: the "agent" node calls the model with a system prompt
and the tools; each tool call then runs as its own "tools" task (``Send``), so a tool
that waits on ``interrupt`` (``human_assistance``) does not make the others run again
when the thread is resumed. More tools go in :data:`tools`.

Annotations are evaluated eagerly (no ``from __future__ import annotations``) so that
the graph's schemas resolve even when a server loads this file by path.
"""

from typing import Annotated, Any

from langchain_core.messages import AIMessage, AnyMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode
from langgraph.types import Send
from typing_extensions import TypedDict

from graphs._model import chat_model
from graphs.tools import TOOLS, get_weather, human_assistance

__all__ = ["SYSTEM_PROMPT", "State", "agent", "get_weather", "graph", "human_assistance", "route", "tools"]

SYSTEM_PROMPT = (
    "You are a helpful assistant answering people in Slack. Keep answers short and use "
    "Slack-friendly formatting. When you need a human's knowledge, judgement or approval, "
    "call the human_assistance tool with a clear question instead of guessing."
)

tools = list(TOOLS)


class State(TypedDict):
    """The conversation in the Slack thread."""

    messages: Annotated[list[AnyMessage], add_messages]


def agent(state: State) -> dict[str, Any]:
    """Ask the model for the next message, given the system prompt and the tools."""
    model = chat_model().bind_tools(tools)
    message = model.invoke([SystemMessage(SYSTEM_PROMPT), *state["messages"]])
    return {"messages": [message]}


def route(state: State) -> list[Send] | str:
    """Send each tool call of the last AI message to "tools", or end."""
    last = state["messages"][-1] if state["messages"] else None
    if isinstance(last, AIMessage) and last.tool_calls:
        return [Send("tools", [tool_call]) for tool_call in last.tool_calls]
    return END


graph_builder = StateGraph(State)
graph_builder.add_node("agent", agent)
graph_builder.add_node("tools", ToolNode(tools))
graph_builder.add_edge(START, "agent")
graph_builder.add_conditional_edges("agent", route, ["tools", END])
graph_builder.add_edge("tools", "agent")

graph = graph_builder.compile()
