"""Questions: renderers whose answer is one piece of text (the seeds' payloads, typed ask-human, anything else)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bot import blocks as b
from bot.interrupts.base import TextAnswer
from bot.types import Request


class AskHumanRenderer(TextAnswer):
    """A typed ask-human payload `{"type": "ask_human", "question": q}` resumes with `{"answer": text}`."""

    kind = "ask_human"

    def matches(self, request: Request) -> bool:
        return isinstance(request.value, Mapping) and request.value.get("type") == "ask_human"

    def question(self, request: Request) -> str:
        return str(request.value.get("question") or "")

    def to_value(self, request: Request, answer: str) -> Any:
        return {"answer": answer}


class QuestionRenderer(TextAnswer):
    """`interrupt("a question?")`: the answer text is the resume value."""

    kind = "question"

    def matches(self, request: Request) -> bool:
        return isinstance(request.value, str) and request.schema is None

    def question(self, request: Request) -> str:
        return str(request.value)


class QueryRenderer(TextAnswer):
    """The seeds' `human_assistance` tool: `interrupt({"query": q})` resumes with `{"data": answer}`."""

    kind = "query"

    def matches(self, request: Request) -> bool:
        return isinstance(request.value, Mapping) and isinstance(request.value.get("query"), str)

    def question(self, request: Request) -> str:
        return str(request.value["query"])

    def to_value(self, request: Request, answer: str) -> Any:
        return {"data": answer}


class ReviseRenderer(TextAnswer):
    """`interrupt({"text_to_revise": t})`: an Edit modal prefilled with t resumes with the edited text."""

    kind = "revise"
    button = "Edit"
    modal_title = "Revise the text"
    modal_label = "Text"
    prefilled = True

    def matches(self, request: Request) -> bool:
        return isinstance(request.value, Mapping) and isinstance(request.value.get("text_to_revise"), str)

    def question(self, request: Request) -> str:
        return str(request.value["text_to_revise"])

    def initial(self, request: Request) -> str:
        return str(request.value["text_to_revise"])

    def question_sections(self, request: Request) -> list[str]:
        return ["*Please revise this text:*", *super().question_sections(request)]

    def modal_blocks(self, request: Request) -> list[dict[str, Any]]:
        # The fields below hold the text itself.
        return [b.section("*Please revise this text:*")]


class BreakpointRenderer(TextAnswer):
    """A graph stopped before a human node (`interrupt_before`): the question from the model's tool call."""

    kind = "breakpoint"

    def matches(self, request: Request) -> bool:
        return isinstance(request.value, Mapping) and request.value.get("type") == "breakpoint"

    def question(self, request: Request) -> str:
        return str(request.value.get("question") or "The agent is waiting for you.")


class JsonRenderer(TextAnswer):
    """Anything else: shown as readable JSON; the answer is parsed as JSON when it is JSON, else kept as text."""

    kind = "json"
    button = "Reply"
    modal_title = "Reply to the agent"
    modal_label = "Your reply (text or JSON)"

    def matches(self, request: Request) -> bool:
        return True

    def question(self, request: Request) -> str:
        return json.dumps(request.value, ensure_ascii=False, default=str)

    def question_sections(self, request: Request) -> list[str]:
        return b.code_sections(request.value)

    def to_value(self, request: Request, answer: str) -> Any:
        try:
            return json.loads(answer)
        except ValueError:
            return answer
