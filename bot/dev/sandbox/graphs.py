"""Choosing the agent's graph per channel from the sandbox's page: a hook the app implements.

The sandbox knows nothing about graphs; an app that can switch graphs per channel passes a `GraphChooser`
to ``SlackSandbox(graph_chooser=...)`` and the page offers its options at ``/control/graphs``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class GraphOption:
    """One graph a channel may use: its id (e.g. ``graphs.chatbot:graph``), a short label, a description,
    and example messages to try with it."""

    id: str
    label: str
    description: str = ""
    examples: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form for the control API."""
        data = asdict(self)
        data["examples"] = list(self.examples)
        return data


class GraphChooser(Protocol):
    """What the sandbox asks the app about graphs; raise ValueError from `choose` to refuse a choice."""

    async def options(self) -> Sequence[GraphOption]:
        """The graphs a channel may use, the default first."""
        ...

    async def current(self, channel: str) -> str | None:
        """The graph new conversations in `channel` use."""
        ...

    async def choose(self, channel: str, graph: str | None) -> None:
        """Use `graph` for new conversations in `channel` (None: back to the default)."""
        ...
