"""Seed 002, the LangGraph tutorial "Add human-in-the-loop controls": the chatbot with `human_assistance`, as written.

Swapped: `TavilySearch` is the local stand-in (tests/seeds/stand_ins.py), and the seed's `os.environ[...] = "sk-..."`
line is left out: the model is the seed's own `init_chat_model("openai:gpt-4.1")`, whose endpoint and key come from
`OPENAI_BASE_URL` and `OPENAI_API_KEY`.
"""

from langchain.chat_models import init_chat_model

llm = init_chat_model("openai:gpt-4.1")

from typing import Annotated  # noqa: E402  (the seed selects the model first)

from langchain_core.tools import tool  # noqa: E402
from langgraph.checkpoint.memory import InMemorySaver  # noqa: E402
from langgraph.graph import END, START, StateGraph  # noqa: E402, F401  (END imported as in the seed)
from langgraph.graph.message import add_messages  # noqa: E402
from langgraph.prebuilt import ToolNode, tools_condition  # noqa: E402
from langgraph.types import Command, interrupt  # noqa: E402, F401  (Command imported as in the seed)
from typing_extensions import TypedDict  # noqa: E402

from tests.seeds.stand_ins import TavilySearch  # noqa: E402  (instead of langchain_tavily)


class State(TypedDict):
    messages: Annotated[list, add_messages]


graph_builder = StateGraph(State)


@tool
def human_assistance(query: str) -> str:
    """Request assistance from a human."""
    human_response = interrupt({"query": query})
    return human_response["data"]


tool = TavilySearch(max_results=2)
tools = [tool, human_assistance]
llm_with_tools = llm.bind_tools(tools)


def chatbot(state: State):
    message = llm_with_tools.invoke(state["messages"])
    # Because we will be interrupting during tool execution,
    # we disable parallel tool calling to avoid repeating any
    # tool invocations when we resume.
    assert len(message.tool_calls) <= 1
    return {"messages": [message]}


graph_builder.add_node("chatbot", chatbot)

tool_node = ToolNode(tools=tools)
graph_builder.add_node("tools", tool_node)

graph_builder.add_conditional_edges(
    "chatbot",
    tools_condition,
)
graph_builder.add_edge("tools", "chatbot")
graph_builder.add_edge(START, "chatbot")

memory = InMemorySaver()

graph = graph_builder.compile(checkpointer=memory)
