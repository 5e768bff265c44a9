"""Seed 004, the LangGraph Server how-to "How to Wait for User Input": the agent it hosts.

The seed leaves the hosted graph out and shows what it does: an `agent` node calling the model, an `action` node
running the `search` tool, and an `ask_human` node with no logic in it, reached when the model calls the `AskHuman`
tool. The graph is compiled WITHOUT a breakpoint: the client passes `interrupt_before=["ask_human"]` on each run
(here, BOT_CONFIG's `[graphs."..."]` table), then applies the human's answer as the tool message with
`update_state(..., as_node="ask_human")` and runs on with no input.

Swapped: the model is `ChatOpenAI(model="gpt-4o-mini")`, its endpoint from `OPENAI_BASE_URL`.
"""

from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode
from pydantic import BaseModel


@tool
def search(query: str):
    """Call to surf the web."""
    # A placeholder for a real search, as in the how-to.
    return [
        f"I looked up: {query}. Result: It's sunny in San Francisco, but you better look out if you're a Gemini 😈."
    ]


tools = [search]
tool_node = ToolNode(tools)

model = ChatOpenAI(model="gpt-4o-mini")


class AskHuman(BaseModel):
    """Ask the human a question"""

    question: str


model = model.bind_tools([*tools, AskHuman])


def should_continue(state):
    """The model's last message decides: no tool call ends, AskHuman asks the human, any other tool runs."""
    last_message = state["messages"][-1]
    if not last_message.tool_calls:
        return END
    if last_message.tool_calls[0]["name"] == "AskHuman":
        return "ask_human"
    return "action"


def call_model(state):
    response = model.invoke(state["messages"])
    return {"messages": [response]}


def ask_human(state):
    """No logic: the client stops before this node and writes the answer as if this node had run."""


workflow = StateGraph(MessagesState)
workflow.add_node("agent", call_model)
workflow.add_node("action", tool_node)
workflow.add_node("ask_human", ask_human)
workflow.add_edge(START, "agent")
workflow.add_conditional_edges("agent", should_continue, ["ask_human", "action", END])
workflow.add_edge("action", "agent")
workflow.add_edge("ask_human", "agent")

graph = workflow.compile()
