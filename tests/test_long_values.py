"""Long values through Slack: a text longer than a Slack field is edited in parts and comes back exactly; a question
longer than a message is shown in part with "Show all", which pages through the whole, read-only."""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from typing import Any, NotRequired

import pytest
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict

from bot import text as t
from tests.support.harness import Harness
from tests.support.slack import ANSWER_BUTTON, GENERAL, Message, buttons, containing, thread, wait_for_message
from tests.test_long_units import draft

RECEIVED: dict[str, Any] = {}
"""What each graph below got back from `interrupt()`, by the message that started it."""

SHOW_ALL = "lgslack.act:show:question:1"


class Ask(TypedDict):
    request: str
    result: NotRequired[str]


def _size(state: Ask) -> int:
    return int(state["request"].split()[-1])


def _received(state: Ask, value: Any) -> Ask:
    RECEIVED[state["request"]] = value
    size = len(value) if isinstance(value, str) else len(json.dumps(value))
    return {"request": state["request"], "result": f"received {size} characters"}


def revise_node(state: Ask) -> Ask:
    return _received(state, interrupt({"text_to_revise": draft(_size(state))}))


def question_node(state: Ask) -> Ask:
    return _received(state, interrupt(draft(_size(state))))


def rows(size: int) -> dict[str, Any]:
    return {"rows": [{"id": i, "name": f"R&D <{i}>", "tags": ["a", "b"]} for i in range(size)]}


def payload_node(state: Ask) -> Ask:
    return _received(state, interrupt(rows(_size(state))))


def review_node(state: Ask) -> Ask:
    action = {"name": "send_email", "args": {"to": "bob@example.com", "body": draft(_size(state))}}
    config = {"action_name": "send_email", "allowed_decisions": ["approve", "edit", "reject"]}
    return _received(state, interrupt({"action_requests": [action], "review_configs": [config]}))


def _one_node(node: Any) -> Any:
    builder = StateGraph(Ask)
    builder.add_node("ask", node)
    builder.add_edge(START, "ask")
    builder.add_edge("ask", END)
    return builder.compile()


revise = _one_node(revise_node)
question = _one_node(question_node)
payload = _one_node(payload_node)
review = _one_node(review_node)


@pytest.fixture(autouse=True)
def received() -> Iterator[dict[str, Any]]:
    RECEIVED.clear()
    yield RECEIVED
    RECEIVED.clear()


def sections(blocks: list[dict[str, Any]]) -> list[str]:
    return [block["text"]["text"] for block in blocks if block["type"] == "section"]


def inputs(view: dict[str, Any]) -> list[dict[str, Any]]:
    return [block for block in view["blocks"] if block["type"] == "input"]


async def current(slack: Any, root: str, ts: str) -> Message:
    return next(m for m in await thread(slack, GENERAL, root) if m["ts"] == ts)


@pytest.mark.parametrize("size", [4899, 10_000])
async def test_a_long_draft_submitted_unchanged_reaches_the_graph_exactly(
    harness: Harness, slack: Any, received: dict[str, Any], size: int
) -> None:
    await harness.start("tests.test_long_values:revise")
    root = await slack.post("U0ALICE", GENERAL, f"<@U0BOT> draft {size}")
    request = await wait_for_message(slack, GENERAL, root, containing("Please revise this text:"))
    assert html.unescape("".join(sections(request["blocks"])[1:])) == draft(size)
    assert SHOW_ALL not in [b["action_id"] for b in buttons(request)]

    await slack.click("U0BOB", GENERAL, request["ts"], ANSWER_BUTTON)
    (modal,) = await slack.wait_for(lambda: slack.views("U0BOB"))
    parts = t.split(draft(size), 3000)
    assert [(f["label"]["text"], f["element"]["initial_value"]) for f in inputs(modal)] == [
        (f"Text (part {i} of {len(parts)})", part) for i, part in enumerate(parts, start=1)
    ]
    shown = json.dumps(modal["blocks"])
    assert f"This text has {size:,} characters" in shown and "the parts are joined in order" in shown

    outcome = await slack.submit("U0BOB", {})
    assert outcome["ok"] and not outcome.get("errors")
    await wait_for_message(slack, GENERAL, root, containing(f"received {size} characters"))
    value = received[f"draft {size}"]
    assert type(value) is str and len(value) == size and value == draft(size)


