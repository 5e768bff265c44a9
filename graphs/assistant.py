"""The bot's default graph: a Slack assistant that checks the weather, asks a human, and sends email
only after a person approves (LangChain v1 `create_agent` + `HumanInTheLoopMiddleware`).

Tools: `get_weather(location)`, `human_assistance(query)` (interrupts with `{"query": ...}`), and
`send_email(to, subject, body)`, gated: the agent pauses with a `HITLRequest` until someone approves, edits,
rejects or responds. Each tool call runs as its own task, so a waiting tool doesn't make the others run again.

Annotations are evaluated eagerly (no ``from __future__ import annotations``) so that the graph's schemas
resolve even when a server loads this file by path.
"""

from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware

from graphs._model import ConfiguredModel, build_time_model
from graphs.tools import get_weather, human_assistance, send_email

__all__ = ["SYSTEM_PROMPT", "get_weather", "graph", "human_assistance", "send_email", "tools"]

SYSTEM_PROMPT = (
    "You are a helpful assistant answering people in Slack. Keep answers short and use "
    "Slack-friendly formatting. When you need a human's knowledge, judgement or approval, "
    "call the human_assistance tool with a clear question instead of guessing. "
    "Sending email needs a person's approval, which the system asks for: just call send_email."
)

tools = [get_weather, human_assistance, send_email]

graph = create_agent(
    build_time_model(),
    tools=tools,
    system_prompt=SYSTEM_PROMPT,
    middleware=[
        ConfiguredModel(),
        HumanInTheLoopMiddleware(
            interrupt_on={"send_email": {"allowed_decisions": ["approve", "edit", "reject", "respond"]}}
        ),
    ],
)
