"""Running the graph: the names the rest of the bot uses, from bot/runners/ (one runner for both runtimes)."""

from bot.runners.core import GraphRefused, GraphRunner, Runner, Runners
from bot.runners.inputs import InputRule, InputShape, derive_input_rule, input_schema, load_graph
from bot.runners.local import LocalRunner, local_runners
from bot.runners.outcomes import (
    BREAKPOINT,
    NO_RESULT,
    PAUSE,
    Delta,
    Outcome,
    PendingInterrupt,
    Sink,
    Trace,
    already_said,
    breakpoint_value,
)

__all__ = [
    "BREAKPOINT",
    "NO_RESULT",
    "PAUSE",
    "Delta",
    "GraphRefused",
    "GraphRunner",
    "InputRule",
    "InputShape",
    "LocalRunner",
    "Outcome",
    "PendingInterrupt",
    "Runner",
    "Runners",
    "Sink",
    "Trace",
    "already_said",
    "breakpoint_value",
    "derive_input_rule",
    "input_schema",
    "load_graph",
    "local_runners",
]