async def test_an_edited_part_is_joined_with_the_untouched_ones(
    harness: Harness, slack: Any, received: dict[str, Any]
) -> None:
    await harness.start("tests.test_long_values:revise")
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> draft 7000")
    request = await wait_for_message(slack, GENERAL, root, containing("Please revise this text:"))
    await slack.click("U0BOB", GENERAL, request["ts"], ANSWER_BUTTON)
    await slack.wait_for(lambda: slack.views("U0BOB"))
    first, _, third = t.split(draft(7000), 3000)
    await slack.submit("U0BOB", {"lgslack_answer#part2": {"value": "The middle, rewritten.\n"}})
    await wait_for_message(slack, GENERAL, root, containing("received"))
    assert received["draft 7000"] == first + "The middle, rewritten.\n" + third


async def test_a_long_argument_edited_unchanged_reaches_the_tool_call_exactly(
    harness: Harness, slack: Any, received: dict[str, Any]
) -> None:
    await harness.start("tests.test_long_values:review")
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> email 4899")
    request = await wait_for_message(slack, GENERAL, root, containing("The agent asks for approval"))
    await slack.click("U0BOB", GENERAL, request["ts"], "lgslack.act:edit:0")
    (modal,) = await slack.wait_for(lambda: slack.views("U0BOB"))
    assert [f["block_id"] for f in inputs(modal)] == ["arg:to", "arg:body#part1", "arg:body#part2"]

    await slack.submit("U0BOB", {})
    await wait_for_message(slack, GENERAL, root, containing("received"))
    edited = {"to": "bob@example.com", "body": draft(4899)}
    assert received["email 4899"] == {
        "decisions": [{"type": "edit", "edited_action": {"name": "send_email", "args": edited}}]
    }


async def test_show_all_pages_through_a_question_longer_than_a_message_for_anyone_read_only(
    harness: Harness, slack: Any, received: dict[str, Any]
) -> None:
    size = 400_000
    whole = draft(size)
    await harness.start("tests.test_long_values:question")
    root = await slack.post("U0ALICE", GENERAL, f"<@U0BOT> ask {size}")
    request = await wait_for_message(slack, GENERAL, root, containing("The agent needs your input"), timeout=30)
    everything = t.split(t.to_mrkdwn(whole))
    assert len(request["blocks"]) == 49 and sections(request["blocks"]) == everything[:45]
    hidden = len(html.unescape("".join(everything[45:])))
    assert f"{hidden:,} more characters of this request are not shown here" in json.dumps(request["blocks"])
    assert [b["action_id"] for b in buttons(request)] == [ANSWER_BUTTON, SHOW_ALL]

    # Carol only reads: the modal has no field, and the request stays open.
    await slack.click("U0CAROL", GENERAL, request["ts"], SHOW_ALL)
    (first,) = await slack.wait_for(lambda: slack.views("U0CAROL"))
    assert inputs(first) == [] and first["submit"]["text"] == "Next part (2 of 2)"
    assert first["blocks"][0]["elements"][0]["text"].startswith(f"Part 1 of 2 · {size:,} characters in all")
    turned = await slack.submit("U0CAROL", {})
    assert turned["response_action"] == "update"
    (second,) = await slack.views("U0CAROL")
    assert second["id"] == first["id"] and second["submit"]["text"] == "Back to part 1"
    assert html.unescape("".join(sections(first["blocks"]) + sections(second["blocks"]))) == whole
    assert await current(slack, root, request["ts"]) == request

    # Answered by a thread reply; Show all still reads the question afterwards.
    await slack.post("U0ALICE", GENERAL, "Read it all: fine.", thread_ts=root)
    await wait_for_message(slack, GENERAL, root, containing(f"received {len('Read it all: fine.')} characters"))
    assert received[f"ask {size}"] == "Read it all: fine."
    again = await slack.submit("U0CAROL", {})
    assert again["response_action"] == "update"
    (back,) = await slack.views("U0CAROL")
    assert sections(back["blocks"]) == sections(first["blocks"])


async def test_a_json_payload_is_shown_whole_in_code_sections(
    harness: Harness, slack: Any, received: dict[str, Any]
) -> None:
    await harness.start("tests.test_long_values:payload")
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> rows 300")
    request = await wait_for_message(slack, GENERAL, root, containing("The agent needs your input"))
    codes = sections(request["blocks"])
    assert len(codes) > 1 and all(c.startswith("```") and c.endswith("```") for c in codes)
    assert html.unescape("".join(c[3:-3] for c in codes)) == json.dumps(rows(300), indent=2, ensure_ascii=False)

    await slack.post("U0ALICE", GENERAL, '{"checked": 300}', thread_ts=root)
    await wait_for_message(slack, GENERAL, root, containing("received"))
    assert received["rows 300"] == {"checked": 300}
