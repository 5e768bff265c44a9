"""Escalation: questions reach the experts' channel, are answered there, and flow back to the asker."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.dev.fake_openai import Reply, ToolCall
from graphs.tools import OUTBOX
from tests.support.drain import wait_drained
from tests.support.harness import Harness
from tests.support.slack import Message, buttons, containing, from_bot, thread, visible_text, wait_for_message

GENERAL, EXPERTS, ONCALL = "C0GENERAL", "C0EXPERTS", "C0ONCALL"
ANSWER = "lgslack.act:answer"
QUERY = "Which vaccine does a kitten need first?"


def script_question(openai: Any) -> None:
    openai.reply(Reply(tool_calls=[ToolCall("human_assistance", {"query": QUERY})]))
    openai.reply(Reply(content="The experts say: start with FVRCP."))


async def experts_request(slack: Any, channel: str = EXPERTS) -> Message:
    async def find() -> Message | None:
        return next((m for m in await slack.history(channel) if from_bot(m) and QUERY in visible_text(m)), None)

    found: Message = await slack.wait_for(find, timeout=20)
    return found


async def ask(harness: Harness, slack: Any, openai: Any, **environ: str) -> tuple[str, Message]:
    script_question(openai)
    graph = "graphs.chatbot:graph"
    await harness.start(graph, environ={**harness.environ(graph, ESCALATION_CHANNEL=EXPERTS), **environ})
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> my kitten needs shots, ask an expert")
    await wait_for_message(slack, GENERAL, root, containing("I asked the experts in <#C0EXPERTS>"))
    return root, await experts_request(slack)


async def test_a_question_goes_to_the_experts_with_context_and_the_answer_comes_back(
    harness: Harness, slack: Any, openai: Any
) -> None:
    root, request = await ask(harness, slack, openai)
    shown = visible_text(request)
    assert "<@U0ALICE> is waiting for an answer in <http://" in shown
    assert "my kitten needs shots, ask an expert" in shown
    assert "graphs.chatbot:graph" in shown
    assert [b["action_id"] for b in buttons(request)] == [ANSWER]
    asking = await thread(slack, GENERAL, root)
    assert not any(QUERY in visible_text(m) and ANSWER in json.dumps(m.get("blocks")) for m in asking)

    await slack.click("U0BOB", EXPERTS, request["ts"], ANSWER)
    await slack.wait_for(lambda: slack.views("U0BOB"))
    await slack.submit("U0BOB", {"lgslack_answer": "FVRCP at 8 weeks."})

    await wait_for_message(slack, GENERAL, root, containing("The experts say: start with FVRCP."))
    assert openai.requests[1].tool_messages[0]["content"] == "FVRCP at 8 weeks."
    await wait_for_message(slack, GENERAL, root, containing("<@U0BOB> answered in <#C0EXPERTS>"))
    returned = await wait_for_message(slack, EXPERTS, request["ts"], containing("your answer went back to <@U0ALICE>"))
    assert "Thanks <@U0BOB>" in visible_text(returned)


async def test_a_reply_in_the_experts_thread_answers_and_later_ones_are_told(
    harness: Harness, slack: Any, openai: Any
) -> None:
    root, request = await ask(harness, slack, openai)
    await slack.post("U0CAROL", EXPERTS, "FVRCP first.", thread_ts=request["ts"])
    await wait_for_message(slack, GENERAL, root, containing("The experts say"))
    await slack.post("U0BOB", EXPERTS, "Rabies first!", thread_ts=request["ts"])
    notes = await slack.wait_for(lambda: slack.ephemerals(EXPERTS, "U0BOB"))
    assert "Already answered by <@U0CAROL>" in visible_text(notes[-1])
    assert len(openai.requests) == 2
    # The asker's own replies in the asking thread don't answer the experts' question.


async def test_the_asker_is_told_to_wait_and_may_cancel(harness: Harness, slack: Any, openai: Any) -> None:
    root, request = await ask(harness, slack, openai)
    await slack.post("U0ALICE", GENERAL, "any news?", thread_ts=root)
    await wait_for_message(slack, GENERAL, root, containing("waiting for their answer"))

    notice = next(m for m in await thread(slack, GENERAL, root) if "I asked the experts" in visible_text(m))
    await slack.click("U0BOB", GENERAL, notice["ts"], "lgslack.act:cancel")
    refusals = await slack.wait_for(lambda: slack.ephemerals(GENERAL, "U0BOB"))
    assert "Only <@U0ALICE>, who asked, can cancel" in visible_text(refusals[-1])

    await slack.click("U0ALICE", GENERAL, notice["ts"], "lgslack.act:cancel")
    await wait_for_message(slack, GENERAL, root, containing("The experts say"))
    assert "cancelled this request" in openai.requests[1].tool_messages[0]["content"]
    cancelled = next(m for m in await slack.history(EXPERTS) if m["ts"] == request["ts"])
    assert not buttons(cancelled) and "<@U0ALICE>" in visible_text(cancelled)


def write_config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "bot.toml"
    path.write_text(text)
    return str(path)


async def test_reminder_fallback_and_timeout_fire(
    harness: Harness, slack: Any, openai: Any, sandbox: Any, tmp_path: Path
) -> None:
    sandbox.workspace.add_channel(ONCALL, "oncall")
    config = write_config(
        tmp_path,
        f"""
