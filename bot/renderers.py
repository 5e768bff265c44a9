"""Renderers: how an interrupt payload looks in Slack and how a person's answer becomes the resume value.

Rendering and parsing are pure functions over plain data, exact inverses of each other, tested without Slack.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from bot import text as t

ACTION_OPEN = "lgslack.open"
MODAL_CALLBACK = "lgslack.submit"
ANSWER_BLOCK = "lgslack_answer"
ANSWER_ACTION = "value"


@dataclass(frozen=True)
class Answer:
    """A person's answer: the value the graph resumes with, and how to show it."""

    value: Any
    text: str


@dataclass(frozen=True)
class SlackMessage:
    text: str
    blocks: list[dict[str, Any]]


class Renderer(Protocol):
    kind: str

    def matches(self, payload: Any) -> bool: ...

    def render(self, record_id: str, payload: Any) -> SlackMessage: ...

    def build_modal(self, record_id: str, payload: Any) -> dict[str, Any]: ...

    def parse_submission(self, payload: Any, values: Mapping[str, Any]) -> Answer | dict[str, str]: ...

    def parse_reply(self, payload: Any, reply: str) -> Answer | None: ...

    def summary(self, payload: Any) -> str: ...


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def _section(mrkdwn: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn}}


def _context(mrkdwn: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn}]}


def _code(value: Any) -> str:
    dumped = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return "```" + t.escape(t.shorten(dumped, t.SECTION_LIMIT - 8)) + "```"


def submitted_text(values: Mapping[str, Any], block_id: str = ANSWER_BLOCK, action_id: str = ANSWER_ACTION) -> str:
    """The text typed into a plain_text_input, from a view_submission's state.values."""
    element = values.get(block_id, {}).get(action_id, {})
    return str(element.get("value") or "")


class TextAnswer:
    """Base of the renderers whose answer is one piece of text, by thread reply or a modal."""

    kind = "text"
    button = "Answer"
    modal_title = "Answer the agent"
    modal_label = "Your answer"
    prefilled = False

    def matches(self, payload: Any) -> bool:
        raise NotImplementedError

    def question(self, payload: Any) -> str:
        raise NotImplementedError

    def to_value(self, payload: Any, answer: str) -> Any:
        return answer

    def initial(self, payload: Any) -> str:
        return ""

    def summary(self, payload: Any) -> str:
        return t.shorten(self.question(payload), 150)

    def question_blocks(self, payload: Any) -> list[dict[str, Any]]:
        return [_section(piece) for piece in t.split(t.to_mrkdwn(self.question(payload)))[:10]]

    def render(self, record_id: str, payload: Any) -> SlackMessage:
        blocks = [
            _context(":raising_hand: *The agent needs your input*"),
            *self.question_blocks(payload),
            {
                "type": "actions",
                "block_id": "lgslack_actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": ACTION_OPEN,
                        "text": _plain(self.button),
                        "style": "primary",
                        "value": record_id,
                    }
                ],
            },
            _context(f"Reply in this thread or click *{self.button}*."),
        ]
        return SlackMessage(text=f"The agent needs your input: {self.summary(payload)}", blocks=blocks)

    def build_modal(self, record_id: str, payload: Any) -> dict[str, Any]:
        element: dict[str, Any] = {
            "type": "plain_text_input",
            "action_id": ANSWER_ACTION,
            "multiline": True,
            "min_length": 1,
        }
        if self.prefilled:
            element["initial_value"] = self.initial(payload)[:3000]
        return {
            "type": "modal",
            "callback_id": MODAL_CALLBACK,
            "private_metadata": record_id,
            "title": _plain(self.modal_title),
            "submit": _plain("Send"),
            "close": _plain("Cancel"),
            "blocks": [
                *self.question_blocks(payload)[:5],
                {"type": "input", "block_id": ANSWER_BLOCK, "label": _plain(self.modal_label), "element": element},
            ],
        }

    def parse_submission(self, payload: Any, values: Mapping[str, Any]) -> Answer | dict[str, str]:
        answer = submitted_text(values)
        if not answer.strip():
            return {ANSWER_BLOCK: "Write an answer before sending."}
        return Answer(self.to_value(payload, answer), answer)

    def parse_reply(self, payload: Any, reply: str) -> Answer | None:
        if not reply.strip():
            return None
        return Answer(self.to_value(payload, reply), reply)


