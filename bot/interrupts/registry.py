"""The registry: the renderers in the order they are tried."""

from __future__ import annotations

import logging
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

log = logging.getLogger(__name__)
PROBE = "00000000-0000-0000-0000-000000000000"
"""The record id a renderer is tried with before a request is recorded."""


class Registry:
    """The renderers in the order they are tried; the first whose `matches` is true renders a request."""

    def __init__(self, renderers: Sequence[Renderer] | None = None) -> None:
        self._renderers: list[Renderer] = list(renderers) if renderers is not None else default_renderers()

    def register(self, renderer: Renderer) -> None:
        """Add a renderer, tried before the built-in ones."""
        self._renderers.insert(0, renderer)

    def for_request(self, request: Request) -> Renderer:
        """The first renderer that matches and can show the request: one that raises on this payload (a
        malformed approval request, say) is passed over, so the request is shown by the next one, at worst as
        JSON, and never lost."""
        for renderer in self._renderers:
            try:
                if renderer.matches(request):
                    renderer.render(PROBE, request, {})
                    renderer.tools(request, "")
                    return renderer
            except Exception:
                log.warning(
                    "the %s renderer can't show this request; trying the next one", renderer.kind, exc_info=True
                )
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
