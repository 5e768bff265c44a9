"""An agent whose side-effecting tool waits for a human decision (LangChain v1 `HumanInTheLoopMiddleware`).

`get_weather(location)` runs freely; `send_email(to, subject, body)` pauses the agent with a batched
`HITLRequest`. In Slack the request shows Approve / Edit / Reject / Respond for each call.

Annotations are evaluated eagerly (no ``from __future__ import annotations``) so that the graph's schemas
resolve even when a server loads this file by path.
"""

from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware, InterruptOnConfig

from graphs._model import ConfiguredModel, build_time_model
from graphs.tools import get_weather, send_email

__all__ = ["SYSTEM_PROMPT", "graph", "per_call_graph"]

SYSTEM_PROMPT = (
    "You are an assistant in Slack that can check the weather and send emails. "
    "Sending an email needs a person's approval, which the system asks for; just call the tool."
)

GATE: dict[str, bool | InterruptOnConfig] = {
    "send_email": InterruptOnConfig(allowed_decisions=["approve", "edit", "reject", "respond"])
}

graph = create_agent(
    build_time_model(),
    tools=[get_weather, send_email],
    system_prompt=SYSTEM_PROMPT,
    middleware=[ConfiguredModel(), HumanInTheLoopMiddleware(interrupt_on=GATE)],
)

per_call_graph = create_agent(
    build_time_model(),
    tools=[get_weather, send_email],
    system_prompt=SYSTEM_PROMPT,
    middleware=[ConfiguredModel(), HumanInTheLoopMiddleware(interrupt_on=GATE, interrupt_mode="per_call")],
)
