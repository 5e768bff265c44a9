from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import HumanMessage

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
