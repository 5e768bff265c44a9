"""BOT_RENDERERS: the operator's own renderers, without a main of their own."""

from __future__ import annotations

from typing import Any

import pytest

from bot.config import load_settings
from bot.errors import ConfigError
from tests.support.drain import wait_drained
from tests.support.harness import Harness
from tests.support.renderers import HEADING, FeedbackRenderer
from tests.support.slack import containing, thread, visible_text, wait_for_message

GENERAL = "C0GENERAL"
FEEDBACK = "graphs.feedback_workflow:graph"


async def test_a_custom_renderer_shows_its_blocks_and_its_answer_resumes(harness: Harness, slack: Any) -> None:
    environ = harness.environ(FEEDBACK, BOT_RENDERERS="tests.support.renderers:FeedbackRenderer")
    process = await harness.start(FEEDBACK, environ=environ)
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> foo")
    question = await wait_for_message(slack, GENERAL, root, containing("Feedback wanted by the team"))
    assert question["blocks"][0]["elements"][0]["text"] == HEADING
    assert "Please provide feedback" in visible_text(question)

    await slack.post("U0ALICE", GENERAL, "baz", thread_ts=root)
    await wait_for_message(slack, GENERAL, root, containing("foo bar baz qux"))
    await wait_drained(harness.database_url, slack)
    async with process.bot.db.pool.connection() as conn:
        cur = await conn.execute("SELECT kind FROM lgslack_interrupts")
        assert [row["kind"] for row in await cur.fetchall()] == ["team_feedback"]
    assert sum("foo bar baz qux" in visible_text(m) for m in await thread(slack, GENERAL, root)) == 1


def test_the_listed_renderers_come_first_in_their_order() -> None:
    spec = "tests.support.renderers:FeedbackRenderer, bot.interrupts.questions:QueryRenderer"
    renderers = load_settings({"BOT_RENDERERS": spec}, "dev").renderers
    assert [type(r).__name__ for r in renderers] == ["FeedbackRenderer", "QueryRenderer"]
    assert isinstance(renderers[0], FeedbackRenderer)
    assert load_settings({}, "dev").renderers == ()


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        ("tests.support.renderers", "'tests.support.renderers', not module:Class"),
        ("tests.support.nowhere:X", "'tests.support.nowhere:X', whose module can't be imported"),
        ("tests.support.renderers:Missing", "which tests.support.renderers does not define"),
        ("tests.support.renderers:not_a_renderer", "which is not a renderer"),
        ("bot.types:Request", "can't be made with no arguments"),
    ],
)
def test_a_bad_entry_is_one_line_naming_it(spec: str, said: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({"BOT_RENDERERS": spec}, "dev")
    message = str(raised.value)
    assert message.startswith("BOT_RENDERERS lists ") and said in message and "\n" not in message


def test_pending_summarises_a_request_with_its_own_renderer() -> None:
    """`python -m bot pending` finds the renderer of a recorded kind among BOT_RENDERERS too."""
    from datetime import UTC, datetime

    from bot.pending import describe_rows

    now = datetime.now(UTC)
    row = {"id": "r1", "payload": "Please provide feedback: foo", "kind": "team_feedback", "created_at": now}
    row |= {"conversation_id": "c1", "channel_id": "C0GENERAL", "message_ts": "1.2"}
    (described,) = describe_rows([row], now, {}, (FeedbackRenderer(),))
    assert described["request"] == "Please provide feedback: foo"
