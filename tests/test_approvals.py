"""Approvals through Slack: every standard human-in-the-loop payload, decided once, by the right people."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from bot.dev.fake_openai import Reply, ToolCall
from graphs.tools import OUTBOX
from tests.support.drain import wait_drained
from tests.support.harness import Harness
from tests.support.slack import Message, buttons, containing, thread, visible_text, wait_for_message

GENERAL = "C0GENERAL"
EMAIL = {"to": "bob@example.com", "subject": "Lunch", "body": "Noon at the usual place?"}


@pytest.fixture(autouse=True)
def outbox() -> Iterator[list[dict[str, str]]]:
    OUTBOX.clear()
    yield OUTBOX
    OUTBOX.clear()


def action_ids(message: Message) -> list[str]:
    return [b["action_id"] for b in buttons(message)]


async def current(slack: Any, root: str, ts: str) -> Message:
    return next(m for m in await thread(slack, GENERAL, root) if m["ts"] == ts)


async def ask_for_email(
    harness: Harness,
    slack: Any,
    openai: Any,
    *calls: dict[str, str],
    graph: str = "graphs.approvals:graph",
    environ: dict[str, str] | None = None,
) -> tuple[str, Message]:
    openai.reply(Reply(tool_calls=[ToolCall("send_email", c) for c in (calls or (EMAIL,))]))
    openai.reply(Reply(content="Done."))
    await harness.start(graph, environ={**harness.environ(graph), **(environ or {})} if environ else None)
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> email bob about lunch")
    request = await wait_for_message(slack, GENERAL, root, containing("The agent asks for approval"))
    return root, request


async def test_approve_runs_the_tool_once_and_shows_who_decided(
    harness: Harness, slack: Any, openai: Any, outbox: list[dict[str, str]]
) -> None:
    root, request = await ask_for_email(harness, slack, openai)
    assert action_ids(request) == [f"lgslack.act:{verb}:0" for verb in ("approve", "edit", "reject", "respond")]
    shown = visible_text(request)
    assert "send_email" in shown and "bob@example.com" in shown and "Noon at the usual place?" in shown

    await slack.click("U0BOB", GENERAL, request["ts"], "lgslack.act:approve:0")
    await wait_for_message(slack, GENERAL, root, containing("Done."))

    assert outbox == [EMAIL]
    decided = await current(slack, root, request["ts"])
    assert not buttons(decided)
    assert "Approved" in visible_text(decided) and "<@U0BOB>" in visible_text(decided)
    assert openai.requests[1].tool_messages[0]["content"].startswith("Email sent to bob@example.com")


async def test_reject_never_runs_the_tool_and_the_model_sees_the_reason(
    harness: Harness, slack: Any, openai: Any, outbox: list[dict[str, str]]
) -> None:
    root, request = await ask_for_email(harness, slack, openai)
    await slack.click("U0BOB", GENERAL, request["ts"], "lgslack.act:reject:0")
    await slack.wait_for(lambda: slack.views("U0BOB"))
    await slack.submit("U0BOB", {"lgslack_reason": "wrong recipient"})
    await wait_for_message(slack, GENERAL, root, containing("Done."))

    assert outbox == []
    (tool_message,) = openai.requests[1].tool_messages
    assert "wrong recipient" in tool_message["content"]
    assert "Rejected" in visible_text(await current(slack, root, request["ts"]))


async def test_edit_runs_the_tool_with_the_edited_arguments(
    harness: Harness, slack: Any, openai: Any, outbox: list[dict[str, str]]
) -> None:
    root, request = await ask_for_email(harness, slack, openai)
    await slack.click("U0CAROL", GENERAL, request["ts"], "lgslack.act:edit:0")
    (modal,) = await slack.wait_for(lambda: slack.views("U0CAROL"))
    prefilled = {b["block_id"]: b["element"].get("initial_value") for b in modal["blocks"] if b["type"] == "input"}
    assert prefilled == {"arg:to": "bob@example.com", "arg:subject": "Lunch", "arg:body": "Noon at the usual place?"}

    await slack.submit(
        "U0CAROL", {"arg:to": "team@example.com", "arg:subject": "Lunch", "arg:body": "Noon at the usual place?"}
    )
    await wait_for_message(slack, GENERAL, root, containing("Done."))
    assert outbox == [{**EMAIL, "to": "team@example.com"}]
    assert "team@example.com" in visible_text(await current(slack, root, request["ts"]))


async def test_respond_sends_the_text_back_as_the_tools_answer(
    harness: Harness, slack: Any, openai: Any, outbox: list[dict[str, str]]
) -> None:
    root, request = await ask_for_email(harness, slack, openai)
    await slack.click("U0BOB", GENERAL, request["ts"], "lgslack.act:respond:0")
    await slack.wait_for(lambda: slack.views("U0BOB"))
    refused = await slack.submit("U0BOB", {"lgslack_response": "   "})
    assert refused["errors"] == {"lgslack_response": "Write the response the agent should get."}
    await slack.submit("U0BOB", {"lgslack_response": "I'll tell Bob in person."})
    await wait_for_message(slack, GENERAL, root, containing("Done."))
    assert outbox == []
    assert openai.requests[1].tool_messages[0]["content"] == "I'll tell Bob in person."


async def test_a_batch_resumes_once_every_action_is_decided_in_order(
    harness: Harness, slack: Any, openai: Any, outbox: list[dict[str, str]]
) -> None:
    second = {"to": "carol@example.com", "subject": "Lunch", "body": "Join us?"}
    root, request = await ask_for_email(harness, slack, openai, EMAIL, second)
    assert "lgslack.act:approve_all" in action_ids(request)

    await slack.click("U0BOB", GENERAL, request["ts"], "lgslack.act:reject:1")
    await slack.wait_for(lambda: slack.views("U0BOB"))
    await slack.submit("U0BOB", {"lgslack_reason": "not Carol"})
    partial = await slack.wait_for(lambda: _decided_item(slack, root, request["ts"]))
    assert "lgslack.act:approve:0" in action_ids(partial) and "lgslack.act:approve:1" not in action_ids(partial)
    assert len(openai.requests) == 1

    await slack.click("U0CAROL", GENERAL, request["ts"], "lgslack.act:approve:0")
    await wait_for_message(slack, GENERAL, root, containing("Done."))
    assert outbox == [EMAIL]
    contents = sorted(m["content"] for m in openai.requests[1].tool_messages)
    assert contents[0].startswith("Email sent to bob@example.com") and "not Carol" in contents[1]
    decided = visible_text(await current(slack, root, request["ts"]))
    assert "<@U0BOB>" in decided and "<@U0CAROL>" in decided


async def _decided_item(slack: Any, root: str, ts: str) -> Message | None:
    message = await current(slack, root, ts)
    return message if "Rejected" in visible_text(message) else None


async def test_approve_all_decides_every_action(
    harness: Harness, slack: Any, openai: Any, outbox: list[dict[str, str]]
) -> None:
    second = {"to": "carol@example.com", "subject": "Lunch", "body": "Join us?"}
    root, request = await ask_for_email(harness, slack, openai, EMAIL, second)
    await slack.click("U0BOB", GENERAL, request["ts"], "lgslack.act:approve_all")
    await wait_for_message(slack, GENERAL, root, containing("Done."))
    # Each once; the two calls run at once (ToolNode runs a sync tool in a thread each), so in either order.
    assert sorted(outbox, key=lambda m: m["to"]) == [EMAIL, second]


async def test_per_call_approval_resumes_each_call_by_its_id(
    harness: Harness, slack: Any, openai: Any, outbox: list[dict[str, str]]
) -> None:
    root, request = await ask_for_email(harness, slack, openai, graph="graphs.approvals:per_call_graph")
    assert action_ids(request) == [f"lgslack.act:{verb}:0" for verb in ("approve", "edit", "reject", "respond")]
    await slack.click("U0BOB", GENERAL, request["ts"], "lgslack.act:approve:0")
    await wait_for_message(slack, GENERAL, root, containing("Done."))
    assert outbox == [EMAIL]


async def test_only_approvers_may_decide_and_the_request_stays_open(
    harness: Harness, slack: Any, openai: Any, outbox: list[dict[str, str]]
) -> None:
    root, request = await ask_for_email(
        harness, slack, openai, environ={"APPROVERS": "S0EXPERTS", "APPROVERS_EXCLUDE_REQUESTER": "true"}
    )
    await slack.click("U0ALICE", GENERAL, request["ts"], "lgslack.act:approve:0")
    notes = await slack.wait_for(lambda: slack.ephemerals(GENERAL, "U0ALICE"))
    assert "someone else has to approve it" in visible_text(notes[-1])
    assert action_ids(await current(slack, root, request["ts"]))

    await slack.click("U0CAROL", GENERAL, request["ts"], "lgslack.act:approve:0")
    await wait_for_message(slack, GENERAL, root, containing("Done."))
    assert outbox == [EMAIL]


async def test_a_non_approver_is_refused(harness: Harness, slack: Any, openai: Any) -> None:
    _, request = await ask_for_email(harness, slack, openai, environ={"APPROVERS": "U0BOB"})
    await slack.click("U0CAROL", GENERAL, request["ts"], "lgslack.act:edit:0")
    notes = await slack.wait_for(lambda: slack.ephemerals(GENERAL, "U0CAROL"))
    assert "Only <@U0BOB> may decide on `send_email`" in visible_text(notes[-1])
    assert await slack.views("U0CAROL") == []


async def test_concurrent_clicks_from_several_people_decide_once(
    harness: Harness, slack: Any, openai: Any, outbox: list[dict[str, str]]
) -> None:
    root, request = await ask_for_email(harness, slack, openai)
    people = ["U0ALICE", "U0BOB", "U0CAROL"]
    await asyncio.gather(*(slack.click(p, GENERAL, request["ts"], "lgslack.act:approve:0") for p in people))
    await wait_for_message(slack, GENERAL, root, containing("Done."))
    await wait_drained(harness.database_url, slack)
    assert outbox == [EMAIL]
    refused = [p for p in people if await slack.ephemerals(GENERAL, p)]
    assert len(refused) == 2
    rows = await harness.running[-1].bot.store.decisions()
    assert [(r["decision"], r["action"]) for r in rows] == [("approve", "send_email")]


async def test_agent_inbox_request_resumes_with_human_responses(harness: Harness, slack: Any) -> None:
    await harness.start("tests.support.graphs:inbox")
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> printer on fire")
    request = await wait_for_message(slack, GENERAL, root, containing("create_ticket"))
    assert action_ids(request) == [f"lgslack.act:{verb}:0" for verb in ("accept", "edit", "respond", "ignore")]
    await slack.click("U0BOB", GENERAL, request["ts"], "lgslack.act:edit:0")
    await slack.wait_for(lambda: slack.views("U0BOB"))
    refused = await slack.submit("U0BOB", {"arg:title": "printer on fire", "arg:priority": "urgent"})
    assert refused["errors"] == {"arg:priority": "Write a whole number."}
    await slack.submit("U0BOB", {"arg:title": "Printer on fire", "arg:priority": "1"})
    result = await wait_for_message(slack, GENERAL, root, containing("outcome"))
    assert json.loads(visible_text(result).split("```")[1].replace("&quot;", '"')) == [
        {"type": "edit", "args": {"action": "create_ticket", "args": {"title": "Printer on fire", "priority": 1}}}
    ]


async def test_a_click_is_acked_in_time_when_slack_wont_say_who_is_in_the_approvers_group(
    harness: Harness, slack: Any, openai: Any, outbox: list[dict[str, str]]
) -> None:
    root, request = await ask_for_email(harness, slack, openai, environ={"APPROVERS": "S0EXPERTS"})
    await slack.fault("usergroups.users.list", "ratelimited", times=4, retry_after=10)
    clicked = await slack.click("U0CAROL", GENERAL, request["ts"], "lgslack.act:approve:0")
    assert clicked["ok"], clicked  # acked within Slack's 3 s
    notes = await slack.wait_for(lambda: slack.ephemerals(GENERAL, "U0CAROL"))
    assert "try again in a moment" in visible_text(notes[-1])
    assert action_ids(await current(slack, root, request["ts"]))
    await slack.clear_faults()
    await slack.click("U0CAROL", GENERAL, request["ts"], "lgslack.act:approve:0")
    await wait_for_message(slack, GENERAL, root, containing("Done."))
    assert outbox == [EMAIL]
