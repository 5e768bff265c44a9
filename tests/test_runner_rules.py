from __future__ import annotations

from typing import Annotated, Any

import pytest
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import CheckpointTuple
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import interrupt
from typing_extensions import TypedDict

from bot.errors import ConfigError
from bot.render import describe_result, render_reply
from bot.runner import InputRule, derive_input_rule, load_graph


@pytest.mark.parametrize(
    ("spec", "rule"),
    [
        ("graphs.assistant:graph", InputRule("messages_key")),
        ("graphs.chatbot:graph", InputRule("messages_key")),
        ("graphs.react_agent:agent", InputRule("message_list")),
        ("graphs.feedback_workflow:graph", InputRule("text")),
        ("graphs.revise_text:graph", InputRule("field", "some_text")),
    ],
)
def test_each_example_graph_gets_the_input_its_schema_asks_for(spec: str, rule: InputRule) -> None:
    assert derive_input_rule(load_graph(spec).get_input_jsonschema()) == rule


def test_rules_build_the_input() -> None:
    assert InputRule("text").build("foo") == "foo"
    assert InputRule("field", "some_text").build("foo") == {"some_text": "foo"}
    built = InputRule("messages_key").build("hi")
    assert isinstance(built["messages"][0], HumanMessage) and built["messages"][0].content == "hi"
    assert isinstance(InputRule("message_list").build("hi")[0], HumanMessage)


def test_an_input_with_several_fields_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="a, b"):
        derive_input_rule({"type": "object", "properties": {"a": {}, "b": {}}})


@pytest.mark.parametrize(
    ("spec", "problem"),
    [("no_such_module:graph", "can't be imported"), ("graphs.chatbot:nothing", "does not define")],
)
def test_a_bad_graph_names_bot_graph(spec: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=rf"^BOT_GRAPH .*{problem}"):
        load_graph(spec)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("foo bar baz qux", "foo bar baz qux"),
        ({"some_text": "revised"}, "revised"),
        ({"a": "x", "b": [1]}, "**a**: x\n**b**: ```[\n  1\n]```"),
    ],
)
def test_results_are_described_readably(value: Any, text: str) -> None:
    assert describe_result(value) == text


def test_a_long_reply_is_split_across_messages_without_loss() -> None:
    reply = "\n\n".join(f"Paragraph {i}: " + "lorem ipsum " * 200 for i in range(20))
    messages = render_reply(reply)
    assert len(messages) > 1
    sections = [b["text"]["text"] for m in messages for b in m.blocks]
    assert all(len(s) <= 3000 for s in sections)
    assert all(len(m.blocks) <= 10 for m in messages)
    assert "".join(sections) == reply


def test_a_typing_typeddict_state_gets_its_field_when_pydantic_cannot_make_a_schema() -> None:
    from bot.runner import input_schema
    from tests.support.typed_state import graph

    with pytest.raises(Exception, match=r"typing_extensions\.TypedDict"):
        graph.get_input_jsonschema()  # Pydantic refuses typing.TypedDict on Python < 3.12
    assert derive_input_rule(input_schema(graph)) == InputRule("field", "some_text")


def test_a_schema_problem_is_one_line_naming_the_fields() -> None:
    from bot.runner import LocalRunner
    from tests.support.typed_state import pair

    with pytest.raises(
        ConfigError, match=r"^BOT_GRAPH names tests.support.typed_state:pair whose input .*first, second"
    ):
        LocalRunner(pair, None, "tests.support.typed_state:pair")  # type: ignore[arg-type]


def test_run_time_breakpoints_are_read_per_graph_and_checked() -> None:
    from bot.rules.graphs import GraphOptions, load_graph_options
    from bot.runner import LocalRunner
    from tests.support.typed_state import graph

    options = load_graph_options({"graphs": {"tests.support.typed_state:graph": {"interrupt_before": ["publish"]}}})
    assert options == {"tests.support.typed_state:graph": GraphOptions(interrupt_before=("publish",))}
    assert LocalRunner(graph, None, "x", options["tests.support.typed_state:graph"]).breakpoints == ["publish"]  # type: ignore[arg-type]
    with pytest.raises(
        ConfigError, match=r"^BOT_CONFIG has interrupt_before = \['nowhere'\] .*its nodes are shout, publish"
    ):
        LocalRunner(graph, None, "x", GraphOptions(interrupt_before=("nowhere",)))  # type: ignore[arg-type]
    for bad, message in (
        ({"graphs": {"g": {"interrupt_before": "publish"}}}, 'bad \\[graphs."g"\\]'),
        ({"graphs": {"g": {"interrupt_after": ["x"]}}}, "unknown keys .*interrupt_after"),
        ({"graphs": ["g"]}, "bad \\[graphs\\] section"),
    ):
        with pytest.raises(ConfigError, match=message):
            load_graph_options(bad)


