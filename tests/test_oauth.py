"""Many workspaces: two teams install the app through the real OAuth flow (Bolt's `/slack/install` and
`/slack/oauth_redirect`, the sandbox's authorize page and `oauth.v2.access`); after a restart each team's
mentions, clicks and timers are answered with that team's own token only; tokens rotate; an uninstall removes the
installation and later events of that team are acknowledged and ignored."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.config import load_settings
from bot.dev.fake_openai import Reply, ToolCall
from bot.dev.sandbox.oauth import CLIENT_ID, CLIENT_SECRET, SECOND_CHANNEL, SECOND_TEAM_ID
from bot.dev.sandbox.workspace import TEAM_ID, TEAM_OF
from bot.errors import ConfigError
from graphs.tools import OUTBOX
from tests.support.drain import wait_drained
from tests.support.harness import BOT_TOKEN, Harness
from tests.support.slack import containing, from_bot, thread, visible_text, wait_for_message

GENERAL, EXPERTS = "C0GENERAL", "C0EXPERTS"
EMAIL = {"to": "bob@example.com", "subject": "Lunch", "body": "Noon?"}
SCOPED = ("channel", "channel_id")


@pytest.fixture(autouse=True)
def outbox() -> Iterator[list[dict[str, str]]]:
    OUTBOX.clear()
    yield OUTBOX
    OUTBOX.clear()


def oauth_environ(harness: Harness, graph: str, **extra: str) -> dict[str, str]:
    env = harness.environ(graph, SLACK_CLIENT_ID=CLIENT_ID, SLACK_CLIENT_SECRET=CLIENT_SECRET, **extra)
    del env["SLACK_BOT_TOKEN"]
    return env


async def start(harness: Harness, graph: str, **extra: str) -> str:
    process = await harness.start(graph, environ=oauth_environ(harness, graph, **extra))
    harness.sandbox.oauth.redirect_uri = f"{process.url}/slack/oauth_redirect"
    return process.url


async def install(bot_url: str, team: str) -> None:
    """A person installs the app: the bot's install link, the workspace's authorize page, back to the bot."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        async with http.get(f"{bot_url}/slack/install", allow_redirects=False) as answer:
            assert answer.status == 302, await answer.text()
            authorize = answer.headers["Location"]
            # The state cookie is Secure (a browser sends it back over https): hand it back as the browser would.
            cookie = "; ".join(f"{m.key}={m.value}" for m in answer.cookies.values())
        assert "/oauth/v2/authorize?" in authorize and f"client_id={CLIENT_ID}" in authorize
        async with http.get(f"{authorize}&team={team}", allow_redirects=False) as answer:
            assert answer.status == 302, await answer.text()
            back = answer.headers["Location"]
        assert back.startswith(f"{bot_url}/slack/oauth_redirect?code=")
        async with http.get(back, allow_redirects=False, headers={"Cookie": cookie}) as answer:
            assert answer.status == 200, await answer.text()


async def installation(harness: Harness, team: str) -> dict[str, Any] | None:
    pool = harness.running[-1].bot.db.pool
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT bot FROM lgslack_installations WHERE team_id = %s", (team,))
        row = await cur.fetchone()
    return row["bot"] if row else None


def no_call_crossed_teams(sandbox: Any, since: int = 0) -> list[Any]:
    """Every Web API call after `since` was made with a known token, and only about its own team's channels."""
    calls = sandbox.call_log[since:]
    for call in calls:
        if call.method == "oauth.v2.access":
            continue
        assert call.team in (TEAM_ID, SECOND_TEAM_ID), call
        assert call.response.get("error") not in ("invalid_auth", "channel_not_found", "user_not_found"), call
        for key in SCOPED:
            channel = call.params.get(key)
            if channel:
                assert TEAM_OF.get(channel, TEAM_ID) == call.team, call
    return calls


