"""The README's pictures of each payload kind, taken from the real messages the bot posts, as the page draws them.

Each case also checks that the message offers what the kind promises (its buttons), so a picture can't silently
show a broken message.
"""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from bot.dev.playground import Playground
from tests.browser.pages import DOCS, act_as, message, open_channel, send, thread_pane

GENERAL, EXPERTS = "C0GENERAL", "C0EXPERTS"

CASES = [
    (
        "hitl",
        "graphs.approvals:graph",
        "send an email to bob@example.com about lunch",
        "send_email",
        ["Approve", "Edit", "Reject", "Respond"],
    ),
    (
        "agent_inbox",
        "tests.support.graphs:inbox",
        "the printer is on fire",
        "create_ticket",
        ["Accept", "Edit", "Respond", "Ignore"],
    ),
    ("schema", "tests.support.graphs:form", "Lisbon in spring", "Plan the trip", ["Answer"]),
    ("revise", "graphs.revise_text:graph", "teh first draft of the note", "teh first draft", ["Edit"]),
    ("question", "graphs.feedback_workflow:graph", "foo", "Please provide feedback", ["Answer"]),
    (
        "tool_approval",
        "graphs.approvals:per_call_graph",
        "send an email to bob@example.com about lunch",
        "send_email",
        ["Approve", "Edit", "Reject", "Respond"],
    ),
    ("breakpoint", "graphs.ask_human:graph", "ask a human: where are you?", "needs your input", ["Answer"]),
    ("json", "tests.support.graphs:raw", "checkout", "eu-west-1", ["Reply"]),
]


@pytest.fixture
def playground_env() -> dict[str, str]:
    """The test graphs among the example graphs the bot may run (BOT_GRAPHS is an allow-list)."""
    return {"BOT_GRAPHS": ",".join(sorted({graph for _, graph, *_ in CASES if graph.startswith("tests.")}))}


async def use_graph(playground: Playground, channel: str, graph: str) -> None:
    assert playground.bot is not None
    await playground.bot.store.set_channel_graph(team_id="T0SANDBOX", channel_id=channel, graph=graph)


@pytest.mark.parametrize(("kind", "graph", "prompt", "marker", "labels"), CASES, ids=[c[0] for c in CASES])
async def test_picture_of_each_payload_kind(
    page: Page, playground: Playground, kind: str, graph: str, prompt: str, marker: str, labels: list[str]
) -> None:
    await use_graph(playground, GENERAL, graph)
    await send(page, f"@agent {prompt}")
    request = message(thread_pane(page), marker, bot=True).last
    for label in labels:
        await expect(request.get_by_role("button", name=label, exact=True)).to_be_visible()
    (DOCS / "payloads").mkdir(parents=True, exist_ok=True)
    await request.screenshot(path=str(DOCS / "payloads" / f"{kind}.png"), animations="disabled")
    if kind == "schema":
        await request.get_by_role("button", name="Answer").click()
        modal = page.get_by_role("dialog")
        await expect(modal.get_by_text("Nights")).to_be_visible()
        await modal.screenshot(path=str(DOCS / "payloads" / "schema-form.png"), animations="disabled")


async def test_picture_of_an_escalated_question(page: Page, playground: Playground) -> None:
    await use_graph(playground, GENERAL, "graphs.chatbot:graph")
    await send(page, "@agent ask an expert: which database should we use?")
    await expect(message(thread_pane(page), "I asked the experts in", bot=True)).to_be_visible()
    await act_as(page, "bob")
    await open_channel(page, EXPERTS)
    request = message(page.locator("#messages"), "which database should we use?", bot=True).last
    await expect(request.get_by_role("button", name="Answer")).to_be_visible()
    await request.screenshot(path=str(DOCS / "payloads" / "query.png"), animations="disabled")
