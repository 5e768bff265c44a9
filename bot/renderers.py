"""Renderers: how an interrupt looks in Slack and how a person's answer becomes the resume value.

Rendering, clicking and parsing are pure functions over plain data, tested without Slack.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from bot import blocks as b
from bot import text as t

ANSWER_BLOCK = "lgslack_answer"
Progress = Mapping[str, Mapping[str, Any]]
"""Decisions already taken on the items of a multi-item request: key → {decision, text, user, verdict}."""


class InvalidAction(ValueError):
    """A button or modal that this request does not offer (stale or forged)."""


@dataclass(frozen=True)
class Request:
    """What an interrupt asks: its value and, when given, the JSON schema its answer must match."""

    value: Any
    schema: dict[str, Any] | None = None


@dataclass(frozen=True)
class Verdict:
    """One decision, as the audit records it."""

    decision: str
    action: str | None = None
    edited_args: Any = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "action": self.action,
            "edited_args": self.edited_args,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Answer:
    """The final answer: the value the graph resumes with, how to show it, and what to audit."""

    value: Any
    text: str
    verdicts: tuple[Verdict, ...] = ()


@dataclass(frozen=True)
class Step:
    """A decision on one item of a request with several; the request resumes once all are decided."""

    key: str
    decision: Any
    text: str
    verdict: Verdict


@dataclass(frozen=True)
class OpenModal:
    view: dict[str, Any]


Errors = dict[str, str]


@dataclass(frozen=True)
class SlackMessage:
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """As the outbox stores it; `SlackMessage(**stored)` reads it back."""
        return {"text": self.text, "blocks": self.blocks}


class Renderer(Protocol):
    kind: str
    verb: str
    """How a decided request reads: "Answered", "Decided"."""

    def matches(self, request: Request) -> bool: ...

    def render(self, record_id: str, request: Request, progress: Progress) -> SlackMessage: ...

    def click(self, record_id: str, request: Request, action: str, progress: Progress) -> Answer | Step | OpenModal: ...

    def submit(
        self, request: Request, action: str, values: dict[str, Any], progress: Progress
    ) -> Answer | Step | Errors: ...

    def reply(self, request: Request, text: str) -> Answer | None: ...

    def complete(self, request: Request, progress: Progress) -> Answer | None: ...

    def summary(self, request: Request) -> str: ...

    def tools(self, request: Request, action: str) -> list[str]:
        """Tool names an action decides on (approvals policy applies); empty for a plain question."""
        ...

    def decided_lines(self, request: Request, answer_text: str, progress: Progress) -> list[str]: ...

    def decline(self, request: Request, reason: str) -> Answer | None:
        """The answer that says no on everyone's behalf (a timeout, a cancellation); None if there is none."""
        ...


def quoted(answer_text: str) -> str:
    answer = t.to_mrkdwn(t.shorten(answer_text, 2800))
    return "\n".join("&gt; " + line for line in answer.splitlines()) or "&gt; (empty)"


