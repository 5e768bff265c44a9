"""A decision whose resume the intake runs itself (issue 11): the resumed answer is posted before the question's
message is rewritten to show the decision, so a quick resume is not kept waiting behind that rewrite; a slow one's
question shows the decision while it still runs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import AIMessage
from langgraph.graph import START, StateGraph
from langgraph.types import interrupt

from bench.graphs import State
from bot.slack import listeners
from tests.support.drain import wait_drained
from tests.support.harness import Harness
from tests.support.slack import ANSWER_BUTTON, GENERAL, buttons, containing, thread, typed_answer, wait_for_message

GATE = threading.Event()
"""What the slow graph's resumed node waits for."""


def _slow_ask(state: State) -> dict[str, Any]:
    text = str(state["messages"][-1].content)
    answer = interrupt(f"What should I do with {text}?")
    GATE.wait(30)
    return {"messages": [AIMessage(content=f"answer {answer} for {text}")]}


slow = StateGraph(State).add_node("ask", _slow_ask).add_edge(START, "ask").compile()


@pytest.fixture(autouse=True)
def gate() -> Iterator[threading.Event]:
    GATE.clear()
    yield GATE
    GATE.set()


async def _ask(harness: Harness, slack: Any, graph: str) -> tuple[str, str]:
    """The bot on `graph`, asked a question: the thread and the question's ts."""
    await harness.start(graph)
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> paint")
    question = await wait_for_message(slack, GENERAL, root, containing("What should I do with"))
    return root, str(question["ts"])


async def _rewritten(slack: Any, question_ts: str) -> bool:
    """Whether the question's message was rewritten (to show the decision)."""
    return any(c["params"].get("ts") == question_ts for c in await slack.calls("chat.update"))


async def _answer_came_first(slack: Any, answer_text: str, question_ts: str) -> None:
    calls = await slack.calls()
    answer = next(
        i for i, c in enumerate(calls) if c["method"] == "chat.postMessage" and answer_text in str(c["params"])
    )
    rewrites = [i for i, c in enumerate(calls) if c["method"] == "chat.update" and c["params"].get("ts") == question_ts]
    assert rewrites and min(rewrites) > answer, [c["method"] for c in calls]


async def _asked(harness: Harness, slack: Any, monkeypatch: pytest.MonkeyPatch, graph: str) -> tuple[str, str, Any]:
    """The bot on `graph`, asked a question and answering it in the modal once it has nothing left to do: the intake
    may then run the resume itself (no message came just before: `QUIET` is nought here)."""
    monkeypatch.setattr(listeners, "QUIET", 0.0)
    root, question_ts = await _ask(harness, slack, graph)
    claims = harness.running[0].bot.claims
    assert claims is not None
    started: list[int] = []
    start = claims.start

    def spy(job_id: int, *args: Any, **kwargs: Any) -> Any:
        started.append(job_id)
        return start(job_id, *args, **kwargs)

    await wait_drained(harness.database_url, slack)
    monkeypatch.setattr(claims, "start", spy)
    await slack.click("U0BOB", GENERAL, question_ts, ANSWER_BUTTON)
    assert (await slack.submit("U0BOB", typed_answer("blue"))).get("ok")
    return root, question_ts, started


async def test_a_quick_resume_run_by_the_intake_posts_its_answer_before_the_question_is_rewritten(
    harness: Harness, slack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, question_ts, started = await _asked(harness, slack, monkeypatch, "bench.graphs:ask")
    await wait_for_message(slack, GENERAL, root, containing("answer blue for"))
    await wait_drained(harness.database_url, slack)
    assert len(started) == 1, "the resume was not run by the intake"
    await _answer_came_first(slack, "answer blue", question_ts)
    shown = next(m for m in await thread(slack, GENERAL, root) if m["ts"] == question_ts)
    assert not buttons(shown), "the question still offers its buttons"


async def test_a_slow_resume_run_by_the_intake_shows_the_decision_while_it_runs(
    harness: Harness, slack: Any, monkeypatch: pytest.MonkeyPatch, gate: threading.Event
) -> None:
    root, question_ts, started = await _asked(harness, slack, monkeypatch, "tests.test_resume_order:slow")
    # The resumed node waits for the gate, opened only once the question shows the decision.
    await slack.wait_for(lambda: _rewritten(slack, question_ts), timeout=10.0)
    assert not gate.is_set()
    assert len(started) == 1, "the resume was not run by the intake"
    shown = next(m for m in await thread(slack, GENERAL, root) if m["ts"] == question_ts)
    assert not buttons(shown), "the question still offers its buttons"
    gate.set()
    await wait_for_message(slack, GENERAL, root, containing("answer blue for paint"))


async def test_a_reply_that_answers_resumes_in_its_own_job_answer_first_and_once(
    harness: Harness, slack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, question_ts = await _ask(harness, slack, "bench.graphs:ask")
    await wait_drained(harness.database_url, slack)
    resumes: list[str] = []
    turns = harness.running[0].bot.flows.turns
    handle_resume = turns.handle_resume

    async def spy(*, record_id: str, first: Any = None) -> None:
        resumes.append(record_id)
        await handle_resume(record_id=record_id, first=first)

    monkeypatch.setattr(turns, "handle_resume", spy)
    await slack.post("U0ALICE", GENERAL, "green", thread_ts=root)
    await wait_for_message(slack, GENERAL, root, containing("answer green for"))
    await wait_drained(harness.database_url, slack)
    # Run by the reply's job, then by its own job, which found it done.
    assert len(resumes) == 2 and len(set(resumes)) == 1, resumes
    answers = [m for m in await thread(slack, GENERAL, root) if "answer green for" in str(m.get("text"))]
    assert len(answers) == 1, answers
    await _answer_came_first(slack, "answer green", question_ts)


async def test_a_slow_resume_run_on_by_the_reply_that_answered_shows_the_decision_while_it_runs(
    harness: Harness, slack: Any, gate: threading.Event
) -> None:
    root, question_ts = await _ask(harness, slack, "tests.test_resume_order:slow")
    await slack.post("U0ALICE", GENERAL, "green", thread_ts=root)
    # The resumed node waits for the gate, opened only once the question shows the decision.
    await slack.wait_for(lambda: _rewritten(slack, question_ts), timeout=10.0)
    assert not gate.is_set()
    gate.set()
    await wait_for_message(slack, GENERAL, root, containing("answer green for paint"))
    await wait_drained(harness.database_url, slack)
    answers = [m for m in await thread(slack, GENERAL, root) if "answer green for" in str(m.get("text"))]
    assert len(answers) == 1, answers
