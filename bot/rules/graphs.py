"""Per-graph run options from the `BOT_CONFIG` file: breakpoints a deployment sets at run time.

A client of LangGraph may stop a graph before a node on each run (`interrupt_before=[...]` passed to
`stream`/`invoke` or the server's `runs.stream`) instead of compiling the breakpoint in. The bot does the same for
the graphs a `[graphs."<graph>"]` table names, on every run, on both runtimes:

    [graphs."graphs.ask_human:graph"]     # BOT_GRAPH's module:attribute, or the assistant/graph id on a server
    interrupt_before = ["ask_human"]      # node names, or "*" for every node
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.errors import ConfigError


@dataclass(frozen=True)
class GraphOptions:
    interrupt_before: tuple[str, ...] | str = ()
    """Node names the graph stops before on every run, or "*" (every node)."""

    def nodes(self, compiled: Any) -> list[str]:
        """Run-time and compiled-in breakpoints together, as node names (`compiled` is the graph's own list)."""
        names = list(compiled) if isinstance(compiled, list | tuple) else []
        if self.interrupt_before == "*":
            return ["*"]
        if compiled == "*":
            return ["*"]
        return [*names, *[n for n in self.interrupt_before if n not in names]]


NO_OPTIONS = GraphOptions()


def _nodes(value: Any, where: str) -> tuple[str, ...] | str:
    if value == "*":
        return "*"
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError("BOT_CONFIG", f"has a bad {where}", 'write a list of node names, like ["ask_human"], or "*"')
    return tuple(value)


def load_graph_options(config: Mapping[str, Any] | None) -> dict[str, GraphOptions]:
    """The `[graphs."<graph>"]` tables, by graph; unknown keys are refused (a typo must not pass silently)."""
    tables = (config or {}).get("graphs", {})
    if not isinstance(tables, Mapping):
        raise ConfigError("BOT_CONFIG", "has a bad [graphs] section", 'write [graphs."module:attribute"] tables')
    options: dict[str, GraphOptions] = {}
    for graph, table in tables.items():
        where = f'[graphs."{graph}"]'
        if not isinstance(table, Mapping):
            raise ConfigError("BOT_CONFIG", f"has a bad {where}", "write a table with interrupt_before")
        unknown = sorted(set(table) - {"interrupt_before"})
        if unknown:
            raise ConfigError(
                "BOT_CONFIG", f"has unknown keys in {where}: {', '.join(unknown)}", "the only key is interrupt_before"
            )
        options[str(graph)] = GraphOptions(interrupt_before=_nodes(table.get("interrupt_before", []), where))
    return options
