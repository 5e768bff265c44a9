"""The zero-latency graphs the benchmark runs: no model, no I/O, so what is measured is the runtime around them.

* `echo`: one node that answers the last message with an AIMessage of the same text ("echo: <text>").
* `ask`: one node that interrupts once with a question naming the last message, and answers with what it was told
  ("answer <value> for <text>"); a message after that starts the same again.
* `slow`: `echo` after waiting `MODEL_WAIT` seconds, as a graph waits for its model: what it measures is how many
  turns the bot keeps in flight while each one waits.

Annotations are evaluated eagerly (no ``from __future__ import annotations``) so that a LangGraph Server that loads
this file by path resolves the state schema.
"""

import asyncio
from typing import Annotated, Any

from langchain_core.messages import AIMessage, AnyMessage
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import interrupt
from typing_extensions import TypedDict

__all__ = ["ASK", "ECHO", "MODEL_WAIT", "SLOW", "State", "ask", "echo", "slow"]

ECHO = "bench.graphs:echo"
ASK = "bench.graphs:ask"
SLOW = "bench.graphs:slow"
MODEL_WAIT = 0.5
"""Seconds `slow` waits in each turn: a short model call."""


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def _last_text(state: State) -> str:
    last = state["messages"][-1] if state["messages"] else None
    content: Any = last.content if last is not None else ""
    return content if isinstance(content, str) else str(content)


def _echo(state: State) -> dict[str, Any]:
    return {"messages": [AIMessage(content=f"echo: {_last_text(state)}")]}


def _ask(state: State) -> dict[str, Any]:
    text = _last_text(state)
    answer = interrupt(f"What should I do with {text}?")
    return {"messages": [AIMessage(content=f"answer {answer} for {text}")]}


async def _slow(state: State) -> dict[str, Any]:
    await asyncio.sleep(MODEL_WAIT)
    return _echo(state)


echo = StateGraph(State).add_node("echo", _echo).add_edge(START, "echo").compile()
slow = StateGraph(State).add_node("slow", _slow).add_edge(START, "slow").compile()
ask = StateGraph(State).add_node("ask", _ask).add_edge(START, "ask").compile()