[escalation]
channel = "{EXPERTS}"
mention = "S0EXPERTS"
remind_after = "1s"
fallback_after = "2s"
fallback_channel = "{ONCALL}"
timeout_after = "4s"
timeout_answer = "No expert answered in time."
""",
    )
    root, request = await ask(harness, slack, openai, BOT_CONFIG=config)
    reminder = await wait_for_message(slack, EXPERTS, request["ts"], containing("Still waiting for an answer"))
    assert "<!subteam^S0EXPERTS>" in visible_text(reminder)
    moved = await experts_request(slack, ONCALL)
    assert buttons(moved)
    await slack.wait_for(lambda: _text_of(slack, EXPERTS, request["ts"], "moved to <#C0ONCALL>"))
    await wait_for_message(slack, GENERAL, root, containing("The experts say"), timeout=20)
    assert openai.requests[1].tool_messages[0]["content"] == "No expert answered in time."
    timed_out = next(m for m in await slack.history(ONCALL) if m["ts"] == moved["ts"])
    assert not buttons(timed_out) and "timeout" in visible_text(timed_out)


async def _text_of(slack: Any, channel: str, ts: str, text: str) -> bool:
    return any(m["ts"] == ts and text in visible_text(m) for m in await slack.history(channel))


async def test_an_answer_cancels_the_timers(harness: Harness, slack: Any, openai: Any, tmp_path: Path) -> None:
    config = write_config(tmp_path, f'[escalation]\nchannel = "{EXPERTS}"\nremind_after = "2s"\ntimeout_after = "3s"\n')
    root, request = await ask(harness, slack, openai, BOT_CONFIG=config)
    await slack.post("U0BOB", EXPERTS, "FVRCP first.", thread_ts=request["ts"])
    await wait_for_message(slack, GENERAL, root, containing("The experts say"))
    async with harness.running[-1].bot.db.pool.connection() as conn:
        cur = await conn.execute("SELECT status FROM procrastinate_jobs WHERE task_name = 'lgslack.timer'")
        statuses = sorted(row["status"] for row in await cur.fetchall())
    assert statuses == ["cancelled", "cancelled"]

    # Let the timers' times pass and the queue drain: a reminder that escaped the cancel would be posted by then.
    async def timers_due() -> bool:
        async with harness.running[-1].bot.db.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT bool_and(scheduled_at < now()) AS due FROM procrastinate_jobs WHERE task_name = 'lgslack.timer'"
            )
            row = await cur.fetchone()
        return bool(row and row["due"])

    await slack.wait_for(timers_due, timeout=10)
    await wait_drained(harness.database_url, slack)
    assert not any("Still waiting" in visible_text(m) for m in await thread(slack, EXPERTS, request["ts"]))
    assert len(openai.requests) == 2


async def test_a_question_with_no_timeout_answer_tells_the_asker(
    harness: Harness, slack: Any, openai: Any, tmp_path: Path
) -> None:
    config = write_config(tmp_path, f'[escalation]\nchannel = "{EXPERTS}"\ntimeout_after = "1s"\n')
    root, request = await ask(harness, slack, openai, BOT_CONFIG=config)
    await wait_for_message(slack, GENERAL, root, containing("Nobody in <#C0EXPERTS> answered within 1 second"))
    assert buttons(next(m for m in await slack.history(EXPERTS) if m["ts"] == request["ts"]))
    await slack.post("U0BOB", EXPERTS, "FVRCP first.", thread_ts=request["ts"])
    await wait_for_message(slack, GENERAL, root, containing("The experts say"))


async def test_an_approval_times_out_as_a_rejection(harness: Harness, slack: Any, openai: Any, tmp_path: Path) -> None:
    OUTBOX.clear()
    config = write_config(
        tmp_path,
        f"""
