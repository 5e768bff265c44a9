"""The registry: the renderers in the order they are tried."""

from __future__ import annotations

from collections.abc import Sequence

from bot.interrupts.base import Renderer
from bot.interrupts.forms import SchemaRenderer
from bot.interrupts.questions import (
    AskHumanRenderer,
    BreakpointRenderer,
    JsonRenderer,
    QueryRenderer,
    QuestionRenderer,
    ReviseRenderer,
)
from bot.interrupts.reviews import AgentInboxRenderer, HitlBatchRenderer, ToolApprovalRenderer
from bot.types import Request


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