class CountingSaver(InMemorySaver):
    """A checkpointer that counts the checkpoints read."""

    reads = 0

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        self.reads += 1
        return await super().aget_tuple(config)


def echo_graph() -> Any:
    def echo(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage(f"echo: {state['messages'][-1].text}")]}

    return StateGraph(MessagesState).add_node("echo", echo).add_edge(START, "echo").compile()


async def test_a_finished_run_leaves_its_outcome_with_no_checkpoint_read() -> None:
    """In process, a run whose stream ended without a stop finished: its outcome comes from its stream."""
    from bot.runner import LocalRunner

    saver = CountingSaver()
    runner = LocalRunner(echo_graph(), saver, "echo")
    before: str | None = None
    for text in ("hi", "again"):
        before = await runner.checkpoint("t")
        result = await runner.start("t", text)
        saver.reads = 0
        outcome = await runner.outcome("t", since=before, result=result)
        assert saver.reads == 0
        assert (outcome.replies, outcome.finished, outcome.show_result) == ([f"echo: {text}"], True, True)
        assert outcome.result["messages"][-1].text == f"echo: {text}"
    # A retried job in another process has no state kept: it reads where the run began, and finds the same answer.
    again = await LocalRunner(echo_graph(), saver, "echo").outcome("t", since=before)
    assert again.replies == ["echo: again"]


class Question(TypedDict):
    question: str


class Asked(Question, total=False):
    messages: Annotated[list[AnyMessage], add_messages]


def asked_graph() -> Any:
    def answer(state: Asked) -> dict[str, Any]:
        return {"messages": [AIMessage(f"answer to {state['question']}")]}

    graph = StateGraph(Asked, input_schema=Question)
    return graph.add_node("answer", answer).add_edge(START, "answer").compile()


async def test_the_messages_a_run_began_with_come_from_its_stream_not_a_read() -> None:
    """In process, a run's first streamed values are the state it began from: `outcome` reads only the state it
    left, and a graph whose messages start empty (its input is another field) still shows each new reply once."""
    from bot.runner import LocalRunner

    saver = CountingSaver()
    runner = LocalRunner(asked_graph(), saver, "asked")
    for text in ("first", "second"):
        found = await saver.aget_tuple({"configurable": {"thread_id": "q"}})
        before = found.checkpoint["id"] if found else None
        result = await runner.start("q", text)
        saver.reads = 0
        outcome = await runner.outcome("q", since=before, result=result)
        assert saver.reads == 0
        assert outcome.replies == [f"answer to {text}"]


def stopping_graph() -> Any:
    def ask(state: MessagesState) -> dict[str, Any]:
        answer = interrupt({"question": "sure?"})
        return {"messages": [AIMessage(f"told {answer}")]}

    def publish(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage("published")]}

    graph = StateGraph(MessagesState).add_node("ask", ask).add_node("publish", publish)
    return graph.add_edge(START, "ask").add_edge("ask", "publish").compile()


async def test_a_run_that_stops_reads_the_state_it_left_once() -> None:
    """A stop, on an interrupt or at a breakpoint (whose stream carries an empty `__interrupt__`), is read from the
    checkpoint: what waits, and where. The run that then finishes needs no read."""
    from bot.rules.graphs import GraphOptions
    from bot.runner import LocalRunner

    saver = CountingSaver()
    runner = LocalRunner(stopping_graph(), saver, "stop", GraphOptions(interrupt_before=("publish",)))
    before = await runner.checkpoint("s")
    result = await runner.start("s", "go")
    saver.reads = 0
    asked = await runner.outcome("s", since=before, result=result)
    assert saver.reads == 1
    assert (asked.finished, [i.value for i in asked.interrupts], asked.interrupts[0].source) == (
        False,
        [{"question": "sure?"}],
        "ask",
    )
    before = await runner.checkpoint("s")
    result = await runner.resume("s", asked.interrupts[0].interrupt_id, "yes")
    saver.reads = 0
    paused = await runner.outcome("s", since=before, result=result)
    assert saver.reads == 1
    assert (paused.finished, paused.replies, len(paused.interrupts)) == (False, ["told yes"], 1)
    assert paused.interrupts[0].interrupt_id.startswith("breakpoint:publish")
    before = await runner.checkpoint("s")
    result = await runner.resume("s", paused.interrupts[0].interrupt_id, None)
    saver.reads = 0
    done = await runner.outcome("s", since=before, result=result)
    assert saver.reads == 0
    assert (done.finished, done.replies, done.interrupts) == (True, ["published"], [])
    assert not await runner.unfinished("s")
