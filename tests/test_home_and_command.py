"""The approvals inbox in App Home and the `/agent` command, through the sandbox: real Bolt over HTTP, the real
approvals graph (LangChain's HumanInTheLoopMiddleware) on the scripted OpenAI server, real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.dev.fake_openai import Reply, ToolCall
from graphs.tools import OUTBOX
from tests.support.drain import wait_drained
from tests.support.harness import Harness
from tests.support.slack import GENERAL, Message, buttons, containing, thread, visible_text, wait_for_message

EMAIL = {"to": "bob@example.com", "subject": "Lunch", "body": "Noon at the usual place?"}
ONLY_BOB = {"APPROVERS": "U0BOB"}
VERBS = ("approve", "edit", "reject", "respond")


@pytest.fixture(autouse=True)
def outbox() -> Iterator[list[dict[str, str]]]:
    OUTBOX.clear()
    yield OUTBOX
    OUTBOX.clear()


def home_buttons(view: dict[str, Any] | None) -> list[dict[str, Any]]:
    return buttons(view or {})


async def start(harness: Harness, environ: dict[str, str] | None = None) -> None:
    graph = "graphs.approvals:graph"
    await harness.start(graph, environ={**harness.environ(graph), **(environ or ONLY_BOB)})


async def ask(slack: Any, openai: Any, email: dict[str, str] = EMAIL) -> tuple[str, Message]:
    """Alice asks the agent to send an email; returns her thread's root and the approval request in it."""
    openai.reply(Reply(tool_calls=[ToolCall("send_email", email)]))
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> send that email")
    request = await wait_for_message(slack, GENERAL, root, containing(email["to"]))
    return root, request


async def current(slack: Any, root: str, ts: str) -> Message:
    return next(m for m in await thread(slack, GENERAL, root) if m["ts"] == ts)


async def home_after(slack: Any, user: str, publishes: int) -> dict[str, Any]:
    """`user`'s Home tab once it has been published more than `publishes` times."""

    async def published() -> dict[str, Any] | None:
        return await slack.home(user) if await slack.home_publishes(user) > publishes else None

    view: dict[str, Any] = await slack.wait_for(published, timeout=15)
    return view


async def open_home(slack: Any, user: str) -> dict[str, Any]:
    return await home_after(slack, user, await slack.home_publishes(user))


def link_to(sandbox: Any, root: str, ts: str) -> str:
    """The permalink the sandbox gives a reply in a thread (what chat.getPermalink answers)."""
    return f"{sandbox.url}/archives/{GENERAL}/p{ts.replace('.', '')}?thread_ts={root}&cid={GENERAL}"


async def answer(slack: Any, user: str, text: str, *, after: int = 0) -> Message:
    """The command's answer shown to `user` alone in #general (the `after`-th one on)."""
    shown: list[Message] = await slack.wait_for(
        lambda: _more(slack, user, after),
        timeout=15,
    )
    message = shown[-1]
    assert text in visible_text(message), visible_text(message)
    return message


async def _more(slack: Any, user: str, after: int) -> list[Message] | None:
    shown = await slack.ephemerals(GENERAL, user)
    return shown if len(shown) > after else None


async def test_an_approver_decides_from_app_home_exactly_as_in_the_thread(
    harness: Harness, slack: Any, sandbox: Any, openai: Any, outbox: list[dict[str, str]]
) -> None:
    await start(harness)
    root, request = await ask(slack, openai)
    openai.reply(Reply(content="Done."))

    await slack.open_home("U0BOB")
    home = await open_home(slack, "U0BOB")
    assert [b["action_id"] for b in home_buttons(home)] == [f"lgslack.home:{verb}:0" for verb in VERBS]
    # The same buttons as in the thread: the same request and actions, only told apart as coming from App Home.
    assert [b["value"] for b in home_buttons(home)] == [b["value"] for b in buttons(request)]
    shown = visible_text(home)
    assert "send_email" in shown and "bob@example.com" in shown and "Noon at the usual place?" in shown
    assert "from <@U0ALICE>" in shown and f"<{link_to(sandbox, root, request['ts'])}|Open the thread>" in shown
    assert "Nothing of yours is waiting on anyone." in shown
    assert len(home["blocks"]) <= 100

    seen = await slack.home_publishes("U0BOB")
    clicked = await slack.click_home("U0BOB", "lgslack.home:approve:0")
    assert clicked["ok"] and clicked["status"] == 200
    await wait_for_message(slack, GENERAL, root, containing("Done."))

    assert outbox == [EMAIL]
    assert openai.requests[1].tool_messages[0]["content"].startswith("Email sent to bob@example.com")
    decided = await current(slack, root, request["ts"])
    assert not buttons(decided)
    assert "Approved" in visible_text(decided) and "<@U0BOB>" in visible_text(decided)
    rows = await harness.running[-1].bot.store.decisions()
    assert [(r["decision"], r["action"], r["user_id"]) for r in rows] == [("approve", "send_email", "U0BOB")]

    after = await home_after(slack, "U0BOB", seen)
    assert home_buttons(after) == []
    assert "Nothing waits for your decision." in visible_text(after)
    assert "bob@example.com" not in visible_text(after)


