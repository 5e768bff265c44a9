"""A graph whose turns wait for one another, as turns wait for a model: a turn answers "together" once `Gathering.size`
turns have been waiting at the same time, or "alone" when it gave up waiting. The bot runs in the test's process
(tests/support/harness.py), so the gathering is shared by every turn it runs."""

import asyncio
from typing import Annotated, Any

from langchain_core.messages import AIMessage, AnyMessage
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict


class Gathering:
    def __init__(self, size: int, patience: float) -> None:
        self.size = size
        self.patience = patience
        self.inside = 0
        self.most = 0
        self.full = asyncio.Event()

    def reset(self) -> None:
        self.inside = self.most = 0
        self.full = asyncio.Event()

    async def wait(self) -> bool:
        self.inside += 1
        self.most = max(self.most, self.inside)
        if self.inside >= self.size:
            self.full.set()
        try:
            await asyncio.wait_for(self.full.wait(), self.patience)
            return True
        except TimeoutError:
            return False
        finally:
            self.inside -= 1


GATHERING = Gathering(size=12, patience=15.0)


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


async def _wait(state: State) -> dict[str, Any]:
    together = await GATHERING.wait()
    return {"messages": [AIMessage(content="together" if together else "alone")]}


graph = StateGraph(State).add_node("wait", _wait).add_edge(START, "wait").compile()