class QuestionRenderer(TextAnswer):
    """`interrupt("a question?")`: the answer text is the resume value."""

    kind = "question"

    def matches(self, payload: Any) -> bool:
        return isinstance(payload, str)

    def question(self, payload: Any) -> str:
        return str(payload)


class QueryRenderer(TextAnswer):
    """The seeds' `human_assistance` tool: `interrupt({"query": q})` resumes with `{"data": answer}`."""

    kind = "query"

    def matches(self, payload: Any) -> bool:
        return isinstance(payload, Mapping) and isinstance(payload.get("query"), str)

    def question(self, payload: Any) -> str:
        return str(payload["query"])

    def to_value(self, payload: Any, answer: str) -> Any:
        return {"data": answer}


class ReviseRenderer(TextAnswer):
    """`interrupt({"text_to_revise": t})`: an Edit modal prefilled with t resumes with the edited text."""

    kind = "revise"
    button = "Edit"
    modal_title = "Revise the text"
    modal_label = "Text"
    prefilled = True

    def matches(self, payload: Any) -> bool:
        return isinstance(payload, Mapping) and isinstance(payload.get("text_to_revise"), str)

    def question(self, payload: Any) -> str:
        return str(payload["text_to_revise"])

    def initial(self, payload: Any) -> str:
        return str(payload["text_to_revise"])

    def question_blocks(self, payload: Any) -> list[dict[str, Any]]:
        return [_section("*Please revise this text:*"), *super().question_blocks(payload)]


class JsonRenderer(TextAnswer):
    """Anything else: shown as readable JSON; the answer is parsed as JSON when it is JSON, else kept as text."""

    kind = "json"
    button = "Reply"
    modal_title = "Reply to the agent"
    modal_label = "Your reply (text or JSON)"

    def matches(self, payload: Any) -> bool:
        return True

    def question(self, payload: Any) -> str:
        return json.dumps(payload, ensure_ascii=False, default=str)

    def question_blocks(self, payload: Any) -> list[dict[str, Any]]:
        return [_section(_code(payload))]

    def to_value(self, payload: Any, answer: str) -> Any:
        try:
            return json.loads(answer)
        except ValueError:
            return answer


class Registry:
    """The renderers in the order they are tried; the first whose `matches` is true renders a payload."""

    def __init__(self, renderers: Sequence[Renderer] | None = None) -> None:
        self._renderers: list[Renderer] = list(renderers) if renderers is not None else default_renderers()

    def register(self, renderer: Renderer) -> None:
        """Add a renderer, tried before the built-in ones."""
        self._renderers.insert(0, renderer)

    def for_payload(self, payload: Any) -> Renderer:
        for renderer in self._renderers:
            if renderer.matches(payload):
                return renderer
        return JsonRenderer()

    def by_kind(self, kind: str) -> Renderer:
        for renderer in self._renderers:
            if renderer.kind == kind:
                return renderer
        return JsonRenderer()


def default_renderers() -> list[Renderer]:
    return [ReviseRenderer(), QueryRenderer(), QuestionRenderer(), JsonRenderer()]


def _when(moment: datetime) -> str:
    epoch = int(moment.timestamp())
    fallback = moment.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{epoch}^{{date_short_pretty}} at {{time}}|{fallback}>"


def render_decided(
    renderer: Renderer, payload: Any, *, user_id: str, answer_text: str, decided_at: datetime
) -> SlackMessage:
    """The interrupt's message once answered: who, what and when, and no live buttons."""
    question = renderer.summary(payload)
    answer = t.to_mrkdwn(t.shorten(answer_text, 2800))
    quoted = "\n".join("&gt; " + line for line in answer.splitlines()) or "&gt; (empty)"
    blocks = [
        _section(f":white_check_mark: *Answered:* {t.escape(question)}"),
        _section(quoted),
        _context(f"Answered by <@{user_id}> on {_when(decided_at)}"),
    ]
    return SlackMessage(text=f"Answered by <@{user_id}>: {t.escape(t.shorten(answer_text, 200))}", blocks=blocks)


def render_superseded(renderer: Renderer, payload: Any) -> SlackMessage:
    question = t.escape(renderer.summary(payload))
    blocks = [
        _section(f":heavy_minus_sign: ~{question}~"),
        _context("The agent no longer needs this answer."),
    ]
    return SlackMessage(text="The agent no longer needs this answer.", blocks=blocks)
