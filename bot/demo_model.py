"""The offline demo model: deterministic answers, served as an OpenAI-compatible endpoint on loopback.

It drives the example graphs without an API key: weather questions call `get_weather`, requests for a
person call `human_assistance`, tool results are summarised, and anything else is answered plainly.
"""

from __future__ import annotations

import re

from bot.fake_openai import ChatRequest, Reply, ToolCall, message_text

DEMO_LABEL = "offline demo model"
_WEATHER = re.compile(r"weather (?:in|for|at) ([A-Za-z .'-]+)", re.IGNORECASE)
_ASK = re.compile(r"\b(ask|human|expert|someone|person)\b", re.IGNORECASE)


def demo_responder(request: ChatRequest) -> Reply:
    """Answer the conversation so far, deterministically."""
    last = request.messages[-1] if request.messages else {}
    if last.get("role") == "tool":
        results = [message_text(m) for m in request.messages if m.get("role") == "tool"]
        return Reply(content="Here is what I found:\n" + "\n".join(f"• {r}" for r in results[-3:]))
    text = request.last_user_text
    calls: list[ToolCall] = []
    weather = _WEATHER.search(text)
    if weather and "get_weather" in request.tool_names:
        calls.append(ToolCall("get_weather", {"location": weather.group(1).strip(" .?")}))
    if _ASK.search(text) and "human_assistance" in request.tool_names:
        calls.append(ToolCall("human_assistance", {"query": text}))
    if calls:
        return Reply(tool_calls=calls[:1] if "parallel" not in text else calls)
    return Reply(content=f"({DEMO_LABEL}) You said: {text}")