async def test_a_non_approver_gets_no_buttons_and_a_forged_click_from_home_is_refused(
    harness: Harness, slack: Any, openai: Any, outbox: list[dict[str, str]]
) -> None:
    await start(harness)
    root, request = await ask(slack, openai)

    await slack.open_home("U0CAROL")
    carol = await open_home(slack, "U0CAROL")
    assert home_buttons(carol) == []
    assert "Nothing waits for your decision." in visible_text(carol)
    assert "bob@example.com" not in visible_text(carol)

    approve = next(b for b in buttons(request) if b["action_id"] == "lgslack.act:approve:0")
    forged = {**approve, "action_id": "lgslack.home:approve:0"}
    seen = await slack.home_publishes("U0CAROL")
    clicked = await slack.forge_home_click("U0CAROL", forged)
    assert clicked["ok"] and clicked["status"] == 200
    refused = await home_after(slack, "U0CAROL", seen)
    assert "That request isn't one your App Home offers you, so nothing was changed." in visible_text(refused)

    # Alice's own request is hers, but only Bob may approve it: the policy still applies to a click from home.
    seen = await slack.home_publishes("U0ALICE")
    await slack.forge_home_click("U0ALICE", forged)
    told = await home_after(slack, "U0ALICE", seen)
    assert "Only <@U0BOB> may decide on `send_email`. The request stays open for them." in visible_text(told)

    await wait_drained(harness.database_url, slack)
    assert outbox == []
    assert [b["action_id"] for b in buttons(await current(slack, root, request["ts"]))] == [
        f"lgslack.act:{verb}:0" for verb in VERBS
    ]
    assert await harness.running[-1].bot.store.decisions() == []


async def test_the_requester_sees_her_request_waiting_and_her_home_follows_its_decision(
    harness: Harness, slack: Any, sandbox: Any, openai: Any
) -> None:
    await start(harness)
    root, request = await ask(slack, openai)
    openai.reply(Reply(content="Done."))

    await slack.open_home("U0ALICE")
    alice = await open_home(slack, "U0ALICE")
    assert home_buttons(alice) == []
    shown = visible_text(alice)
    assert "Nothing waits for your decision." in shown
    assert "*Review: send_email*" in shown and "waiting for <@U0BOB>" in shown
    assert f"<{link_to(sandbox, root, request['ts'])}|Open the thread>" in shown

    # Bob decides in the thread; Alice's open Home tab follows.
    seen = await slack.home_publishes("U0ALICE")
    await slack.click("U0BOB", GENERAL, request["ts"], "lgslack.act:approve:0")
    after = await home_after(slack, "U0ALICE", seen)
    assert "Nothing of yours is waiting on anyone." in visible_text(after)
    await wait_for_message(slack, GENERAL, root, containing("Done."))

    # The Messages tab publishes nothing.
    await wait_drained(harness.database_url, slack)
    seen = await slack.home_publishes("U0ALICE")
    await slack.open_home("U0ALICE", tab="messages")
    await wait_drained(harness.database_url, slack)
    assert await slack.home_publishes("U0ALICE") == seen
    assert all(d["status"] == 200 for d in await slack.deliveries() if d["type"] == "app_home_opened")


async def test_a_new_request_refreshes_the_open_homes_it_belongs_in_and_no_other(
    harness: Harness, slack: Any, openai: Any
) -> None:
    await start(harness)
    for user in ("U0BOB", "U0ALICE", "U0CAROL"):
        await slack.open_home(user)
        assert "Nothing waits for your decision." in visible_text(await open_home(slack, user))
    await wait_drained(harness.database_url, slack)
    seen = {user: await slack.home_publishes(user) for user in ("U0BOB", "U0ALICE", "U0CAROL")}

    _, request = await ask(slack, openai)

    # Bob, the named approver, and Alice, who asked, see it without opening their Home tab again.
    bob = await home_after(slack, "U0BOB", seen["U0BOB"])
    assert [b["value"] for b in home_buttons(bob)] == [b["value"] for b in buttons(request)]
    alice = await home_after(slack, "U0ALICE", seen["U0ALICE"])
    assert "waiting for <@U0BOB>" in visible_text(alice)
    # Carol may not decide it and didn't ask: her Home is not published again.
    await wait_drained(harness.database_url, slack)
    assert await slack.home_publishes("U0CAROL") == seen["U0CAROL"]


