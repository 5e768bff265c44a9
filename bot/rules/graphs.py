"""Per-graph options from the `BOT_CONFIG` file: breakpoints a deployment sets at run time, and the prompts the
assistant pane suggests.

A client of LangGraph may stop a graph before a node on each run (`interrupt_before=[...]` passed to
`stream`/`invoke` or the server's `runs.stream`) instead of compiling the breakpoint in. The bot does the same for
the graphs a `[graphs."<graph>"]` table names, on every run, on both runtimes:

    [graphs."graphs.ask_human:graph"]     # BOT_GRAPH's module:attribute, or the assistant/graph id on a server
    interrupt_before = ["ask_human"]      # node names, or "*" for every node
    prompts = [{title = "Weather", message = "What's the weather in Boston?"}]   # the assistant pane's suggestions
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.errors import ConfigError

MAX_PROMPTS = 4
"""Slack shows at most four suggested prompts in an assistant thread."""


@dataclass(frozen=True)
class Prompt:
    """A suggested prompt of the assistant pane: its label, and the message it sends."""

    title: str
    message: str


@dataclass(frozen=True)
class GraphOptions:
    interrupt_before: tuple[str, ...] | str = ()
    """Node names the graph stops before on every run, or "*" (every node)."""
    prompts: tuple[Prompt, ...] = ()
    """Suggested prompts for a new assistant thread (none: the bot's default)."""

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


def _prompts(value: Any, where: str) -> tuple[Prompt, ...]:
    hint = f'write up to {MAX_PROMPTS} tables like {{title = "Weather", message = "What is the weather?"}}'
    if not isinstance(value, list) or len(value) > MAX_PROMPTS:
        raise ConfigError("BOT_CONFIG", f"has a bad {where}.prompts", hint)
    prompts = []
    for item in value:
        if not (isinstance(item, Mapping) and set(item) == {"title", "message"}):
            raise ConfigError("BOT_CONFIG", f"has a bad prompt in {where}.prompts", hint)
        title, message = item["title"], item["message"]
        if not (isinstance(title, str) and title.strip() and isinstance(message, str) and message.strip()):
            raise ConfigError("BOT_CONFIG", f"has a bad prompt in {where}.prompts", hint)
        prompts.append(Prompt(title=title.strip(), message=message.strip()))
    return tuple(prompts)


def load_graph_options(config: Mapping[str, Any] | None) -> dict[str, GraphOptions]:
    """The `[graphs."<graph>"]` tables, by graph; unknown keys are refused (a typo must not pass silently)."""
    tables = (config or {}).get("graphs", {})
    if not isinstance(tables, Mapping):
        raise ConfigError("BOT_CONFIG", "has a bad [graphs] section", 'write [graphs."module:attribute"] tables')
    options: dict[str, GraphOptions] = {}
    for graph, table in tables.items():
        where = f'[graphs."{graph}"]'
        if not isinstance(table, Mapping):
            raise ConfigError("BOT_CONFIG", f"has a bad {where}", "write a table with interrupt_before or prompts")
        unknown = sorted(set(table) - {"interrupt_before", "prompts"})
        if unknown:
            raise ConfigError(
                "BOT_CONFIG",
                f"has unknown keys in {where}: {', '.join(unknown)}",
                "the keys are interrupt_before and prompts",
            )
        options[str(graph)] = GraphOptions(
            interrupt_before=_nodes(table.get("interrupt_before", []), where),
            prompts=_prompts(table.get("prompts", []), where),
        )
    return options
