"""A renderer of the operator's own, named in BOT_RENDERERS by the tests (as the README's example is)."""

from __future__ import annotations

from bot import blocks as b
from bot.interrupts.questions import QuestionRenderer
from bot.types import Progress, Request, SlackMessage

HEADING = ":memo: *Feedback wanted by the team*"


class FeedbackRenderer(QuestionRenderer):
    """graphs.feedback_workflow's question, with a heading of its own; answered like any question."""

    kind = "team_feedback"

    def matches(self, request: Request) -> bool:
        return isinstance(request.value, str) and request.value.startswith("Please provide feedback")

    def render(self, record_id: str, request: Request, progress: Progress) -> SlackMessage:
        message = super().render(record_id, request, progress)
        return SlackMessage(text=message.text, blocks=[b.context(HEADING), *message.blocks])


not_a_renderer = object()