async def test_a_new_request_for_a_user_group_refreshes_every_open_home_of_the_team(
    harness: Harness, slack: Any, openai: Any
) -> None:
    await start(harness, {"APPROVERS": "S0EXPERTS"})
    await slack.open_home("U0CAROL")
    assert "Nothing waits for your decision." in visible_text(await open_home(slack, "U0CAROL"))
    await wait_drained(harness.database_url, slack)
    seen = await slack.home_publishes("U0CAROL")

    _, request = await ask(slack, openai)

    # Carol is in @experts: her Home shows the request with its buttons, unasked.
    carol = await home_after(slack, "U0CAROL", seen)
    assert [b["value"] for b in home_buttons(carol)] == [b["value"] for b in buttons(request)]


async def test_app_home_keeps_within_a_hundred_blocks_and_shows_the_oldest(
    harness: Harness, slack: Any, openai: Any
) -> None:
    await start(harness)
    asked = []
    for n in range(18):
        _, request = await ask(slack, openai, {**EMAIL, "to": f"person{n:02d}@example.com"})
        asked.append(request)

    await slack.open_home("U0BOB")
    home = await open_home(slack, "U0BOB")
    assert len(home["blocks"]) <= 100
    shown = visible_text(home)
    listed = [n for n in range(18) if f"person{n:02d}@example.com" in shown]
    assert listed == list(range(len(listed))) and 0 < len(listed) < 18
    assert f"… and {18 - len(listed)} more waiting for you (the oldest are shown)." in shown
    assert "`/agent pending`" in shown

    await slack.command("U0BOB", GENERAL, "pending")
    everything = await answer(slack, "U0BOB", "*Waiting for you* (18)")
    assert visible_text(everything).count("Review: send_email") == 18


async def test_agent_help_and_an_unknown_subcommand_answer_at_once(harness: Harness, slack: Any) -> None:
    await start(harness)
    helped = await slack.command("U0CAROL", GENERAL, "help")
    assert helped["ok"] and helped["status"] == 200
    assert helped["answer"]["response_type"] == "ephemeral"
    text = helped["answer"]["text"]
    for usage in ("`/agent pending`", "`/agent cancel`", "`/agent cancel <link>`", "`/agent help`", "*Home* tab"):
        assert usage in text
    shown = await answer(slack, "U0CAROL", "`/agent pending`")
    assert shown["text"] == text

    unknown = await slack.command("U0CAROL", GENERAL, "frobnicate <!channel>")
    assert unknown["answer"]["text"].startswith("I don't know `frobnicate`. Here is what I do.\n")
    assert "`/agent pending`" in unknown["answer"]["text"]

    bare = await slack.command("U0CAROL", GENERAL, "")
    assert bare["answer"]["text"] == text
    # A command renamed in the manifest is answered under its own name.
    renamed = await slack.command("U0CAROL", GENERAL, "help", command="/approvals")
    assert "`/approvals pending`" in renamed["answer"]["text"]


async def test_agent_pending_lists_what_waits_for_me_and_mine_waiting_on_others(
    harness: Harness, slack: Any, sandbox: Any, openai: Any
) -> None:
    await start(harness)
    root, request = await ask(slack, openai)
    link = f"<{link_to(sandbox, root, request['ts'])}|Open the thread>"

    acked = await slack.command("U0BOB", GENERAL, "pending")
    assert acked["ok"] and acked["status"] == 200 and acked["answer"] is None
    bob = visible_text(await answer(slack, "U0BOB", "*Waiting for you* (1)"))
    assert "*Review: send_email* — from <@U0ALICE>, asked" in bob and link in bob
    assert "*Your requests waiting on others* (0)" in bob

    await slack.command("U0ALICE", GENERAL, "pending")
    alice = visible_text(await answer(slack, "U0ALICE", "*Your requests waiting on others* (1)"))
    assert "*Waiting for you* (0)" in alice and "waiting for <@U0BOB>" in alice and link in alice
    responses = await slack.command_responses("U0ALICE")
    assert [r["via"] for r in responses] == ["response_url"]
    assert responses[0]["body"]["response_type"] == "ephemeral"


