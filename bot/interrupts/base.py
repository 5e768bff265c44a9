"""The renderer protocol and what the renderers share: the text-answer base, and how a decided or superseded
request looks. Rendering, clicking and parsing are pure functions over plain data, tested without Slack."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from bot import blocks as b
from bot import text as t
from bot.types import Answer, Errors, InvalidAction, OpenModal, Progress, Request, SlackMessage, Step, Verdict

ANSWER_BLOCK = "lgslack_answer"


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
