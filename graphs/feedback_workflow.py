"""Wait for human feedback with the Functional API (LangGraph "Human-in-the-loop" docs).

Three tasks: append " bar", pause for feedback and append it, append " qux".
Input ``"foo"`` pauses with ``"Please provide feedback: foo bar"``; resuming with
``Command(resume="baz")`` returns ``"foo bar baz qux"``.

Annotations are evaluated eagerly (no ``from __future__ import annotations``) so that
the graph's schemas resolve even when a server loads this file by path.
"""

from langgraph.func import entrypoint, task
from langgraph.types import interrupt


@task
def step_1(input_query: str) -> str:
    """Append bar."""
    return f"{input_query} bar"


@task
def human_feedback(input_query: str) -> str:
    """Append user input."""
    feedback = interrupt(f"Please provide feedback: {input_query}")
    return f"{input_query} {feedback}"


@task
def step_3(input_query: str) -> str:
    """Append qux."""
    return f"{input_query} qux"


@entrypoint()
def graph(input_query: str) -> str:
    """Run the three steps; the finished steps are not re-run after the interrupt."""
    result_1 = step_1(input_query).result()
    result_2 = human_feedback(result_1).result()
    return step_3(result_2).result()