async def test_agent_cancel_lists_my_requests_here_and_its_button_cancels_as_the_thread_would(
    harness: Harness, slack: Any, openai: Any, outbox: list[dict[str, str]]
) -> None:
    await start(harness)
    root, request = await ask(slack, openai)
    openai.reply(Reply(content="Done."))

    await slack.command("U0BOB", GENERAL, "cancel")
    await answer(slack, "U0BOB", "You have no open requests in this channel.")

    await slack.command("U0ALICE", GENERAL, "cancel")
    listed = await answer(slack, "U0ALICE", "*Your open requests in this channel* (1)")
    (cancel,) = [block["accessory"] for block in listed["blocks"] if "accessory" in block]
    record_id = buttons(request)[0]["value"].split("|")[0]
    assert (cancel["action_id"], cancel["value"], cancel["style"]) == (
        "lgslack.withdraw",
        f"{record_id}|cancel",
        "danger",
    )
    clicked = await slack.click("U0ALICE", GENERAL, listed["ts"], "lgslack.withdraw")
    assert clicked["ok"]

    await wait_for_message(slack, GENERAL, root, containing("Done."))
    assert outbox == []
    (tool_message,) = openai.requests[1].tool_messages
    assert "The person who asked cancelled this request (<@U0ALICE>)." in tool_message["content"]
    decided = await current(slack, root, request["ts"])
    assert not buttons(decided) and "Rejected" in visible_text(decided)
    rows = await harness.running[-1].bot.store.decisions()
    assert [(r["decision"], r["user_id"]) for r in rows] == [("reject", "U0ALICE")]
    replaced = await slack.wait_for(
        lambda: _containing_ephemeral(slack, "U0ALICE", "Cancelled: the agent goes on."), timeout=15
    )
    assert "You have no open requests in this channel." in visible_text(replaced)


async def _containing_ephemeral(slack: Any, user: str, text: str) -> Message | None:
    return next((m for m in await slack.ephemerals(GENERAL, user) if text in visible_text(m)), None)


async def test_agent_cancel_with_a_link_cancels_only_the_askers_requests_in_that_thread(
    harness: Harness, slack: Any, sandbox: Any, openai: Any, outbox: list[dict[str, str]]
) -> None:
    await start(harness)
    root, request = await ask(slack, openai)
    openai.reply(Reply(content="Done."))
    link = f"{sandbox.url}/archives/{GENERAL}/p{root.replace('.', '')}"

    await slack.command("U0BOB", GENERAL, f"cancel <{link}>")
    await answer(slack, "U0BOB", "Only the person who asked can cancel a request, so nothing was changed.")
    await slack.command("U0BOB", GENERAL, "cancel not-a-link")
    await answer(slack, "U0BOB", "That isn't a link to a message", after=1)
    assert buttons(await current(slack, root, request["ts"]))

    await slack.command("U0ALICE", GENERAL, f"cancel {link}")
    await answer(slack, "U0ALICE", "Cancelled 1 request in that thread.")
    await wait_for_message(slack, GENERAL, root, containing("Done."))
    assert outbox == []
    assert "Rejected" in visible_text(await current(slack, root, request["ts"]))

    await slack.command("U0ALICE", GENERAL, f"cancel {link}")
    await answer(slack, "U0ALICE", "Nothing is waiting in that thread.", after=1)


async def test_a_modal_opened_from_app_home_decides_like_one_opened_in_the_thread(
    harness: Harness, slack: Any, openai: Any, outbox: list[dict[str, str]]
) -> None:
    await start(harness)
    root, request = await ask(slack, openai)
    openai.reply(Reply(content="Done."))
    await slack.open_home("U0BOB")
    await open_home(slack, "U0BOB")

    await slack.click_home("U0BOB", "lgslack.home:reject:0")
    (modal,) = await slack.wait_for(lambda: slack.views("U0BOB"))
    assert modal["private_metadata"] == buttons(request)[2]["value"]  # the request and action, as in the thread
    await slack.submit("U0BOB", {"lgslack_reason": "wrong recipient"})
    await wait_for_message(slack, GENERAL, root, containing("Done."))

    assert outbox == []
    (tool_message,) = openai.requests[1].tool_messages
    assert "wrong recipient" in tool_message["content"]
    assert "Rejected" in visible_text(await current(slack, root, request["ts"]))


def test_the_manifest_declares_the_home_tab_the_command_and_their_event_and_scope() -> None:
    manifest = yaml.safe_load(Path("manifest.yml").read_text(encoding="utf-8"))
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == "/agent" and command["url"].endswith("/slack/events")
    assert "commands" in manifest["oauth_config"]["scopes"]["bot"]
    assert "app_home_opened" in manifest["settings"]["event_subscriptions"]["bot_events"]
