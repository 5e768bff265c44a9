"""Two replicas racing, and Slack misbehaving at random: every answer decides once, every message shows once.

Part A runs two `python -m bot serve` processes on one database, behind a small load balancer (`Switchboard`)
that the sandbox delivers to: one event reaches both replicas at once (and again as Slack's retry), answers race
from both replicas and from the thread, an approval is clicked on both. Part B runs dozens of conversations
while a fifth of the bot's Web API calls fail at random — refused, or stored by Slack and then left unanswered —
and checks, once the bot has nothing left to do, that Slack shows each message once and every record is settled.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import psycopg
import pytest
from aiohttp import web
from psycopg.rows import dict_row

from bot.dev.fake_openai import Reply, ToolCall
from bot.dev.sandbox import WaitTimeout
from bot.dev.sandbox.delivery import signed_headers
from tests.support.drain import wait_drained
from tests.support.harness import SIGNING_SECRET, Harness
from tests.support.processes import BotProcess, start_bot
from tests.support.slack import (
    ANSWER_BUTTON,
    GENERAL,
    Message,
    buttons,
    containing,
    from_bot,
    thread,
    typed_answer,
    visible_text,
    wait_for_message,
)

pytestmark = pytest.mark.faults

FEEDBACK = "graphs.feedback_workflow:graph"
APPROVALS = "graphs.approvals:graph"
FAST = {"BOT_STALLED_AFTER": "2", "BOT_RECONCILE_EVERY": "1"}
QUESTION = "Please provide feedback"
EMAIL = {"to": "bob@example.com", "subject": "Lunch", "body": "Noon at the usual place?"}
ALL_FAULTS = ["ratelimited", "server_error", "html_error", "timeout_after_store", "reset_after_store"]
SLOW = 90.0
"""How long a person waits for the bot under chaos: a message Slack kept failing waits out its backoff."""


# ---- two replicas behind one load balancer -------------------------------------------------------------------

FORWARDED = frozenset(
    {"content-type", "x-slack-request-timestamp", "x-slack-signature", "x-slack-retry-num", "x-slack-retry-reason"}
)
RETURNED = frozenset({"content-type", "x-slack-no-retry"})


class Switchboard:
    """A load balancer in front of the replicas: the sandbox delivers here. A click or a modal goes to the replica
    its person is pinned to; events and unpinned people take turns."""

    def __init__(self, replicas: list[str]) -> None:
        self.replicas = replicas
        self.pinned: dict[str, int] = {}
        self.served: Counter[int] = Counter()
        self.url = ""
        self._turns = itertools.count()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/slack/events", self._forward)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/slack/events"
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def choose(self, body: bytes) -> int:
        payload = parse_qs(body.decode()).get("payload")
        if payload:
            user = (json.loads(payload[0]).get("user") or {}).get("id")
            if user in self.pinned:
                return self.pinned[user]
        return next(self._turns) % len(self.replicas)

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._session is not None
        body = await request.read()
        replica = self.choose(body)
        self.served[replica] += 1
        headers = {k: v for k, v in request.headers.items() if k.lower() in FORWARDED}
        async with self._session.post(self.replicas[replica], data=body, headers=headers) as answer:
            payload = await answer.read()
            kept = {k: v for k, v in answer.headers.items() if k.lower() in RETURNED}
            return web.Response(status=answer.status, body=payload, headers=kept)


@asynccontextmanager
async def two_replicas(
    harness: Harness, sandbox: Any, graph: str, **env: str
) -> AsyncIterator[tuple[list[BotProcess], Switchboard]]:
    """Two bot processes on the test's database, the sandbox delivering to them through a `Switchboard`."""
    env = {**FAST, **env}
    started = await asyncio.gather(
        start_bot(harness, graph, **env), start_bot(harness, graph, **env), return_exceptions=True
    )
    bots = [b for b in started if isinstance(b, BotProcess)]
    board = Switchboard([b.events_url for b in bots])
    try:
        for failure in started:
            if isinstance(failure, BaseException):
                raise failure
        await board.start()
        sandbox.request_url = board.url
        yield bots, board
        for bot in bots:
            assert await asyncio.to_thread(bot.terminate, 25.0) == 0
    finally:
        sandbox.request_url = None
        await board.stop()
        for bot in bots:
            bot.kill()