class TextAnswer:
    """Base of the renderers whose answer is one piece of text, by thread reply or a modal."""

    kind = "text"
    verb = "Answered"
    button = "Answer"
    modal_title = "Answer the agent"
    modal_label = "Your answer"
    prefilled = False

    def matches(self, request: Request) -> bool:
        raise NotImplementedError

    def question(self, request: Request) -> str:
        raise NotImplementedError

    def to_value(self, request: Request, answer: str) -> Any:
        return answer

    def initial(self, request: Request) -> str:
        return ""

    def summary(self, request: Request) -> str:
        return t.shorten(self.question(request), 150)

    def tools(self, request: Request, action: str) -> list[str]:
        return []

    def question_blocks(self, request: Request) -> list[dict[str, Any]]:
        return [b.section(piece) for piece in t.split(t.to_mrkdwn(self.question(request)))[:10]]

    def render(self, record_id: str, request: Request, progress: Progress) -> SlackMessage:
        blocks = [
            b.context(":raising_hand: *The agent needs your input*"),
            *self.question_blocks(request),
            b.actions("lgslack_actions", [b.button(self.button, record_id, "answer", "primary")]),
            b.context(f"Reply in this thread or click *{self.button}*."),
        ]
        return SlackMessage(text=f"The agent needs your input: {t.escape(self.summary(request))}", blocks=blocks)

    def click(self, record_id: str, request: Request, action: str, progress: Progress) -> Answer | Step | OpenModal:
        if action != "answer":
            raise InvalidAction(action)
        field_block = b.text_input(
            ANSWER_BLOCK, self.modal_label, initial=self.initial(request) if self.prefilled else None
        )
        return OpenModal(
            b.modal(record_id, "answer", self.modal_title, [*self.question_blocks(request)[:5], field_block])
        )

    def submit(
        self, request: Request, action: str, values: dict[str, Any], progress: Progress
    ) -> Answer | Step | Errors:
        answer = b.submitted_text(values, ANSWER_BLOCK)
        if not answer.strip():
            return {ANSWER_BLOCK: "Write an answer before sending."}
        return Answer(self.to_value(request, answer), answer, (Verdict("answer"),))

    def reply(self, request: Request, text: str) -> Answer | None:
        if not text.strip():
            return None
        return Answer(self.to_value(request, text), text, (Verdict("answer"),))

    def complete(self, request: Request, progress: Progress) -> Answer | None:
        return None

    def decided_lines(self, request: Request, answer_text: str, progress: Progress) -> list[str]:
        return [quoted(answer_text)]

    def decline(self, request: Request, reason: str) -> Answer | None:
        return Answer(self.to_value(request, reason), reason, (Verdict("declined", reason=reason),))


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

    def question_blocks(self, request: Request) -> list[dict[str, Any]]:
        return [b.section("*Please revise this text:*"), *super().question_blocks(request)]


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

    def question_blocks(self, request: Request) -> list[dict[str, Any]]:
        return [b.section(b.code(request.value))]

    def to_value(self, request: Request, answer: str) -> Any:
        try:
            return json.loads(answer)
        except ValueError:
            return answer


class Registry:
    """The renderers in the order they are tried; the first whose `matches` is true renders a request."""

    def __init__(self, renderers: Sequence[Renderer] | None = None) -> None:
        self._renderers: list[Renderer] = list(renderers) if renderers is not None else default_renderers()

    def register(self, renderer: Renderer) -> None:
        """Add a renderer, tried before the built-in ones."""
        self._renderers.insert(0, renderer)

    def for_request(self, request: Request) -> Renderer:
        for renderer in self._renderers:
            if renderer.matches(request):
                return renderer
        return JsonRenderer()

    def by_kind(self, kind: str) -> Renderer:
        for renderer in self._renderers:
            if renderer.kind == kind:
                return renderer
        return JsonRenderer()


def default_renderers() -> list[Renderer]:
    from bot.forms import SchemaRenderer
    from bot.reviews import AgentInboxRenderer, HitlBatchRenderer, ToolApprovalRenderer

    return [
        HitlBatchRenderer(),
        ToolApprovalRenderer(),
        AgentInboxRenderer(),
        BreakpointRenderer(),
        AskHumanRenderer(),
        SchemaRenderer(),
        ReviseRenderer(),
        QueryRenderer(),
        QuestionRenderer(),
        JsonRenderer(),
    ]


def when(moment: datetime) -> str:
    epoch = int(moment.timestamp())
    fallback = moment.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{epoch}^{{date_short_pretty}} at {{time}}|{fallback}>"


def render_decided(
    renderer: Renderer,
    request: Request,
    *,
    user_id: str,
    answer_text: str,
    decided_at: datetime,
    progress: Progress,
) -> SlackMessage:
    """The request's message once decided: who, what and when, and no live buttons."""
    question = t.escape(renderer.summary(request))
    who = f"<@{user_id}>" if user_id[:1] in ("U", "W") else user_id
    blocks = [
        b.section(f":white_check_mark: *{renderer.verb}:* {question}"),
        *[b.section(line) for line in renderer.decided_lines(request, answer_text, progress)],
        b.context(f"{renderer.verb} by {who} on {when(decided_at)}"),
    ]
    text = f"{renderer.verb} by {who}: {t.escape(t.shorten(answer_text, 200))}"
    return SlackMessage(text=text, blocks=blocks)


def render_superseded(renderer: Renderer, request: Request) -> SlackMessage:
    question = t.escape(renderer.summary(request))
    blocks = [b.section(f":heavy_minus_sign: {question}"), b.context("The agent no longer needs this answer.")]
    return SlackMessage(text="The agent no longer needs this answer.", blocks=blocks)
