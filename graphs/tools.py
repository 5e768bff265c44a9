"""Tools shared by the example graphs, with the names the LangGraph docs use."""

from __future__ import annotations

from typing import Any

from langchain_core.tools import BaseTool, tool
from langgraph.types import interrupt


@tool
def get_weather(location: str) -> str:
    """Call to get the weather from a specific location."""
    place = location.lower()
    if any(city in place for city in ("sf", "san francisco")):
        return "It's sunny!"
    if "boston" in place:
        return "It's rainy!"
    return f"I am not sure what the weather is in {location}"


get_weather.metadata = {"slack_status": "Checking the weather…"}
"""What the thread's status says while it runs (bot/flow/status.py)."""


@tool
def human_assistance(query: str) -> str:
    """Request assistance from a human."""
    human_response: Any = interrupt({"query": query})
    if isinstance(human_response, dict):
        return str(human_response["data"])
    return str(human_response)


TOOLS: list[BaseTool] = [get_weather, human_assistance]
"""The tools every example agent offers its model."""

TOOLS_BY_NAME: dict[str, BaseTool] = {t.name: t for t in TOOLS}


OUTBOX: list[dict[str, str]] = []
"""Emails `send_email` has "sent" in this process: the examples' stand-in for a real mail server."""


@tool
def send_email(to: str, subject: str, body: str) -> str:
    """Send an email. A side effect: the approval-gated examples ask a human before it runs."""
    OUTBOX.append({"to": to, "subject": subject, "body": body})
    return f"Email sent to {to} with subject {subject!r}."
