"""The seeds' graphs as a LangGraph Server is given them (tests/seeds/langgraph.json).

Seeds 000, 002 and 003 compile their graphs with an in-memory checkpointer, for a notebook. A LangGraph deployment
ignores a graph's own checkpointer (the platform keeps the threads), and `langgraph dev` refuses to load one ("remove
the custom checkpointer from your graph definition"). So the server gets those graphs with the checkpointer left
out, as a deployment would run them; the seeds' code itself is imported unchanged. Seeds 001 and 004 are written
for a server and are loaded from their own files.
"""

from typing import Any

from tests.seeds import seed000_feedback as _simple_usage
from tests.seeds import seed000_react_agent as _react_agent
from tests.seeds import seed002_chatbot as _chatbot
from tests.seeds import seed003_feedback as _feedback


def _without_checkpointer(graph: Any) -> Any:
    return graph.copy(update={"checkpointer": None})


seed000_feedback = _without_checkpointer(_simple_usage.graph)
seed000_react_agent = _without_checkpointer(_react_agent.agent)
seed002_chatbot = _without_checkpointer(_chatbot.graph)
seed003_feedback = _without_checkpointer(_feedback.graph)