[[routes]]
name = "mail approvals"
tools = ["send_email"]
channel = "{EXPERTS}"
timeout_after = "1s"
""",
    )
    openai.reply(Reply(tool_calls=[ToolCall("send_email", {"to": "a@b.c", "subject": "s", "body": "b"})]))
    openai.reply(Reply(content="I could not send it."))
    graph = "graphs.approvals:graph"
    await harness.start(graph, environ=harness.environ(graph, BOT_CONFIG=config))
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> mail a@b.c")
    await wait_for_message(slack, GENERAL, root, containing("I could not send it."), timeout=20)
    assert OUTBOX == []
    assert "timed out" in openai.requests[1].tool_messages[0]["content"]


async def test_a_restart_between_question_and_answer_loses_nothing(
    harness: Harness, slack: Any, openai: Any, tmp_path: Path
) -> None:
    config = write_config(tmp_path, f'[escalation]\nchannel = "{EXPERTS}"\nremind_after = "3s"\n')
    root, request = await ask(harness, slack, openai, BOT_CONFIG=config)
    await harness.stop_all()
    graph = "graphs.chatbot:graph"
    await harness.start(graph, environ=harness.environ(graph, ESCALATION_CHANNEL=EXPERTS, BOT_CONFIG=config))
    await wait_for_message(slack, EXPERTS, request["ts"], containing("Still waiting for an answer"), timeout=20)
    await slack.post("U0BOB", EXPERTS, "FVRCP first.", thread_ts=request["ts"])
    await wait_for_message(slack, GENERAL, root, containing("The experts say"))


async def test_a_channel_named_in_the_payload_wins(harness: Harness, slack: Any) -> None:
    await harness.start("tests.support.graphs:ask_channel")
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> Is the VPN down?")
    await wait_for_message(slack, GENERAL, root, containing("I asked the experts in <#C0EXPERTS>"))

    async def find() -> Message | None:
        return next((m for m in await slack.history(EXPERTS) if "Is the VPN down?" in visible_text(m)), None)

    request = await slack.wait_for(find)
    await slack.post("U0BOB", EXPERTS, "No, it's fine.", thread_ts=request["ts"])
    result = await wait_for_message(slack, GENERAL, root, containing("No, it's fine."))
    assert "Is the VPN down?" in visible_text(result)


async def test_pending_lists_open_requests(harness: Harness, slack: Any, openai: Any, database_url: str) -> None:
    await ask(harness, slack, openai)
    env = {**os.environ, **harness.environ("graphs.chatbot:graph")}
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot", "pending", "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    (row,) = json.loads(done.stdout)
    assert row["kind"] == "query" and row["request"] == QUERY
    assert row["route"] == f"escalation → {EXPERTS}"
    assert row["link"].startswith("http://127.0.0.1") and "/archives/C0EXPERTS/" in row["link"]
    assert row["asked_by"] == "U0ALICE"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('[escalation]\nchannel = "#experts"\n', "BOT_CONFIG has a bad [escalation].channel"),
        ('[[routes]]\nchannel = "C0X1"\nremind_after = "soon"\n', "BOT_CONFIG has a bad routes[0].remind_after"),
        ('[[routes]]\nchannel = "C0X1"\nfallback_after = "1h"\n', "BOT_CONFIG has routes[0].fallback_after but no"),
        ('[[routes]]\nchanel = "C0X1"\n', "BOT_CONFIG has unknown key(s) chanel in routes[0]"),
    ],
)
def test_a_bad_route_file_stops_the_bot_with_one_line(tmp_path: Path, text: str, error: str) -> None:
    config = write_config(tmp_path, text)
    done = subprocess.run(
        [sys.executable, "-m", "bot", "serve"],
        env={
            "PATH": os.environ["PATH"],
            "SLACK_BOT_TOKEN": "xoxb-1",
            "SLACK_SIGNING_SECRET": "s",
            "BOT_CONFIG": config,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: {error}")
