"""The assistant pane and live status, through the sandbox: prompts and a title when a thread starts, its messages
answered like a DM, a status that says what the agent does and is cleared when it answers (a reaction where Slack
refuses a status), and every event Slack may send acknowledged with a 2xx."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph
from slack_sdk.web.async_client import AsyncWebClient

from bot.dev.fake_openai import Reply, ToolCall, echo_responder
from bot.dev.sandbox.workspace import TEAM_ID
from bot.errors import ConfigError
from bot.flow.status import Activity, tool_activity
from bot.rules.graphs import Prompt, load_graph_options
from tests.support.drain import wait_drained
from tests.support.harness import BOT_TOKEN, Harness
from tests.support.slack import GENERAL, containing, thread, wait_for_message

ALICE_DM = "D0ALICE"
ASSISTANT = "graphs.assistant:graph"
APPROVALS = "graphs.approvals:graph"
SLOW = "tests.test_assistant_pane:slow"
DEFAULT_PROMPTS = [{"title": "What can you do?", "message": "What can you help me with?"}]

# ---- the graph the status tests drive (loaded by the bot as `tests.test_assistant_pane:slow`) ------------------

GATES: dict[str, asyncio.Event] = {}
"""Set by a test to let the slow graph go on: "think" before it calls its tool, "tool" inside the tool."""


@tool
async def check_weather(city: str) -> str:
    """Check the weather in a city."""
    await GATES["tool"].wait()
    return f"Sunny in {city}"


check_weather.metadata = {"slack_status": "Checking the weather…"}


async def _work(state: MessagesState) -> dict[str, Any]:
    await GATES["think"].wait()
    report = await check_weather.ainvoke({"city": "Boston"})
    return {"messages": [AIMessage(content=f"Boston: {report}")]}


slow = StateGraph(MessagesState).add_node("work", _work).add_edge(START, "work").compile()


@pytest.fixture(autouse=True)
def gates() -> Iterator[dict[str, asyncio.Event]]:
    GATES.update(think=asyncio.Event(), tool=asyncio.Event())
    yield GATES
    GATES.clear()


async def pane(slack: Any, channel: str, thread_ts: str, key: str) -> Any:
    """Wait until the thread shows `key` (title, suggested_prompts), and return it."""

    async def shown() -> Any:
        return (await slack.assistant_thread(channel, thread_ts))[key]

    return await slack.wait_for(shown)


async def status_is(slack: Any, channel: str, thread_ts: str, status: str) -> None:
    async def shown() -> bool:
        return bool(await slack.status(channel, thread_ts) == status)

    await slack.wait_for(shown)


def write_config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "bot.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


# ---- the assistant pane ----------------------------------------------------------------------------------------


async def test_a_new_assistant_thread_gets_a_title_and_the_default_prompts(harness: Harness, slack: Any) -> None:
    await harness.start(ASSISTANT)
    started = await slack.start_assistant_thread("U0ALICE", context_channel=GENERAL)
    assert started["channel"] == ALICE_DM

    assert await pane(slack, ALICE_DM, started["thread_ts"], "suggested_prompts") == DEFAULT_PROMPTS
    assert await pane(slack, ALICE_DM, started["thread_ts"], "title") == "New chat"
    (call,) = await slack.calls("assistant.threads.setSuggestedPrompts")
    assert call["params"]["title"] == "Try asking:"
    (delivery,) = [d for d in await slack.deliveries() if d["event_id"] == started["event_id"]]
    assert (delivery["type"], delivery["status"], delivery["retry_num"]) == ("assistant_thread_started", 200, 0)


async def test_each_graph_offers_its_configured_prompts(harness: Harness, slack: Any, tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        f"""
[graphs."{ASSISTANT}"]
prompts = [
  {{title = "Plan my day", message = "Help me plan my day."}},
  {{title = "Explain", message = "Explain what you just did."}},
]

