"""The registry: the renderers in the order they are tried."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence

from bot.errors import ConfigError
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


RENDERERS_HINT = "list module:Class entries, comma-separated, e.g. mypkg.renderers:TicketRenderer"
RENDERER_METHODS = "matches render click submit reply complete summary tools decided_lines decline".split()


def load_renderers(spec: str | None) -> tuple[Renderer, ...]:
    """BOT_RENDERERS: `module:Class` (or `module:instance`) entries, comma-separated, each a renderer tried before
    the built-in ones, in the order listed. A class is made with no arguments. A bad entry is a ConfigError."""
    renderers: list[Renderer] = []
    for entry in (part.strip() for part in (spec or "").split(",")):
        if not entry:
            continue
        module_name, _, attribute = entry.partition(":")
        if not module_name or not attribute:
            raise ConfigError("BOT_RENDERERS", f"lists {entry!r}, not module:Class", RENDERERS_HINT)
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigError("BOT_RENDERERS", f"lists {entry!r}, whose module can't be imported", str(exc)) from None
        target = getattr(module, attribute, None)
        if target is None:
            raise ConfigError("BOT_RENDERERS", f"lists {entry!r}, which {module_name} does not define", RENDERERS_HINT)
        try:
            renderer = target() if isinstance(target, type) else target
        except Exception as exc:
            raise ConfigError(
                "BOT_RENDERERS", f"lists {entry!r}, which can't be made with no arguments", str(exc)
            ) from None
        missing = [name for name in RENDERER_METHODS if not callable(getattr(renderer, name, None))]
        if missing or not isinstance(getattr(renderer, "kind", None), str):
            lacks = ", ".join(missing) or "kind"
            raise ConfigError(
                "BOT_RENDERERS",
                f"lists {entry!r}, which is not a renderer (no {lacks})",
                "subclass one of bot.interrupts' renderers, e.g. bot.interrupts.questions.QuestionRenderer",
            )
        renderers.append(renderer)
    return tuple(renderers)


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
