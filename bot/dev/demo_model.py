"""The offline demo model: deterministic answers, served as an OpenAI-compatible endpoint on loopback.

It drives every example graph without an API key, using only the tools a request offers:

- "what's the weather in Boston?" → ``get_weather(location="Boston")``;
- "ask an expert: which database should we use?" (or "ask a human …", "reach out for human assistance …")
  → ``human_assistance(query="which database should we use?")`` (or ``AskHuman(question=...)``);
- "search for LangGraph" / "look up …" → ``search(query)``;
- "send an email to bob@example.com about lunch" (or "email carol …") → ``send_email(to, subject, body)``;
- once the tools have answered → a short summary of their results;
- anything else → a plain answer that says it is the offline demo model.

Several tool calls are made at once (e.g. asking a human *and* checking the weather) unless the request says
``parallel_tool_calls: false``, when only the first one (in the order the message asks) is made.
`demo_responder` is pure: the same conversation always gets the same reply.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from typing import Any

from bot.dev.fake_openai import ChatRequest, Reply, ToolCall, message_text

DEMO_LABEL = "offline demo model"

_WEATHER = re.compile(
    r"\bweather\s+(?:like\s+)?(?:in|for|at|of)\s+([A-Za-z][A-Za-z .,'-]*?)"
    r"(?=\s+(?:today|tomorrow|now|right now|please|this)\b|[?.!;:\n]|$)",
    re.IGNORECASE,
)
_ASK = re.compile(
    r"\b(?:ask|asking|reach out|check with|get|request|escalate)\b[^.?!\n]{0,40}?"
    r"\b(?:human|humans|expert|experts|person|someone|colleague|people|team)\b(?:\s+(?:assistance|help))?"
    r"|\bhuman (?:assistance|help)\b|\bexpert (?:guidance|advice|help|opinion)\b|\brequest (?:assistance|help)\b",
    re.IGNORECASE,
)
_EMAIL_INTENT = re.compile(r"\b(?:e-?mail|send)\b", re.IGNORECASE)
_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_TO_NAME = re.compile(r"\bto\s+([A-Za-z][\w-]*)", re.IGNORECASE)
_EMAIL_NAME = re.compile(r"\be-?mail\s+([A-Za-z][\w-]*)", re.IGNORECASE)
_SUBJECT = re.compile(
    r"\b(?:subject:?|about|regarding|re:)\s+[\"“']?(.+?)[\"”']?"
    r"(?=\s+(?:saying|that says|with the body|body:?|telling)\b|[.!?\n]|$)",
    re.IGNORECASE,
)
_BODY = re.compile(
    r"\b(?:saying|that says|with the body|body:|telling (?:him|her|them))\s*[:,]?\s*[\"“']?(.+?)[\"”']?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_SEARCH = re.compile(
    r"\b(?:search(?:\s+the\s+web)?(?:\s+for)?|look\s+up|google)\s+[\"“']?(.+?)[\"”']?\s*(?:[?.!\n]|$)", re.IGNORECASE
)
_EDIT_NOTICE = "a human reviewer replaced this tool call"
_NOT_NAMES = {"the", "a", "an", "my", "our", "your", "his", "her", "their", "them", "him", "me", "us", "everyone"}


def demo_responder(request: ChatRequest) -> Reply:
    """Answer the conversation so far, deterministically."""
    messages = request.messages
    if messages and messages[-1].get("role") == "tool":
        return Reply(content=summarise(messages))
    text = request.last_user_text.strip()
    calls = plan_tool_calls(text, request.tool_names)
    if calls:
        if request.body.get("parallel_tool_calls") is False:
            calls = calls[:1]
        return Reply(tool_calls=calls)
    return Reply(content=plain_answer(text, request.tool_names))


def word_by_word(reply: Reply, pace: float) -> Reply:
    """`reply` streamed one word per chunk, `pace` seconds apart (tool calls are sent at once), so that a
    page shows the answer being written."""
    if not reply.content or pace <= 0:
        return reply
    words = len(re.findall(r"\S+\s*|\s+", reply.content))
    return dataclasses.replace(reply, pieces=max(1, words), chunk_delay=pace)


# ---- deciding which tools to call --------------------------------------------------------------------


def plan_tool_calls(text: str, tools: list[str]) -> list[ToolCall]:
    """The tool calls a message asks for, among the offered `tools`, in the order the message asks."""
    if "send_email" in tools:
        emails = email_calls(text)
        if emails:
            return emails
    found: list[tuple[int, ToolCall]] = []
    ask = _ASK.search(text)
    if ask and "human_assistance" in tools:
        found.append((ask.start(), ToolCall("human_assistance", {"query": human_query(text, ask)})))
    elif ask and "AskHuman" in tools:
        found.append((ask.start(), ToolCall("AskHuman", {"question": human_query(text, ask)})))
    for match in _WEATHER.finditer(text):
        for place in re.split(r"\s*(?:,|\band\b)\s*", match.group(1)):
            place = place.strip(" .'")
            if not place or len(place.split()) > 3:
                continue
            if "get_weather" in tools:
                found.append((match.start(), ToolCall("get_weather", {"location": place})))
            elif "search" in tools:
                found.append((match.start(), ToolCall("search", {"query": f"weather in {place}"})))
    if "search" in tools and not any(call.name == "search" for _, call in found):
        search = _SEARCH.search(text)
        if search:
            found.append((search.start(), ToolCall("search", {"query": search.group(1).strip()})))
    return [call for _, call in sorted(found, key=lambda item: item[0])]


def human_query(text: str, ask: re.Match[str]) -> str:
    """What to ask the human: the words after "ask an expert:" (up to the question mark), else the message."""
    rest = text[ask.end() :]
    colon = re.match(r"\s*(?:for help|for assistance)?\s*[:,-]\s*(.+)", rest, re.DOTALL)
    if colon:
        question = colon.group(1).strip()
        mark = question.find("?")
        return question[: mark + 1] if mark >= 0 else question
    return text


def email_calls(text: str) -> list[ToolCall]:
    """``send_email(to, subject, body)`` for each recipient, when the message asks to email or send something."""
    if not _EMAIL_INTENT.search(text):
        return []
    addresses = list(_ADDRESS.finditer(text))
    if not addresses:
        name = next(
            (
                m.group(1)
                for pattern in (_TO_NAME, _EMAIL_NAME)
                for m in pattern.finditer(text)
                if m.group(1).lower() not in _NOT_NAMES
            ),
            None,
        )
        return [] if name is None else [_email(f"{name.lower()}@example.com", text)]
    calls = []
    for i, address in enumerate(addresses):
        following = addresses[i + 1].start() if i + 1 < len(addresses) else len(text)
        segment = text[address.end() : following] if len(addresses) > 1 else text
        calls.append(_email(address.group(0).rstrip("."), segment))
    return calls


def _email(to: str, text: str) -> ToolCall:
    recipient = to.split("@")[0].split(".")[0].title()
    subject_match = _SUBJECT.search(text)
    subject = subject_match.group(1).strip() if subject_match else "A quick note"
    subject = re.sub(r"\s+and\s+(?:one|another)(?:\s+to)?$", "", subject)
    subject = subject[:1].upper() + subject[1:]
    body_match = _BODY.search(text)
    topic = subject[:1].lower() + subject[1:]
    body = (
        body_match.group(1).strip()
        if body_match
        else f"Hi {recipient},\n\nAbout {topic}: let's talk soon.\n\nBest regards"
    )
    return ToolCall("send_email", {"to": to, "subject": subject, "body": body})


# ---- answering ----------------------------------------------------------------------------------------


def _calls_by_id(messages: list[dict[str, Any]]) -> dict[str, tuple[str, Mapping[str, Any]]]:
    calls: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for message in messages:
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            try:
                args = json.loads(function.get("arguments") or "{}")
            except ValueError:
                args = {}
            calls[str(call.get("id"))] = (str(function.get("name") or ""), args if isinstance(args, dict) else {})
    return calls


def summarise(messages: list[dict[str, Any]]) -> str:
    """A short answer from the tool results that end the conversation."""
    results: list[dict[str, Any]] = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        results.insert(0, message)
    calls = _calls_by_id(messages)
    lines = []
    for message in results:
        name, args = calls.get(str(message.get("tool_call_id")), (str(message.get("name") or "tool"), {}))
        result = message_text(message).strip() or "(no result)"
        lines.append(_describe(name, args, result))
    return "\n".join(lines)


def _describe(name: str, args: Mapping[str, Any], result: str) -> str:
    if name == "get_weather":
        return f"**Weather in {args.get('location', 'that place')}:** {result}"
    if name in ("human_assistance", "AskHuman"):
        return f"A person answered: “{result}”"
    if name == "search":
        return f"**Search results:** {result}"
    if name == "send_email":
        if result.lower().startswith(("user rejected", "error")):
            return f"I did not send the email to {args.get('to', 'them')}. {result}"
        if _EDIT_NOTICE in result.lower():
            return f"Done, as edited by the reviewer: {result.strip().split(chr(10))[-1].strip()}"
        return f"Done: {result}"
    return f"**{name}:** {result}"


def plain_answer(text: str, tools: list[str]) -> str:
    """The answer to a message that needs no tool: it says what it is and what to try."""
    said = f" You said: “{text}”." if text else ""
    answer = f"Hi! I'm the **{DEMO_LABEL}**, standing in for a real LLM (no API key needed).{said}"
    tries = []
    if "get_weather" in tools:
        tries.append("“what's the weather in Boston?”")
    if "human_assistance" in tools:
        tries.append("“ask an expert: which database should we use?”")
    if "AskHuman" in tools and "human_assistance" not in tools:
        tries.append("“ask a human: where are you?”")
    if "search" in tools:
        tries.append("“search for LangGraph”")
    if "send_email" in tools:
        tries.append("“send an email to bob@example.com about lunch”")
    if tries:
        answer += "\nTry " + ", ".join(tries) + "."
    return answer