[graphs."{APPROVALS}"]
prompts = [{{title = "Email someone", message = "Email bob about lunch."}}]
""",
    )
    bot = await harness.start(ASSISTANT, environ=harness.environ(ASSISTANT, BOT_CONFIG=config, BOT_GRAPHS=APPROVALS))
    first = await slack.start_assistant_thread("U0ALICE")
    assert await pane(slack, ALICE_DM, first["thread_ts"], "suggested_prompts") == [
        {"title": "Plan my day", "message": "Help me plan my day."},
        {"title": "Explain", "message": "Explain what you just did."},
    ]

    # Alice's DM is given to the approvals graph: her new threads offer its prompts.
    await bot.bot.store.set_channel_graph(team_id=TEAM_ID, channel_id=ALICE_DM, graph=APPROVALS)
    second = await slack.start_assistant_thread("U0ALICE")
    assert await pane(slack, ALICE_DM, second["thread_ts"], "suggested_prompts") == [
        {"title": "Email someone", "message": "Email bob about lunch."}
    ]


async def test_a_message_in_the_assistant_thread_is_answered_there_like_a_dm(
    harness: Harness, sandbox: Any, slack: Any, openai: Any
) -> None:
    openai.reply(Reply(content="Hello from the pane."))
    openai.reply(Reply(content="Still here."))
    await harness.start(ASSISTANT)
    started = await slack.start_assistant_thread("U0ALICE", context_channel=GENERAL)
    root = started["thread_ts"]
    await pane(slack, ALICE_DM, root, "title")

    first = await slack.post("U0ALICE", ALICE_DM, "What's the   weather <@U0BOB> likes?", thread_ts=root)
    await wait_for_message(slack, ALICE_DM, root, containing("Hello from the pane."))
    # Slack's message event for it, as the bot got it: a DM reply carrying the assistant thread's token.
    (delivered,) = [d for d in await slack.deliveries() if d["type"] == "message" and d["ts"] == first]
    event = sandbox.deliverer.sent[delivered["event_id"]]["event"]
    assert (event["channel_type"], event["thread_ts"], event["parent_user_id"]) == ("im", root, "U0BOT")
    assert isinstance(event["assistant_thread"]["action_token"], str)
    # The first message names the thread (one line, plain text); the next one doesn't.
    await slack.wait_for(lambda: pane_title(slack, root, "What's the weather likes?"))
    await slack.post("U0ALICE", ALICE_DM, "and tomorrow?", thread_ts=root)
    await wait_for_message(slack, ALICE_DM, root, containing("Still here."))
    await wait_drained(harness.database_url, slack)

    assert [m["content"] for m in openai.requests[1].messages if m["role"] == "user"] == [
        "What's the   weather <@U0BOB> likes?",
        "and tomorrow?",
    ]
    titles = [c["params"]["title"] for c in await slack.calls("assistant.threads.setTitle")]
    assert titles == ["New chat", "What's the weather likes?"]
    replies = [m for m in await thread(slack, ALICE_DM, root) if m["ts"] != root]
    assert [m.get("bot_id") is not None for m in replies] == [False, True, False, True]
    async with harness.running[-1].bot.db.pool.connection() as conn:
        cur = await conn.execute("SELECT channel_id, thread_ts, started_by FROM lgslack_conversations")
        assert [tuple(row.values()) for row in await cur.fetchall()] == [(ALICE_DM, root, "U0ALICE")]


async def pane_title(slack: Any, thread_ts: str, title: str) -> bool:
    return bool((await slack.assistant_thread(ALICE_DM, thread_ts))["title"] == title)


async def test_context_changes_and_odd_assistant_events_are_acknowledged(harness: Harness, slack: Any) -> None:
    await harness.start(ASSISTANT)
    started = await slack.start_assistant_thread("U0ALICE", context_channel=GENERAL)
    await pane(slack, ALICE_DM, started["thread_ts"], "suggested_prompts")
    moved = await slack.change_assistant_context("U0ALICE", ALICE_DM, started["thread_ts"], "C0EXPERTS")
    broken = await slack.send_event({"type": "assistant_thread_started", "assistant_thread": {"channel_id": 5}})
    await slack.idle()

    delivered = {d["event_id"]: d for d in await slack.deliveries()}
    assert [(delivered[e]["status"], delivered[e]["retry_num"]) for e in (moved, broken)] == [(200, 0), (200, 0)]
    # Neither changed the pane, nor called Slack on its own.
    assert len(await slack.calls("assistant.threads.setSuggestedPrompts")) == 1
    assert [c["method"] for c in await slack.calls() if c["method"].startswith("conversations.")] == []


# ---- live status -----------------------------------------------------------------------------------------------


async def test_the_status_says_what_the_agent_does_and_is_cleared_when_it_answers(
    harness: Harness, slack: Any, gates: dict[str, asyncio.Event]
) -> None:
    await harness.start(SLOW)
    ts = await slack.post("U0ALICE", ALICE_DM, "how is the weather?")
    await status_is(slack, ALICE_DM, ts, "is thinking…")
    gates["think"].set()
    await status_is(slack, ALICE_DM, ts, "is checking the weather…")
    gates["tool"].set()
    await wait_for_message(slack, ALICE_DM, ts, containing("Boston: Sunny in Boston"))
    await status_is(slack, ALICE_DM, ts, "")

    # Shown once the run took a moment; cleared by the answer itself (Slack clears it when the app posts).
    history = await slack.status_history(ALICE_DM, ts)
    assert history == [
        {"status": "is thinking…", "loading_messages": ["Thinking…"], "ok": True},
        {"status": "is checking the weather…", "loading_messages": ["Checking the weather…"], "ok": True},
    ]
    # Status where Slack shows it: no reaction.
    assert await slack.calls("reactions.add") == []


async def test_a_pending_approval_shows_who_it_waits_for_and_the_resume_clears_it(
    harness: Harness, slack: Any, openai: Any
) -> None:
    openai.reply(Reply(tool_calls=[ToolCall("send_email", {"to": "bob@x.test", "subject": "Hi", "body": "Lunch?"})]))
    openai.reply(Reply(content="Sent."))
    # Statuses at once (BOT_STATUS_DELAY_MS=0), so that each run shows one, however quick.
    environ = harness.environ(APPROVALS, APPROVERS="U0BOB", BOT_STATUS_DELAY_MS="0")
    await harness.start(APPROVALS, environ=environ)
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> email bob about lunch")
    request = await wait_for_message(slack, GENERAL, root, containing("The agent asks for approval"))
    await status_is(slack, GENERAL, root, "is waiting for @bob's approval")
    # Set after the request was posted (Slack clears a status when the app posts in the thread).
    calls = [c for c in await slack.calls() if c["method"] in ("chat.postMessage", "assistant.threads.setStatus")]
    posted = next(i for i, c in enumerate(calls) if c["response"].get("ts") == request["ts"])
    waiting = next(i for i, c in enumerate(calls) if "waiting" in str(c["params"].get("status")))
    assert posted < waiting

    await slack.click("U0BOB", GENERAL, request["ts"], "lgslack.act:approve:0")
    await wait_for_message(slack, GENERAL, root, containing("Sent."))
    await wait_drained(harness.database_url, slack)
    # The resume showed what it did; its answer cleared the status, with no call of its own.
    history = [h["status"] for h in await slack.status_history(GENERAL, root)]
    assert history[:3] == ["is thinking…", "is waiting for @bob's approval", "is thinking…"]
    assert "" not in history
    assert await slack.status(GENERAL, root) == ""


async def test_a_quick_answer_shows_no_status_and_a_question_one_call(
    harness: Harness, slack: Any, openai: Any
) -> None:
    openai.reply(Reply(tool_calls=[ToolCall("send_email", {"to": "bob@x.test", "subject": "Hi", "body": "Lunch?"})]))
    openai.reply(Reply(content="Sent."), Reply(content="Anything else?"))
    # Runs quicker than the delay (a minute here, so however slow the machine): their answer is the sign of work.
    environ = harness.environ(APPROVALS, APPROVERS="U0BOB", BOT_STATUS_DELAY_MS="60000")
    await harness.start(APPROVALS, environ=environ)
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> email bob about lunch")
    request = await wait_for_message(slack, GENERAL, root, containing("The agent asks for approval"))
    await slack.click("U0BOB", GENERAL, request["ts"], "lgslack.act:approve:0")
    await wait_for_message(slack, GENERAL, root, containing("Sent."))
    await slack.post("U0ALICE", GENERAL, "thanks", thread_ts=root)
    await wait_for_message(slack, GENERAL, root, containing("Anything else?"))
    await wait_drained(harness.database_url, slack)
    # One status call in all: who the question waits for, set after it was posted; the answers cleared it.
    assert [h["status"] for h in await slack.status_history(GENERAL, root)] == ["is waiting for @bob's approval"]
    assert await slack.status(GENERAL, root) == ""
    assert [c for c in await slack.calls() if c["method"].startswith("reactions.")] == []


async def test_the_reaction_shows_the_work_where_slack_refuses_a_status(
    harness: Harness, slack: Any, openai: Any
) -> None:
    openai.responder = echo_responder
    await slack.fault("assistant.threads.setStatus", "error:not_allowed")
    await harness.start(ASSISTANT, environ=harness.environ(ASSISTANT, BOT_STATUS_DELAY_MS="0"))
    first = await slack.post("U0ALICE", GENERAL, "<@U0BOT> one")
    await wait_for_message(slack, GENERAL, first, containing("echo: one"))
    second = await slack.post("U0ALICE", GENERAL, "<@U0BOT> two")
    await wait_for_message(slack, GENERAL, second, containing("echo: two"))
    dm = await slack.post("U0ALICE", ALICE_DM, "three")
    await wait_for_message(slack, ALICE_DM, dm, containing("echo: three"))
    await wait_drained(harness.database_url, slack)

    # Refused once in #general: remembered, so the second turn there didn't ask again; the DM still has a status
    # (cleared by the answer).
    statuses = [
        (c["params"]["channel_id"], c["response"].get("error"))
        for c in await slack.calls("assistant.threads.setStatus")
    ]
    assert statuses == [(GENERAL, "not_allowed"), (ALICE_DM, None)]
    reactions = [
        (c["method"], c["params"]["timestamp"]) for c in await slack.calls() if c["method"].startswith("reactions.")
    ]
    assert reactions == [
        ("reactions.add", first),
        ("reactions.remove", first),
        ("reactions.add", second),
        ("reactions.remove", second),
    ]
    for ts in (first, second):
        assert (await slack.message(GENERAL, ts)).get("reactions", []) == []


async def test_the_sandbox_clears_a_status_when_the_app_posts_in_the_thread(sandbox: Any, slack: Any) -> None:
    web = AsyncWebClient(token=BOT_TOKEN, base_url=sandbox.api_url)
    root = await slack.post("U0ALICE", ALICE_DM, "hi")
    await web.assistant_threads_setStatus(channel_id=ALICE_DM, thread_ts=root, status="is thinking…")
    assert await slack.status(ALICE_DM, root) == "is thinking…"
    await web.chat_postMessage(channel=ALICE_DM, text="elsewhere")
    assert await slack.status(ALICE_DM, root) == "is thinking…"
    await web.chat_postMessage(channel=ALICE_DM, thread_ts=root, text="done")
    assert await slack.status(ALICE_DM, root) == ""


def test_what_a_tool_call_shows() -> None:
    assert tool_activity("get_weather", None) == Activity("Using get_weather…")
    assert (
        tool_activity("lookup", {"slack_status": "Looking up <!channel>\n  orders…"}).text
        == "Looking up !channel orders…"
    )
    assert Activity("Checking the weather…").status == "is checking the weather…"
    assert Activity("").status == "" and Activity("").loading_messages == ()


# ---- every event acknowledged ----------------------------------------------------------------------------------


async def test_every_event_type_slack_may_send_gets_a_2xx(harness: Harness, slack: Any, openai: Any) -> None:
    openai.reply(Reply(content="Hi."))
    await harness.start(ASSISTANT)
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> hello")
    await wait_for_message(slack, GENERAL, root, containing("Hi."))
    await slack.react("U0BOB", GENERAL, root, "eyes")
    sent = [
        await slack.send_event(
            {"type": "member_joined_channel", "user": "U0CAROL", "channel": GENERAL, "team": TEAM_ID}
        ),
        await slack.send_event({"type": "app_home_opened", "user": "U0ALICE", "channel": ALICE_DM, "tab": "messages"}),
        await slack.send_event({"type": "channel_rename", "channel": {"id": GENERAL, "name": "town-square"}}),
        await slack.send_event({"type": "lgslack_made_up_event", "detail": {"nested": [1, 2]}}),
        await slack.send_event({"type": "app_uninstalled"}),
    ]
    await wait_drained(harness.database_url, slack)

    deliveries = await slack.deliveries()
    reacted = [d for d in deliveries if d["type"] == "reaction_added"]
    assert [(d["status"], d["retry_num"]) for d in reacted] == [(200, 0)]
    by_id = {d["event_id"]: d for d in deliveries if d["event_id"] in sent}
    assert [(by_id[e]["status"], by_id[e]["retry_num"]) for e in sent] == [(200, 0)] * len(sent)
    # One attempt each: nothing Slack would retry.
    assert all(d["retry_num"] == 0 and d["status"] == 200 for d in deliveries if d["kind"] == "event")
    assert len(openai.requests) == 1


# ---- configuration ---------------------------------------------------------------------------------------------


def test_prompts_are_read_per_graph_and_checked() -> None:
    options = load_graph_options(
        {"graphs": {"a:b": {"prompts": [{"title": " Weather ", "message": "What's the weather?"}]}, "c:d": {}}}
    )
    assert options["a:b"].prompts == (Prompt(title="Weather", message="What's the weather?"),)
    assert options["c:d"].prompts == ()
    five = [{"title": f"t{n}", "message": "m"} for n in range(5)]
    bad: list[Any] = [
        five,
        [{"title": "t"}],
        [{"title": "t", "message": "m", "emoji": ":x:"}],
        [{"title": "t", "message": 3}],
        [{"title": " ", "message": "m"}],
        "Say hi",
    ]
    for prompts in bad:
        with pytest.raises(ConfigError, match=r"prompt"):
            load_graph_options({"graphs": {"a:b": {"prompts": prompts}}})
    with pytest.raises(ConfigError, match=r"unknown keys in \[graphs\.\"a:b\"\]: title"):
        load_graph_options({"graphs": {"a:b": {"title": "x"}}})


def test_the_manifest_declares_the_assistant_pane_its_events_and_scope() -> None:
    manifest = yaml.safe_load(Path("manifest.yml").read_text(encoding="utf-8"))
    assert manifest["features"]["assistant_view"]["assistant_description"].startswith("Ask the agent.")
    assert {"assistant:write", "chat:write", "reactions:write"} <= set(manifest["oauth_config"]["scopes"]["bot"])
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert {"assistant_thread_started", "assistant_thread_context_changed", "message.im"} <= events