async def ask(slack: Any, openai: Any, user: str, channel: str) -> tuple[str, Any]:
    openai.reply(Reply(tool_calls=[ToolCall("send_email", EMAIL)]))
    openai.reply(Reply(content="Done."))
    root = await slack.post(user, channel, "<@U0BOT> email bob about lunch")
    return root, await wait_for_message(slack, channel, root, containing("The agent asks for approval"))


async def test_two_workspaces_each_use_their_own_token_after_a_restart(
    harness: Harness, sandbox: Any, slack: Any, openai: Any, tmp_path: Path, outbox: list[dict[str, str]]
) -> None:
    sandbox.oauth.add_second_team()
    sandbox.oauth.rotation = True
    sandbox.oauth.expires_in = 600  # under Bolt's two hours: refreshed on first use
    graph = "graphs.approvals:graph"
    url = await start(harness, graph)
    await install(url, TEAM_ID)
    await install(url, SECOND_TEAM_ID)
    first = {team: await installation(harness, team) for team in (TEAM_ID, SECOND_TEAM_ID)}
    assert all(bot and bot["bot_refresh_token"] for bot in first.values())

    await harness.stop_all()  # a new bot on the same database: the installations were stored
    await start(harness, graph)
    since = len(sandbox.call_log)
    root, request = await ask(slack, openai, "U0ALICE", GENERAL)
    await slack.click("U0BOB", GENERAL, request["ts"], "lgslack.act:approve:0")
    await wait_for_message(slack, GENERAL, root, containing("Done."))
    # In the second team: a rejection (its modal is opened by the listener), then ana's App Home.
    root, request = await ask(slack, openai, "U2ANA", SECOND_CHANNEL)
    await slack.click("U2BEN", SECOND_CHANNEL, request["ts"], "lgslack.act:reject:0")
    await slack.wait_for(lambda: slack.views("U2BEN"))
    await slack.submit("U2BEN", {"lgslack_reason": "wrong recipient"})
    await wait_for_message(slack, SECOND_CHANNEL, root, containing("Done."))
    await slack.open_home("U2ANA")
    await slack.wait_for(lambda: slack.home("U2ANA"))
    assert outbox == [EMAIL]

    calls = no_call_crossed_teams(sandbox, since)
    posts = [c for c in calls if c.method == "chat.postMessage"]
    assert {c.team for c in posts if c.params["channel"] == GENERAL} == {TEAM_ID}
    assert {c.team for c in posts if c.params["channel"] == SECOND_CHANNEL} == {SECOND_TEAM_ID}
    assert {c.team for c in calls if c.method in ("views.open", "views.publish")} == {SECOND_TEAM_ID}
    # Rotation: the short-lived install tokens were refreshed and the new ones saved.
    for team in (TEAM_ID, SECOND_TEAM_ID):
        now = await installation(harness, team)
        assert now is not None and first[team] is not None
        assert now["bot_token"] != first[team]["bot_token"] and now["bot_token"] in sandbox.oauth.tokens_of(team)