async def post_event(session: aiohttp.ClientSession, url: str, envelope: dict[str, Any], retry_num: int) -> int:
    """Deliver an event envelope to one replica as Slack does, signed; with `retry_num`, as Slack's retry."""
    body = json.dumps(envelope, separators=(",", ":"))
    headers = signed_headers(SIGNING_SECRET, body, "application/json")
    if retry_num:
        headers |= {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"}
    async with session.post(url, data=body.encode(), headers=headers) as response:
        return response.status


async def post_everywhere(
    sandbox: Any, slack: Any, bots: list[BotProcess], user: str, text: str, thread_ts: str | None = None
) -> tuple[str, list[str], list[int]]:
    """`user` posts `text`; every event Slack makes of it reaches every replica at once, first try and retry
    alike. Returns the message ts, its event ids and the replicas' HTTP answers."""
    balancer = sandbox.request_url
    sandbox.request_url = None  # Slack's own first attempt goes nowhere: the test delivers it, to both replicas.
    try:
        ts = await slack.post(user, GENERAL, text, thread_ts=thread_ts)
        await slack.idle()
    finally:
        sandbox.request_url = balancer
    ids = [d["event_id"] for d in await slack.deliveries() if d["kind"] == "event" and d["ts"] == ts]
    envelopes = [sandbox.deliverer.sent[i] for i in dict.fromkeys(ids)]
    async with aiohttp.ClientSession() as session:
        statuses = await asyncio.gather(
            *(
                post_event(session, bot.events_url, envelope, retry_num)
                for envelope in envelopes
                for bot in bots
                for retry_num in (0, 1)
            )
        )
    return ts, list(dict.fromkeys(ids)), list(statuses)


# ---- reading the records -------------------------------------------------------------------------------------


async def query(database_url: str, sql: str, *params: Any) -> list[dict[str, Any]]:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        cur = await conn.execute(sql, params)
        return list(await cur.fetchall())


async def requests_of(database_url: str, root: str) -> list[dict[str, Any]]:
    """The interrupt records of the conversation started at `root`."""
    return await query(
        database_url,
        "SELECT i.* FROM lgslack_interrupts i JOIN lgslack_conversations c ON c.id = i.conversation_id"
        " WHERE c.thread_ts = %s ORDER BY i.created_at",
        root,
    )


async def runs_of(database_url: str, root: str) -> list[tuple[str, str]]:
    """(kind, state) of every run of the conversation started at `root`, in order."""
    rows = await query(
        database_url,
        "SELECT r.kind, r.state FROM lgslack_runs r JOIN lgslack_conversations c ON c.id = r.conversation_id"
        " WHERE c.thread_ts = %s ORDER BY r.created_at",
        root,
    )
    return [(r["kind"], r["state"]) for r in rows]


async def bot_messages(slack: Any, root: str) -> list[Message]:
    return [m for m in await thread(slack, GENERAL, root) if from_bot(m)]


def repeated(messages: list[Message]) -> list[str]:
    """Texts the bot showed more than once."""
    return [text for text, n in Counter(visible_text(m) for m in messages).items() if n > 1]


# ---- A: two replicas ----------------------------------------------------------------------------------------


async def test_one_message_delivered_to_both_replicas_at_once_is_one_turn(
    harness: Harness, sandbox: Any, slack: Any
) -> None:
    """A mention (app_mention + message) and then the answering reply each reach both replicas at the same moment,
    twice (first try and Slack's retry), and once more through Slack's own retry: one turn, one decision."""
    async with two_replicas(harness, sandbox, FEEDBACK) as (bots, _):
        root, ids, statuses = await post_everywhere(sandbox, slack, bots, "U0ALICE", "<@U0BOT> foo")
        assert len(ids) == 2 and statuses == [200] * 8
        assert (await slack.redeliver(ids[-1]))["status"] == 200
        await wait_for_message(slack, GENERAL, root, containing(f"{QUESTION}: foo bar"))

        reply, ids, statuses = await post_everywhere(sandbox, slack, bots, "U0BOB", "baz", thread_ts=root)
        assert len(ids) == 1 and statuses == [200] * 4
        assert (await slack.redeliver(ids[0]))["status"] == 200
        await wait_for_message(slack, GENERAL, root, containing("foo bar baz qux"))
        await wait_drained(harness.database_url, slack)

        said = await bot_messages(slack, root)
        assert sum(QUESTION in visible_text(m) for m in said) == 1
        assert [m["text"] for m in said if "qux" in m["text"]] == ["foo bar baz qux"]
        assert not repeated(said)
        inbound = await query(harness.database_url, "SELECT ts, status FROM lgslack_inbound ORDER BY ts")
        assert inbound == [{"ts": root, "status": "done"}, {"ts": reply, "status": "done"}]
        assert await runs_of(harness.database_url, root) == [("turn", "ran"), ("resume", "ran")]
        (request,) = await requests_of(harness.database_url, root)
        assert (request["state"], request["decided_by"]) == ("decided", "U0BOB") and request["resumed_at"]


ROUNDS: list[list[tuple[str, ...]]] = [
    [("U0ALICE", "U0BOB", "U0CAROL")],
    [("U0CAROL", "U0ALICE", "U0BOB")],
    [("U0BOB", "U0CAROL", "U0ALICE")],
    [("U0CAROL", "U0BOB", "U0ALICE")],
    [("U0ALICE", "U0CAROL", "U0BOB")],
    [("U0CAROL",), ("U0BOB", "U0ALICE")],
]
"""Who acts when: a wave acts at once, in that order; the next wave starts once its answers have landed (a modal
answered by its replica, a reply recorded by one). The last round gives Carol's reply a head start."""


def told_loser(winner: str, text: str) -> bool:
    """The notice a reply that lost gets: the question was answered in between, or while the reply was read."""
    return f"That question was just answered by <@{winner}>" in text or f"Already answered by <@{winner}>" in text


class Race:
    """Alice and Bob with the question's modal open (each pinned to a replica), Carol about to reply."""

    def __init__(self, slack: Any, database_url: str, root: str, n: int) -> None:
        self.slack, self.database_url, self.root = slack, database_url, root
        self.answers = {person: f"{person[2:].lower()}{n}" for person in ("U0ALICE", "U0BOB", "U0CAROL")}

    async def open_modals(self, question: Message) -> None:
        for person in ("U0ALICE", "U0BOB"):
            await self.slack.click(person, GENERAL, question["ts"], ANSWER_BUTTON)
            await self.slack.wait_for(lambda person=person: self.slack.views(person))

    async def act(self, person: str) -> dict[str, Any]:
        """Submit the modal (the sandbox's answer: ok, errors), or reply in the thread and wait until a replica
        has recorded the reply (its ts)."""
        if person != "U0CAROL":
            return dict(await self.slack.submit(person, typed_answer(self.answers[person])))
        ts = await self.slack.post(person, GENERAL, self.answers[person], thread_ts=self.root)
        await self.slack.wait_for(lambda: query(self.database_url, "SELECT 1 FROM lgslack_inbound WHERE ts = %s", ts))
        return {"ts": ts}

    async def run(self, waves: list[tuple[str, ...]]) -> dict[str, dict[str, Any]]:
        outcomes: dict[str, dict[str, Any]] = {}
        for wave in waves:
            outcomes |= dict(zip(wave, await asyncio.gather(*(self.act(p) for p in wave)), strict=True))
        return outcomes


async def test_answers_racing_on_two_replicas_and_in_the_thread_decide_once(
    harness: Harness, sandbox: Any, slack: Any
) -> None:
    """Alice submits the question's modal on one replica, Bob on the other, Carol replies in the thread, at the
    same moment, in six orders: one answer wins, the graph resumes once with it, the losers are told, and Carol's
    reply, which reached the bot before the graph resumed, is never taken as new input.

    (A reply that reaches the bot only after the graph has resumed is a new message by design; such a round is
    shown and not counted. Each round records when the reply arrived and when the graph resumed.)"""
    db = harness.database_url
    winners: list[str] = []
    late: list[int] = []
    async with two_replicas(harness, sandbox, FEEDBACK) as (_, board):
        for n, waves in enumerate(ROUNDS):
            board.pinned = {"U0ALICE": n % 2, "U0BOB": 1 - n % 2}
            root = await slack.post(("U0ALICE", "U0BOB", "U0CAROL")[n % 3], GENERAL, f"<@U0BOT> round{n}")
            question = await wait_for_message(slack, GENERAL, root, containing(f"{QUESTION}: round{n} bar"))
            race = Race(slack, db, root, n)
            await race.open_modals(question)
            outcomes = await race.run(waves)
            await wait_for_message(slack, GENERAL, root, containing(" qux"))
            await wait_drained(db, slack)

            request, *others = await requests_of(db, root)
            winner = request["decided_by"]
            winners.append(winner)
            said = await bot_messages(slack, root)
            shown = [visible_text(m) for m in said]
            assert request["state"] == "decided" and request["resumed_at"], request
            results = [m["text"] for m in said if m["text"].startswith(f"round{n} bar") and "qux" in m["text"]]
            assert results == [f"round{n} bar {race.answers[winner]} qux"], shown
            for person in ("U0ALICE", "U0BOB"):
                errors = outcomes[person].get("errors") or {}
                if person == winner:
                    assert not errors and outcomes[person]["ok"], outcomes[person]
                else:
                    assert any("answered this first" in e for e in errors.values()), outcomes[person]

            (reply,) = await query(
                db, "SELECT received_at FROM lgslack_inbound WHERE ts = %s", outcomes["U0CAROL"]["ts"]
            )
            if reply["received_at"] > request["resumed_at"]:
                late.append(n)
                print(f"round {n}: Carol's reply reached the bot after the graph resumed: {shown}")
                continue
            assert not others, f"round {n} {waves}: Carol's reply, there before the resume, became new input: {shown}"
            assert sum(QUESTION in text for text in shown) == 1, shown
            assert not repeated(said), shown
            assert await runs_of(db, root) == [("turn", "ran"), ("resume", "ran")]
            if winner != "U0CAROL":
                assert sum(told_loser(winner, text) for text in shown) == 1, shown
        assert set(board.served) == {0, 1}
    print(f"winners by round: {winners}; late replies in rounds {late}")
    # The last round's reply has a head start, so it always races; of the five where all three act at once, a modal
    # often lands first, and a resume the intake runs itself begins in the decision's own transaction, before a reply
    # sent at the same moment is recorded: how many of those race depends on the machine's scheduling. At least one
    # of them must, besides the last.
    assert len(ROUNDS) - len(late) >= 2, "too few rounds were a race: the replies came after the graph had resumed"


async def test_a_reply_that_raced_a_decision_is_not_new_input_when_its_turn_comes_after_the_resume(
    harness: Harness, sandbox: Any, slack: Any
) -> None:
    """Alice answers the question with its modal and Carol replies a moment later, while the bot's workers are
    still busy with the conversation (Slack is slow to confirm the question), so the resume is queued before
    Carol's turn and runs first. Carol's reply reached the bot before the graph resumed: it must be told the
    question was answered, not run as a new request."""
    async with two_replicas(harness, sandbox, FEEDBACK, SLACK_TIMEOUT="10") as (_, board):
        board.pinned = {"U0ALICE": 0}
        # The question is stored at once, but the worker that posted it waits 4 s for Slack's answer, holding the
        # conversation: the jobs of what follows queue up behind it, in the order they came.
        await slack.fault("chat.postMessage", "timeout_after_store", delay=4)
        root = await slack.post("U0BOB", GENERAL, "<@U0BOT> foo")
        question = await wait_for_message(slack, GENERAL, root, containing(f"{QUESTION}: foo bar"))
        race = Race(slack, harness.database_url, root, 0)
        await slack.click("U0ALICE", GENERAL, question["ts"], ANSWER_BUTTON)
        await slack.wait_for(lambda: slack.views("U0ALICE"))
        outcomes = await race.run([("U0ALICE",), ("U0CAROL",)])
        assert outcomes["U0ALICE"]["ok"] and not outcomes["U0ALICE"]["errors"], outcomes
        await wait_for_message(slack, GENERAL, root, containing("foo bar alice0 qux"), timeout=30)
        await wait_drained(harness.database_url, slack)

        shown = [visible_text(m) for m in await bot_messages(slack, root)]
        (request, *others) = await requests_of(harness.database_url, root)
        (reply,) = await query(
            harness.database_url, "SELECT received_at FROM lgslack_inbound WHERE ts = %s", outcomes["U0CAROL"]["ts"]
        )
        assert reply["received_at"] < request["resumed_at"]
        assert not others, f"Carol's reply became new input: {shown}"
        assert sum(told_loser("U0ALICE", text) for text in shown) == 1, shown
        assert await runs_of(harness.database_url, root) == [("turn", "ran"), ("resume", "ran")]


async def test_an_approval_clicked_on_two_replicas_at_once_is_audited_and_applied_once(
    harness: Harness, sandbox: Any, slack: Any, openai: Any
) -> None:
    """Bob approves on one replica while Carol approves on the other (both see the live button): one audit row for
    the winner, one resume (the model hears the tool's result once), the loser is told who decided."""
    async with two_replicas(harness, sandbox, APPROVALS) as (_, board):
        for n, (first, second) in enumerate([("U0BOB", "U0CAROL"), ("U0CAROL", "U0BOB")]):
            openai.clear()
            openai.reply(Reply(tool_calls=[ToolCall("send_email", EMAIL)]), Reply(content=f"Done {n}."))
            board.pinned = {first: 0, second: 1}
            root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> email bob about lunch")
            request = await wait_for_message(slack, GENERAL, root, containing("The agent asks for approval"))
            approve = next(b for b in buttons(request) if b["action_id"] == "lgslack.act:approve:0")
            clicks = await asyncio.gather(
                *(sandbox.deliver_click(person, GENERAL, request, approve) for person in (first, second))
            )
            assert all(click["ok"] for click in clicks), clicks
            await wait_for_message(slack, GENERAL, root, containing(f"Done {n}."))
            await wait_drained(harness.database_url, slack)

            (record,) = await requests_of(harness.database_url, root)
            winner = record["decided_by"]
            loser = second if winner == first else first
            audit = await query(
                harness.database_url,
                "SELECT user_id, decision FROM lgslack_decisions WHERE record_id = %s",
                record["id"],
            )
            assert audit == [{"user_id": winner, "decision": "approve"}]
            assert record["state"] == "decided" and record["resumed_at"]
            assert await runs_of(harness.database_url, root) == [("turn", "ran"), ("resume", "ran")]
            assert len(openai.requests) == 2
            (result,) = openai.requests[1].tool_messages
            assert result["content"].startswith("Email sent to bob@example.com")
            said = await bot_messages(slack, root)
            assert sum(f"Done {n}." in visible_text(m) for m in said) == 1 and not repeated(said)
            decided = next(m for m in said if m["ts"] == request["ts"])
            assert not buttons(decided) and f"<@{winner}>" in visible_text(decided)
            notes = await slack.wait_for(lambda loser=loser: slack.ephemerals(GENERAL, loser))
            assert f"Already answered by <@{winner}>" in visible_text(notes[-1])


# ---- B: Slack misbehaving at random --------------------------------------------------------------------------


@dataclass
class Talk:
    """One conversation: a mention, the question, an answer by thread reply or by the question's modal."""

    n: int
    user: str
    by_modal: bool
    root: str = ""

    @property
    def result(self) -> str:
        return f"talk{self.n} bar answer{self.n} qux"


async def open_modal(slack: Any, user: str, ts: str) -> None:
    """Click Answer until the modal shows: Slack may have refused to open it (the click itself is not faulted)."""
    for _ in range(10):
        await slack.click(user, GENERAL, ts, ANSWER_BUTTON)
        with suppress(WaitTimeout):
            # A modal opens within the trigger's 3 s or never.
            await slack.wait_for(lambda: slack.views(user), timeout=6)
            return
    raise AssertionError(f"the modal never opened for {user}")


async def converse(slack: Any, talk: Talk, modal_locks: dict[str, asyncio.Lock]) -> None:
    talk.root = await slack.post(talk.user, GENERAL, f"<@U0BOT> talk{talk.n}")
    question = await wait_for_message(
        slack, GENERAL, talk.root, containing(f"{QUESTION}: talk{talk.n} bar"), timeout=SLOW
    )
    answer = f"answer{talk.n}"
    if talk.by_modal:
        async with modal_locks[talk.user]:  # one modal at a time per person
            await open_modal(slack, talk.user, question["ts"])
            outcome = await slack.submit(talk.user, typed_answer(answer))
            assert outcome["ok"] and not outcome.get("errors"), outcome
    else:
        await slack.post(talk.user, GENERAL, answer, thread_ts=talk.root)
    await wait_for_message(slack, GENERAL, talk.root, containing(talk.result), timeout=SLOW)


async def run_talks(slack: Any, count: int, *, at_once: int) -> list[Talk]:
    people = ["U0ALICE", "U0BOB", "U0CAROL"]
    talks = [Talk(n, people[n % 3], by_modal=n % 2 == 1) for n in range(count)]
    gate = asyncio.Semaphore(at_once)
    locks = {person: asyncio.Lock() for person in people}

    async def one(talk: Talk) -> None:
        async with gate:
            await converse(slack, talk, locks)

    await asyncio.gather(*(one(talk) for talk in talks))
    return talks


async def settled_problems(database_url: str, slack: Any, talks: list[Talk]) -> list[str]:
    """Everything that is not as it should be once the bot is drained, as readable lines."""
    problems: list[str] = []
    everything: list[Message] = []
    for talk in talks:
        said = await bot_messages(slack, talk.root)
        everything += said
        shown = [visible_text(m) for m in said]
        questions = [m for m in said if QUESTION in visible_text(m)]
        if len(questions) != 1:
            problems.append(f"talk{talk.n}: the question shows {len(questions)} times: {shown}")
        finals = [m["text"] for m in said if "qux" in m["text"]]
        if finals != [talk.result]:
            problems.append(f"talk{talk.n}: results {finals}")
        if repeated(said):
            problems.append(f"talk{talk.n}: shown twice: {repeated(said)}")
        if any(buttons(q) for q in questions):
            problems.append(f"talk{talk.n}: the answered question still has its buttons: {shown}")
        runs = await runs_of(database_url, talk.root)
        if runs != [("turn", "ran"), ("resume", "ran")]:
            problems.append(f"talk{talk.n}: runs {runs}")
    top = [m for m in await slack.history(GENERAL) if from_bot(m)]
    if top:
        problems.append(f"bot messages outside the threads: {[visible_text(m) for m in top]}")

    unsettled = await query(
        database_url,
        "SELECT id, state, decided_by, resumed_at FROM lgslack_interrupts"
        " WHERE state <> 'decided' OR resumed_at IS NULL",
    )
    problems += [f"request not decided and resumed: {r}" for r in unsettled]
    count = await query(database_url, "SELECT count(*) AS n FROM lgslack_interrupts")
    if count[0]["n"] != len(talks):
        problems.append(f"{count[0]['n']} requests for {len(talks)} conversations")
    outbox = await query(
        database_url, "SELECT key, state, error, attempts FROM lgslack_outbox WHERE state <> 'sent' ORDER BY seq"
    )
    problems += [f"outbox row not sent: {r}" for r in outbox]
    inbound = await query(database_url, "SELECT ts, status FROM lgslack_inbound WHERE status <> 'done'")
    problems += [f"message not done: {r}" for r in inbound]

    stored = [c for c in await slack.calls("chat.postMessage") if c["response"].get("ok")]
    if len(stored) != len(everything):
        problems.append(f"Slack stored {len(stored)} chat.postMessage calls but shows {len(everything)} bot messages")
    keys = Counter(((c["params"].get("metadata") or {}).get("event_payload") or {}).get("key") for c in stored)
    problems += [f"posted {n} times: {key}" for key, n in keys.items() if n > 1]
    return problems


async def fault_tally(slack: Any) -> Counter[str]:
    return Counter(f"{c['method']} {c['fault']}" for c in await slack.calls() if c["fault"])


async def test_dozens_of_conversations_with_a_fifth_of_slack_calls_failing(harness: Harness, slack: Any) -> None:
    """20 % of the bot's Web API calls fail at random, every kind of fault: each conversation still shows its
    question once and its result once, every request is decided and resumed once, and the outbox is empty."""
    environ = harness.environ(FEEDBACK, SLACK_TIMEOUT="1", BOT_WORKERS="4", **FAST)
    await harness.start(FEEDBACK, environ=environ)
    await slack.chaos(0.2, seed=20240607, kinds=ALL_FAULTS, delay=3, retry_after=1)
    try:
        talks = await run_talks(slack, 30, at_once=6)
    finally:
        await slack.clear_faults()
    await wait_drained(harness.database_url, slack, timeout=120)

    tally = await fault_tally(slack)
    print(f"faults: {sorted(tally.items())}")
    assert sum(n for kind, n in tally.items() if kind.startswith("chat.postMessage")) > 0
    problems = await settled_problems(harness.database_url, slack, talks)
    assert not problems, "\n".join(problems)


async def test_a_question_answered_before_slack_confirmed_its_post_shows_the_answer(
    harness: Harness, slack: Any
) -> None:
    """Slack stores the question but its answer to the bot never comes; Alice, who sees the question, answers it
    with the modal before the bot has found out where it was posted. Once the bot is drained the question shows
    who answered, with no live button left."""
    environ = harness.environ(FEEDBACK, SLACK_TIMEOUT="1", **FAST)
    await harness.start(FEEDBACK, environ=environ)
    await slack.fault("chat.postMessage", "timeout_after_store", delay=3)
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> foo")
    question = await wait_for_message(slack, GENERAL, root, containing(f"{QUESTION}: foo bar"))
    await open_modal(slack, "U0ALICE", question["ts"])
    assert (await slack.submit("U0ALICE", typed_answer("baz")))["errors"] == {}
    await wait_for_message(slack, GENERAL, root, containing("foo bar baz qux"), timeout=30)
    await wait_drained(harness.database_url, slack)

    (request,) = await requests_of(harness.database_url, root)
    assert request["message_ts"] == question["ts"]
    shown = next(m for m in await bot_messages(slack, root) if m["ts"] == question["ts"])
    assert not buttons(shown), f"the question still offers its Answer button: {visible_text(shown)}"
    assert "Answered by <@U0ALICE>" in visible_text(shown)


async def test_posts_and_updates_stored_but_unanswered(harness: Harness, slack: Any) -> None:
    """The nastiest faults only: Slack stores the post or the update, then times out or resets the connection.
    The bot must find what it posted instead of posting it again."""
    environ = harness.environ(FEEDBACK, SLACK_TIMEOUT="1", BOT_WORKERS="4", **FAST)
    await harness.start(FEEDBACK, environ=environ)
    await slack.chaos(
        0.3,
        seed=7,
        methods=["chat.postMessage", "chat.update"],
        kinds=["timeout_after_store", "reset_after_store"],
        delay=3,
    )
    try:
        talks = await run_talks(slack, 20, at_once=6)
    finally:
        await slack.clear_faults()
    await wait_drained(harness.database_url, slack, timeout=120)

    tally = await fault_tally(slack)
    print(f"faults: {sorted(tally.items())}")
    assert sum(tally.values()) > 0
    problems = await settled_problems(harness.database_url, slack, talks)
    assert not problems, "\n".join(problems)
