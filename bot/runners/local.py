"""The graph in this process, with the Postgres checkpointer attached."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.pregel import Pregel

from bot.errors import GraphError
from bot.rules.graphs import NO_OPTIONS, GraphOptions
from bot.runners.core import GraphRunner, Runners
from bot.runners.inputs import derive_input_rule, input_schema, load_graph
from bot.runners.outcomes import Trace


class LocalRunner(GraphRunner):
    """Runs a compiled graph in this process; its input rule and nodes are read from the graph itself."""

    def __init__(
        self,
        graph: Pregel,
        checkpointer: BaseCheckpointSaver[Any],
        spec: str = "",
        options: GraphOptions = NO_OPTIONS,
    ) -> None:
        try:
            rule = derive_input_rule(input_schema(graph))
        except ValueError as exc:
            raise GraphError(
                "BOT_GRAPH", f"names {spec or 'a graph'} whose input can't take a message", str(exc)
            ) from None
        unknown = [n for n in options.interrupt_before if n != "*" and n not in graph.nodes]
        if options.interrupt_before != "*" and unknown:
            raise GraphError(
                "BOT_CONFIG",
                f"has interrupt_before = {unknown} for {spec or 'a graph'}, which has no such node",
                f"its nodes are {', '.join(n for n in graph.nodes if not n.startswith('__'))}",
            )
        self.breakpoints = options.nodes(graph.interrupt_before_nodes)
        interrupt_before = "*" if "*" in self.breakpoints else (self.breakpoints or None)
        compiled = graph.copy(update={"checkpointer": checkpointer})
        super().__init__(compiled, rule, stops_at=self.breakpoints, interrupt_before=interrupt_before)
        self.output_channels = compiled.output_channels
        self.checkpoints_in_db = isinstance(checkpointer, AsyncPostgresSaver)
        channels = [self.output_channels] if isinstance(self.output_channels, str) else list(self.output_channels)
        self.seen_from_stream = "messages" in channels

    def _run_options(self, trace: Trace | None) -> dict[str, Any]:
        # The values `ainvoke` would return (an entrypoint's return value), not every stream channel.
        return {"output_keys": self.output_channels}


def local_runners(
    default: str,
    checkpointer: BaseCheckpointSaver[Any],
    *,
    options: Mapping[str, GraphOptions] | None = None,
    allowed: Sequence[str] = (),
) -> Runners:
    """Graphs imported by `module:attribute` (BOT_GRAPH, and those BOT_GRAPHS allows) and run in this process with
    the Postgres checkpointer."""
    options = options or {}

    def make(spec: str) -> LocalRunner:
        return LocalRunner(load_graph(spec), checkpointer, spec, options.get(spec, NO_OPTIONS))

    runners = Runners(default, make, allowed)
    runners.add(default, make(default))
    return runners