async def test_a_timer_uses_its_teams_token_and_an_uninstall_silences_the_team(
    harness: Harness, sandbox: Any, slack: Any, openai: Any, tmp_path: Path
) -> None:
    sandbox.oauth.add_second_team()
    config = tmp_path / "bot.toml"
    config.write_text(f'[escalation]\nchannel = "{EXPERTS}"\nremind_after = "2s"\n')
    graph = "graphs.chatbot:graph"
    url = await start(harness, graph, ESCALATION_CHANNEL=EXPERTS, BOT_CONFIG=str(config))
    await install(url, TEAM_ID)
    await install(url, SECOND_TEAM_ID)
    await harness.stop_all()
    await start(harness, graph, ESCALATION_CHANNEL=EXPERTS, BOT_CONFIG=str(config))
    since = len(sandbox.call_log)

    openai.reply(Reply(tool_calls=[ToolCall("human_assistance", {"query": "Which vaccine first?"})]))
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> ask an expert about my kitten")
    await wait_for_message(slack, GENERAL, root, containing("I asked the experts in <#C0EXPERTS>"))

    async def request() -> Any:
        found = [m for m in await slack.history(EXPERTS) if from_bot(m) and "Which vaccine" in visible_text(m)]
        return found[0] if found else None

    asked = await slack.wait_for(request, timeout=20)
    await wait_for_message(slack, EXPERTS, asked["ts"], containing("Still waiting for an answer"), timeout=20)
    reminders = [c for c in no_call_crossed_teams(sandbox, since) if c.method == "chat.postMessage"]
    assert reminders and {c.team for c in reminders} == {TEAM_ID}

    openai.reply(Reply(content="The experts say: FVRCP."))
    await slack.post("U0BOB", EXPERTS, "FVRCP first.", thread_ts=asked["ts"])
    await wait_for_message(slack, GENERAL, root, containing("The experts say"), timeout=20)

    # A message of the second team waits in the queue (no job runs) when the team removes the app.
    await harness.stop_all()
    await start(
        harness, graph, ESCALATION_CHANNEL=EXPERTS, BOT_CONFIG=str(config), BOT_WORKERS="0", BOT_INTAKE_TURNS="0"
    )
    waiting = await slack.post("U2ANA", SECOND_CHANNEL, "<@U0BOT> are you there?")
    await slack.wait_for(lambda: _inbound(harness, SECOND_TEAM_ID, "queued"), timeout=10)
    before = len(sandbox.call_log)
    sandbox.oauth.uninstall(SECOND_TEAM_ID)
    await slack.wait_for(lambda: _gone(harness, SECOND_TEAM_ID), timeout=10)
    assert await _inbound(harness, SECOND_TEAM_ID, "done")  # nothing will re-drive it
    # Its job, run by a worker later, stops without calling Slack; later events are acknowledged and ignored.
    await harness.stop_all()
    await start(harness, graph, ESCALATION_CHANNEL=EXPERTS, BOT_CONFIG=str(config))
    await wait_drained(harness.database_url, slack)
    ignored = await slack.post("U2BEN", SECOND_CHANNEL, "<@U0BOT> hello?")

    async def acknowledged() -> bool:
        mine = [d for d in await slack.deliveries() if d.get("ts") == ignored]
        return bool(mine) and all(d.get("state") == "done" and d.get("status") == 200 for d in mine)

    await slack.wait_for(acknowledged, timeout=10)
    await wait_drained(harness.database_url, slack)
    assert not [c for c in sandbox.call_log[before:] if c.team == SECOND_TEAM_ID]
    for ts in (waiting, ignored):
        assert not [m for m in await thread(slack, SECOND_CHANNEL, ts) if from_bot(m)]
    assert await _inbound(harness, SECOND_TEAM_ID, "done") == 1  # the later message was never taken in


async def _inbound(harness: Harness, team: str, status: str) -> int:
    pool = harness.running[-1].bot.db.pool
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*) AS n FROM lgslack_inbound WHERE team_id = %s AND status = %s", (team, status)
        )
        row = await cur.fetchone()
    return int(row["n"]) if row else 0


async def _gone(harness: Harness, team: str) -> bool:
    return await installation(harness, team) is None


def test_oauth_settings_need_both_halves() -> None:
    base = {"SLACK_SIGNING_SECRET": "s", "SLACK_CLIENT_ID": CLIENT_ID}
    with pytest.raises(ConfigError, match="SLACK_CLIENT_SECRET is not set but SLACK_CLIENT_ID is"):
        load_settings(base, "serve")
    settings = load_settings({**base, "SLACK_CLIENT_SECRET": CLIENT_SECRET}, "serve")
    assert settings.oauth and not settings.slack_bot_token
    assert not load_settings({"SLACK_SIGNING_SECRET": "s", "SLACK_BOT_TOKEN": BOT_TOKEN}, "serve").oauth
