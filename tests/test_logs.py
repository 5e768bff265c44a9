"""Logs for operators: ids bound by context reach each line (text and JSON); a real turn ends with one summary
line carrying its graph, duration, outcome, conversation and job; a Slack request's lines carry its id; the
command line's LOG_FORMAT=json gives one JSON object per line."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from slack_sdk.signature import SignatureVerifier

from bot.logs import bind, current_ids, handler
from tests.support.harness import SIGNING_SECRET, Harness
from tests.support.slack import containing, wait_for_message

REPO = Path(__file__).resolve().parents[1]
GENERAL = "C0GENERAL"


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """The root logger's INFO lines as JSON, the way LOG_FORMAT=json writes them."""
    stream = io.StringIO()
    added = handler(stream, logging.INFO, "json")
    root = logging.getLogger()
    level = root.level
    root.addHandler(added)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(added)
        root.setLevel(level)


def entries(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


async def wait_for_entry(stream: io.StringIO, match: Any, timeout: float = 30.0) -> dict[str, Any]:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in entries(stream):
            if match(entry):
                return entry
        await asyncio.sleep(0.05)
    raise AssertionError("no such log line; got:\n" + stream.getvalue()[-4000:])


def test_bound_ids_reach_text_and_json_lines_and_unbind_after() -> None:
    text, as_json = io.StringIO(), io.StringIO()
    logger = logging.getLogger("tests.logs.unit")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler(text, logging.INFO, "text"))
    logger.addHandler(handler(as_json, logging.INFO, "json"))
    with bind(conversation_id="T0:C0:1.2", job_id=7):
        with bind(request_id="abc"):
            logger.info("inside %s", "both")
        logger.info("inside one")
    logger.info("outside")
    assert current_ids() == {}
    lines = text.getvalue().splitlines()
    assert lines[0].endswith("inside both [conversation=T0:C0:1.2 request=abc job=7]")
    assert lines[1].endswith("inside one [conversation=T0:C0:1.2 job=7]")
    assert lines[2].endswith("outside")
    first, second, third = entries(as_json)
    assert first["message"] == "inside both" and first["level"] == "INFO" and first["logger"] == "tests.logs.unit"
    assert (first["conversation_id"], first["request_id"], first["job_id"]) == ("T0:C0:1.2", "abc", "7")
    assert "request_id" not in second and second["job_id"] == "7"
    assert not {"conversation_id", "request_id", "job_id"} & set(third)


async def test_a_turn_ends_with_one_summary_line_carrying_its_ids(
    harness: Harness, slack: Any, json_lines: io.StringIO
) -> None:
    await harness.start("graphs.feedback_workflow:graph")
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> foo")
    await wait_for_message(slack, GENERAL, root, containing("foo bar"))
    summary = await wait_for_entry(json_lines, lambda e: e.get("logger") == "bot.flow.turns" and "graph" in e)
    conversation = f"T0SANDBOX:{GENERAL}:{root}"
    assert summary["graph"] == "graphs.feedback_workflow:graph"
    assert summary["outcome"] == "waiting" and summary["run"].startswith("turn:")
    assert isinstance(summary["duration_ms"], int) and summary["duration_ms"] >= 0
    assert summary["conversation_id"].endswith(f":{GENERAL}:{root}") or summary["conversation_id"] == conversation
    assert summary["job_id"].isdigit()
    assert summary["message"].startswith(f"turn {summary['run']}: graph graphs.feedback_workflow:graph, ")
    summaries = [e for e in entries(json_lines) if e.get("logger") == "bot.flow.turns" and "graph" in e]
    assert len(summaries) == 1


async def test_a_slack_request_s_lines_carry_its_request_id(harness: Harness, json_lines: io.StringIO) -> None:
    bot = await harness.start("graphs.feedback_workflow:graph")
    body = "payload=%7Bnot-json"  # signed, but not a payload Bolt can take apart
    timestamp = str(int(time.time()))
    signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=timestamp, body=body)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature,
        "X-Request-Id": "req-42",
    }
    url = bot.url + "/slack/events"
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers) as response:
        assert response.status == 400
    entry = await wait_for_entry(json_lines, lambda e: "refused a signed request" in e["message"])
    assert entry["request_id"] == "req-42" and entry["level"] == "WARNING"


def test_log_format_json_on_the_command_line_gives_json_lines(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "LOG_", "BOT_", "DATABASE_"))}
    env.update(LOG_FORMAT="json", SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s", SLACK_APP_TOKEN="xapp-1")
    # BOT_DATABASE_WAIT: how long it waits for the server before it gives up (15 s by default).
    env.update(DATABASE_URL="postgresql://nobody@127.0.0.1:1/none", PORT="3999", BOT_DATABASE_WAIT="2")
    done = subprocess.run(
        [sys.executable, "-m", "bot", "worker"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: DATABASE_URL does not answer (waited 2 s)") and "BOT_DATABASE_WAIT" in last
    for line in done.stderr.strip().splitlines()[:-1]:
        entry = json.loads(line)
        assert {"time", "level", "logger", "message"} <= set(entry)
