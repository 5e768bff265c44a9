"""The LangGraph tutorial chatbot with the ``human_assistance`` tool (Graph API).

As in the tutorial ("Add human-in-the-loop controls"), with ``get_weather`` standing in
for the web search tool. The model is asked for one tool call at a time, because the
interrupting tool makes the whole "tools" node run again on resume; should the model
return several anyway, only the first is kept.

Annotations are evaluated eagerly (no ``from __future__ import annotations``) so that
the graph's schemas resolve even when a server loads this file by path.
"""

from typing import Annotated, Any

from langchain_core.messages import AIMessage
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode, tools_condition
from typing_extensions import TypedDict

from graphs._model import chat_model
from graphs.tools import TOOLS, get_weather, human_assistance

__all__ = ["State", "chatbot", "get_weather", "graph", "human_assistance", "tools"]

tools = TOOLS


class State(TypedDict):
    """The conversation so far."""

    messages: Annotated[list, add_messages]


def chatbot(state: State) -> dict[str, Any]:
    """Ask the model for the next message, with the tools bound."""
    llm_with_tools = chat_model().bind_tools(tools, parallel_tool_calls=False)
    message = llm_with_tools.invoke(state["messages"])
    if isinstance(message, AIMessage) and len(message.tool_calls) > 1:
        message = message.model_copy(update={"tool_calls": message.tool_calls[:1]})
    return {"messages": [message]}


graph_builder = StateGraph(State)
graph_builder.add_node("chatbot", chatbot)
graph_builder.add_node("tools", ToolNode(tools=tools))
graph_builder.add_conditional_edges("chatbot", tools_condition)
graph_builder.add_edge("tools", "chatbot")
graph_builder.add_edge(START, "chatbot")

graph = graph_builder.compile()
