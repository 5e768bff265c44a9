"""Forms from response_schema, the breakpoint pattern, several interrupts in one thread, and the audit."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
from typing import Any

from bot.dev.fake_openai import Reply, ToolCall
from tests.support.harness import Harness
from tests.support.slack import buttons, containing, thread, visible_text, wait_for_message

GENERAL = "C0GENERAL"
ANSWER = "lgslack.act:answer"


async def test_a_response_schema_becomes_a_validated_form(harness: Harness, slack: Any) -> None:
    await harness.start("tests.support.graphs:form")
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> Lisbon in spring")
    request = await wait_for_message(slack, GENERAL, root, containing("Plan the trip: Lisbon in spring"))
    await slack.click("U0BOB", GENERAL, request["ts"], ANSWER)
    (modal,) = await slack.wait_for(lambda: slack.views("U0BOB"))
    inputs = {b["block_id"]: b for b in modal["blocks"] if b["type"] == "input"}
    assert {k: v["element"]["type"] for k, v in inputs.items()} == {
        "field:destination": "plain_text_input",
        "field:nights": "number_input",
        "field:budget": "number_input",
        "field:refundable": "checkboxes",
        "field:cabin": "static_select",
        "field:extras": "multi_static_select",
    }
    assert inputs["field:nights"]["element"]["initial_value"] == "3"
    assert inputs["field:destination"]["hint"]["text"] == "Where to go"
    assert not inputs["field:destination"]["optional"] and inputs["field:budget"]["optional"]

    refused = await slack.submit("U0BOB", {"field:destination": "L", "field:nights": "45"})
    assert refused["errors"] == {
        "field:destination": "Write at least 2 characters.",
        "field:nights": "The largest allowed is 30.",
    }
    await slack.submit(
        "U0BOB",
        {
            "field:destination": "Lisbon",
            "field:nights": "4",
            "field:budget": "1200.5",
            "field:cabin": json.dumps("business"),
            "field:extras": [json.dumps("wifi"), json.dumps("meals")],
        },
    )
    result = await wait_for_message(slack, GENERAL, root, containing("destination"))
    shown = visible_text(result)
    for expected in (
        '"destination": "Lisbon"',
        '"nights": 4',
        '"budget": 1200.5',
        '"refundable": true',
        '"cabin": "business"',
        '"wifi"',
    ):
        assert expected in shown.replace("&quot;", '"')


async def test_the_breakpoint_pattern_asks_and_applies_the_answer_as_the_human_node(
    harness: Harness, slack: Any, openai: Any
) -> None:
    openai.reply(Reply(tool_calls=[ToolCall("AskHuman", {"question": "Where are you currently located?"})]))
    openai.reply(Reply(content="It's sunny in San Francisco."))
    await harness.start("graphs.ask_human:graph")
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> ask the user where they are, then look up the weather")
    await wait_for_message(slack, GENERAL, root, containing("Where are you currently located?"))

    await slack.post("U0ALICE", GENERAL, "san francisco", thread_ts=root)
    await wait_for_message(slack, GENERAL, root, containing("It's sunny in San Francisco."))
    (tool_message,) = openai.requests[1].tool_messages
    assert tool_message["content"] == "san francisco"
    assert tool_message["tool_call_id"] == openai.requests[1].messages[-2]["tool_calls"][0]["id"]


async def test_parallel_interrupts_get_a_message_each_and_resume_on_their_own(harness: Harness, slack: Any) -> None:
    await harness.start("tests.support.graphs:parallel")
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> a team offsite")
    legal = await wait_for_message(slack, GENERAL, root, containing("Legal, is a team offsite allowed?"))
    finance = await wait_for_message(slack, GENERAL, root, containing("Finance, can we afford a team offsite?"))

    await slack.post("U0ALICE", GENERAL, "yes", thread_ts=root)
    which = await wait_for_message(slack, GENERAL, root, containing("can't tell which one"))
    assert "Legal, is a team offsite allowed?" in visible_text(which)

    await slack.click("U0BOB", GENERAL, finance["ts"], ANSWER)
    await slack.wait_for(lambda: slack.views("U0BOB"))
    await slack.submit("U0BOB", {"lgslack_answer": "within budget"})
    await slack.wait_for(lambda: _has(slack, root, finance["ts"], "Answered by <@U0BOB>"), timeout=10)
    assert buttons(next(m for m in await thread(slack, GENERAL, root) if m["ts"] == legal["ts"]))

    await slack.post("U0CAROL", GENERAL, "approved by legal", thread_ts=root)
    result = await wait_for_message(slack, GENERAL, root, containing("legal: approved by legal"))
    assert "finance: within budget" in visible_text(result)


async def _has(slack: Any, root: str, ts: str, text: str) -> bool:
    return any(m["ts"] == ts and text in visible_text(m) for m in await thread(slack, GENERAL, root))


async def test_the_audit_records_every_decision_and_exports_it(harness: Harness, slack: Any, database_url: str) -> None:
    await harness.start("graphs.feedback_workflow:graph")
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> foo")
    await wait_for_message(slack, GENERAL, root, containing("Please provide feedback"))
    await slack.post("U0BOB", GENERAL, "baz", thread_ts=root)
    await wait_for_message(slack, GENERAL, root, containing("foo bar baz qux"))

    env = {**os.environ, "DATABASE_URL": database_url}
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot", "audit", "--format", "csv", "--since", "1h"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    (row,) = list(csv.DictReader(io.StringIO(done.stdout)))
    assert (row["user_id"], row["decision"], row["kind"], row["requested_by"]) == (
        "U0BOB",
        "answer",
        "question",
        "U0ALICE",
    )
    assert row["conversation_id"] == f"T0SANDBOX:{GENERAL}:{root}"
    assert int(row["latency_ms"]) >= 0
    assert json.loads(row["request"]) == "Please provide feedback: foo bar"

    later = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot", "audit", "--format", "json", "--since", "2999-01-01"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(later.stdout) == []
    bad = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot", "audit", "--since", "yesterday"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error: --since is 'yesterday'")
