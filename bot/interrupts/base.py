"""The renderer protocol and what the renderers share: the text-answer base, and how a decided or superseded
request looks. Rendering, clicking and parsing are pure functions over plain data, tested without Slack."""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from bot import blocks as b
from bot import text as t
from bot.interrupts import long
from bot.types import Answer, Errors, InvalidAction, OpenModal, Progress, Request, SlackMessage, Step, Verdict

ANSWER_BLOCK = "lgslack_answer"
MODAL_QUESTION_SECTIONS = 5


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


QUOTE_LIMIT = 2800
"""How much of a section the decided view's quote of an answer takes (its note fits in the rest)."""


def _quote(answer_text: str) -> tuple[str, int]:
    """The answer quoted in mrkdwn, cut to QUOTE_LIMIT at a line or word break, and how many characters that
    leaves out (about: as a person counts them)."""
    full = "\n".join("&gt; " + line for line in t.to_mrkdwn(answer_text).splitlines()) or "&gt; (empty)"
    if len(full) <= QUOTE_LIMIT:
        return full, 0
    piece = t.split(full, QUOTE_LIMIT - 1)[0].rstrip("\n")
    shown = html.unescape("\n".join(line.removeprefix("&gt; ") for line in piece.split("\n")))
    return piece + "…", max(len(answer_text) - len(shown), 1)


def answer_hidden(answer_text: str) -> int:
    """How many characters of an answer the decided view's quote leaves out: with it,
    `long.more_blocks(record_id, answer_hidden(text), long.ANSWER)` gives the rest a "Show all" button."""
    return _quote(answer_text)[1]


def quoted(answer_text: str) -> str:
    """The answer as the decided view quotes it: within one section, saying how much is left out."""
    quote, hidden = _quote(answer_text)
    return quote + (f"\n_{hidden:,} more characters of the answer are not shown here._" if hidden else "")


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

    def question_sections(self, request: Request) -> list[str]:
        """The whole question as mrkdwn sections (Show all pages through them)."""
        return [piece for piece in t.split(t.to_mrkdwn(self.question(request))) if piece] or ["_(no question)_"]

    def modal_blocks(self, request: Request) -> list[dict[str, Any]]:
        """What the answer modal shows above its field: the question's start, and a note if it goes on."""
        shown, hidden = long.fit(self.question_sections(request), MODAL_QUESTION_SECTIONS)
        note = [b.context(long.left_out(hidden, "question", in_modal=True))] if hidden else []
        return [*map(b.section, shown), *note]

    def render(self, record_id: str, request: Request, progress: Progress) -> SlackMessage:
        shown, hidden = long.fit(self.question_sections(request), long.MESSAGE_SECTIONS)
        buttons = [b.button(self.button, record_id, "answer", "primary")]
        if hidden:
            buttons.append(long.show_button(record_id))
        blocks = [
            b.context(":raising_hand: *The agent needs your input*"),
            *map(b.section, shown),
            *([b.context(long.left_out(hidden))] if hidden else []),
            b.actions("lgslack_actions", buttons),
            b.context(f"Reply in this thread or click *{self.button}*."),
        ]
        return SlackMessage(text=f"The agent needs your input: {t.escape(self.summary(request))}", blocks=blocks)

    def click(self, record_id: str, request: Request, action: str, progress: Progress) -> Answer | Step | OpenModal:
        if action != "answer":
            raise InvalidAction(action)
        intro = self.modal_blocks(request)
        if self.prefilled:
            fields = b.text_fields(
                ANSWER_BLOCK,
                self.modal_label,
                self.initial(request),
                room=b.MODAL_BLOCKS - len(intro),
                too_long="Answer with a reply in this request's thread instead: your reply is the answer.",
            )
        else:
            fields = [b.text_input(ANSWER_BLOCK, self.modal_label)]
        submit = "Send" if any(block["type"] == "input" for block in fields) else None
        return OpenModal(b.modal(record_id, "answer", self.modal_title, [*intro, *fields], submit=submit))

    def submit(
        self, request: Request, action: str, values: dict[str, Any], progress: Progress
    ) -> Answer | Step | Errors:
        if self.prefilled:
            answer = b.submitted_whole(values, ANSWER_BLOCK, self.initial(request)) or ""
        else:
            answer = b.submitted_text(values, ANSWER_BLOCK)
        if not answer.strip():
            return {b.field_id(values, ANSWER_BLOCK): "Write an answer before sending."}
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


@runtime_checkable
class ShowsDecisions(Protocol):
    """A renderer whose decided view is read from the value the request resumed with (the reviews: each call's
    decision, as the graph got it), not only from the answer's text."""

    def decided_view(self, request: Request, value: Any, progress: Progress, answer_text: str) -> list[str]: ...


DECIDED_SECTIONS = b.MESSAGE_BLOCKS - 3
"""The decided view's sections: all a message's blocks but its heading, its "more" line and who decided."""


def render_decided(
    renderer: Renderer,
    request: Request,
    *,
    user_id: str,
    answer_text: str,
    decided_at: datetime,
    progress: Progress,
    resume_value: Any = None,
    record_id: str = "",
) -> SlackMessage:
    """The request's message once decided: who, what and when, and no live buttons. `resume_value` is what the
    graph resumed with: a review shows from it each call's decision and the arguments it ran with."""
    question = t.escape(renderer.summary(request))
    who = f"<@{user_id}>" if user_id[:1] in ("U", "W") else user_id
    more: list[b.Block] = []
    if isinstance(renderer, ShowsDecisions) and resume_value is not None:
        lines = renderer.decided_view(request, resume_value, progress, answer_text)
    else:
        lines = renderer.decided_lines(request, answer_text, progress)
        if record_id:
            more = long.more_blocks(record_id, answer_hidden(answer_text), long.ANSWER)
    room = DECIDED_SECTIONS - len(more)
    sections = [b.section(t.shorten(line, t.SECTION_LIMIT)) for line in lines[:room]]
    if len(lines) > room:
        sections.append(b.context(f"… and {len(lines) - room} more not shown."))
    blocks = [
        b.section(f":white_check_mark: *{renderer.verb}:* {question}"),
        *sections,
        *more,
        b.context(f"{renderer.verb} by {who} on {when(decided_at)}"),
    ]
    text = f"{renderer.verb} by {who}: {t.escape(t.shorten(answer_text, 200))}"
    return SlackMessage(text=text, blocks=blocks)


def render_superseded(renderer: Renderer, request: Request) -> SlackMessage:
    question = t.escape(renderer.summary(request))
    blocks = [b.section(f":heavy_minus_sign: {question}"), b.context("The agent no longer needs this answer.")]
    return SlackMessage(text="The agent no longer needs this answer.", blocks=blocks)
