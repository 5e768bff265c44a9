"""A ReAct agent that can ask a human for help (Functional API).

From the LangGraph guide "How to wait for user input (Functional API)": the model's tool
calls run as parallel ``call_tool`` tasks, so ``get_weather`` finishes (and is kept in
the checkpoint) while ``human_assistance`` waits on its interrupt. The thread's
conversation is saved as the entrypoint's ``previous`` value.

This module does not use ``from __future__ import annotations``: ``@entrypoint`` reads the
first parameter's annotation as written, and the input JSON schema needs the real type.
"""

from collections.abc import Sequence
from typing import Any, cast

from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, MessageLikeRepresentation, ToolCall, ToolMessage
from langgraph.func import entrypoint, task
from langgraph.graph.message import Messages, add_messages

from graphs._model import chat_model
from graphs.tools import TOOLS, TOOLS_BY_NAME, get_weather, human_assistance

__all__ = ["agent", "call_model", "call_tool", "get_weather", "human_assistance", "tools"]

tools = TOOLS


def _merged(left: Sequence[BaseMessage], right: Sequence[BaseMessage] | BaseMessage) -> list[BaseMessage]:
    """`add_messages`, typed for what this module passes it."""
    new: Messages = right if isinstance(right, BaseMessage) else list[MessageLikeRepresentation](right)
    return cast(list[BaseMessage], add_messages(list[MessageLikeRepresentation](left), new))


@task
def call_model(messages: Sequence[BaseMessage]) -> BaseMessage:
    """Call model with a sequence of messages."""
    return chat_model().bind_tools(tools).invoke(messages)


@task
def call_tool(tool_call: ToolCall) -> ToolMessage:
    """Run one tool call and return its result as a tool message."""
    tool = TOOLS_BY_NAME.get(tool_call["name"])
    if tool is None:
        return ToolMessage(
            content=f"Error: {tool_call['name']} is not a valid tool, try one of {sorted(TOOLS_BY_NAME)}.",
            name=tool_call["name"],
            tool_call_id=tool_call["id"] or "",
            status="error",
        )
    result: Any = tool.invoke(tool_call)
    if isinstance(result, ToolMessage):
        return result
    return ToolMessage(content=str(result), name=tool.name, tool_call_id=tool_call["id"] or "")


@entrypoint()
def agent(
    messages: list[AnyMessage], previous: list[AnyMessage] | None = None
) -> entrypoint.final[BaseMessage, list[BaseMessage]]:
    """Answer the new messages, calling tools until the model gives a final answer."""
    history = _merged(previous or [], messages)

    llm_response = call_model(history).result()
    while isinstance(llm_response, AIMessage) and llm_response.tool_calls:
        tool_result_futures = [call_tool(tool_call) for tool_call in llm_response.tool_calls]
        tool_results = [fut.result() for fut in tool_result_futures]
        history = _merged(history, [llm_response, *tool_results])
        llm_response = call_model(history).result()

    history = _merged(history, llm_response)
    return entrypoint.final(value=llm_response, save=history)
