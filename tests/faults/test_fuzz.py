"""Fuzzing the front door: a forged or malformed request gets a 4xx or a logged no-op, never a 5xx, and loses
nothing.

The real bot listens on a free port; requests are posted to its `/slack/events` with aiohttp, not through the
sandbox's delivery. Hypothesis draws them from valid Slack shapes (event envelopes, `block_actions`,
`view_submission`) and breaks them. It runs in a worker thread and hands each request to the test's event loop,
so a failing request is shrunk to a small one. The bot's logs are watched too: an error it logs at ERROR, even
after the ack, is a bug.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
import psycopg
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from bot.dev.sandbox.delivery import interaction_body, sign
from bot.interrupts.base import ANSWER_BLOCK
from tests.support.drain import wait_drained
from tests.support.harness import SIGNING_SECRET, Harness
from tests.support.slack import ANSWER_BUTTON, GENERAL, Message, containing, thread, visible_text, wait_for_message

pytestmark = [
    pytest.mark.faults,
    # Hypothesis warns when the global `random` module is used while it draws; here the bot uses it concurrently,
    # on the event loop's thread (pool and retry jitter), which has nothing to do with the strategies.
    pytest.mark.filterwarnings("ignore:Do not use the `random` module:hypothesis.errors.HypothesisDeprecationWarning"),
]

GRAPH = "graphs.feedback_workflow:graph"
TEAM = "T0SANDBOX"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
WATCHED = ("bot", "slack_bolt", "aiohttp")


def fuzz_settings(examples: int) -> settings:
    """Bounded and the same on every run: no example database, no explain phase."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.large_base_example,
        ],
        report_multiple_bugs=False,
    )


# ---- requests -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signing:
    """How a request is signed; applied when it is sent, so "now" is the moment it leaves."""

    secret: str | None = SIGNING_SECRET
    skew: int = 0
    timestamp: str | None = None
    signature: str | None = None
    send_timestamp: bool = True
    send_signature: bool = True

    def headers(self, body: bytes) -> dict[str, str]:
        stamp = self.timestamp if self.timestamp is not None else str(int(time.time()) + self.skew)
        headers: dict[str, str] = {}
        if self.send_timestamp:
            headers["X-Slack-Request-Timestamp"] = stamp
        if self.send_signature:
            if self.signature is not None:
                headers["X-Slack-Signature"] = self.signature
            elif self.secret is not None:
                headers["X-Slack-Signature"] = sign(self.secret, stamp, body)
        return headers


SIGNED = Signing()


@dataclass(frozen=True)
class Attempt:
    """One request to the front door."""

    body: bytes
    content_type: str | None = JSON
    signing: Signing = SIGNED

    def headers(self) -> dict[str, str]:
        headers = self.signing.headers(self.body)
        if self.content_type is not None:
            headers["Content-Type"] = self.content_type
        return headers


def as_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def event_attempt(envelope: Any) -> Attempt:
    return Attempt(as_json(envelope), JSON)


def interaction_attempt(payload: Any) -> Attempt:
    return Attempt(interaction_body(payload).encode(), FORM)


@dataclass
class Front:
    """The bot's `/slack/events`, posted to from the test's event loop or from Hypothesis's thread."""

    url: str
    loop: asyncio.AbstractEventLoop
    session: aiohttp.ClientSession

    async def post(self, attempt: Attempt) -> tuple[int, str]:
        async with self.session.post(self.url, data=attempt.body, headers=attempt.headers()) as response:
            return response.status, await response.text(errors="replace")

    def check(self, attempt: Attempt, allowed: Callable[[int], bool]) -> None:
        """From Hypothesis's thread: post through the test's loop and check the status. (A listener that fails
        answers 500; what the bot logs later, after the ack, is checked once the bot has drained.)"""
        status, body = asyncio.run_coroutine_threadsafe(self.post(attempt), self.loop).result(timeout=60)
        assert allowed(status), f"status {status} ({body[:200]!r}) for {attempt!r}"


def describe(exc: BaseException) -> str:
    """An error with the errors inside it (Hypothesis groups a flaky failure's)."""
    inner = getattr(exc, "exceptions", ())
    return f"{type(exc).__name__}: {exc}" + "".join(f"\n  - {describe(e)}" for e in inner)


def logged_errors(caplog: pytest.LogCaptureFixture, since: int = 0) -> list[str]:
    """What the bot, Bolt and aiohttp logged at ERROR, with the exception."""
    return [
        f"{r.name}: {r.getMessage()}" + (f" ({describe(r.exc_info[1])})" if r.exc_info and r.exc_info[1] else "")
        for r in caplog.records[since:]
        if r.levelno >= logging.ERROR and r.name.split(".")[0] in WATCHED
    ]


def below_500(status: int) -> bool:
    return status < 500


def refused(status: int) -> bool:
    return status in (400, 401)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield session


def watch(caplog: pytest.LogCaptureFixture) -> None:
    for name in WATCHED:
        caplog.set_level(logging.WARNING, logger=name)


# ---- the database -------------------------------------------------------------------------------------------


async def scalar(database_url: str, sql: str, *args: Any) -> Any:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        cur = await conn.execute(sql, args or None)
        row = await cur.fetchone()
    return row[0] if row else None


async def recorded(database_url: str) -> dict[str, int]:
    """What a request may have left behind."""
    return {
        "conversations": await scalar(database_url, "SELECT count(*) FROM lgslack_conversations"),
        "inbound": await scalar(database_url, "SELECT count(*) FROM lgslack_inbound"),
        "interrupts": await scalar(database_url, "SELECT count(*) FROM lgslack_interrupts"),
        "decisions": await scalar(database_url, "SELECT count(*) FROM lgslack_decisions"),
        "outbox": await scalar(database_url, "SELECT count(*) FROM lgslack_outbox"),
        "jobs": await scalar(
            database_url, "SELECT count(*) FROM procrastinate_jobs WHERE task_name <> 'lgslack.reconcile'"
        ),
    }


NOTHING = dict.fromkeys(("conversations", "inbound", "interrupts", "decisions", "outbox", "jobs"), 0)


@dataclass(frozen=True)
class Question:
    """The pending question the fuzzing must not disturb."""

    root: str
    ts: str
    record_id: str


async def start_conversation(slack: Any) -> tuple[str, Message]:
    """Alice asks the feedback graph "foo" through the sandbox; the root ts and the question."""
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> foo")
    return root, await wait_for_message(slack, GENERAL, root, containing("Please provide feedback: foo bar"))


async def ask(harness: Harness, slack: Any) -> Question:
    root, question = await start_conversation(slack)
    record_id = await scalar(
        harness.database_url, "SELECT id::text FROM lgslack_interrupts WHERE message_ts = %s", question["ts"]
    )
    requester = await scalar(harness.database_url, "SELECT requested_by FROM lgslack_interrupts")
    # Forged clicks use other people: the asker's own Cancel on the question's message would rightly decide it.
    assert requester == "U0ALICE"
    return Question(root=root, ts=str(question["ts"]), record_id=str(record_id))


async def answer_in_thread(slack: Any, database_url: str, root: str, text: str = "baz") -> None:
    """Reply in the thread and check the graph finished exactly once with that answer."""
    await slack.post("U0ALICE", GENERAL, text, thread_ts=root)
    await wait_for_message(slack, GENERAL, root, containing(f"foo bar {text} qux"))
    await wait_drained(database_url, slack)
    results = [m for m in await thread(slack, GENERAL, root) if "qux" in visible_text(m)]
    assert [m["text"] for m in results] == [f"foo bar {text} qux"]


# ---- strategies ---------------------------------------------------------------------------------------------

SPECIALS = (
    "\x00",
    "\u202e",
    "\u200b",
    "\ufeff",
    "\ud800",
    "\udfff",
    "\U0010ffff",
    "🦜",
    "<@U0BOT>",
    "<!channel>",
    "&lt;&amp;",
    "```",
    "\r\n",
    "%",
    "|",
    "\\",
)
weird_text: SearchStrategy[str] = st.lists(st.one_of(st.text(max_size=6), st.sampled_from(SPECIALS)), max_size=8).map(
    "".join
)
huge_text: SearchStrategy[str] = st.builds(
    lambda piece, n: (piece or "x") * n, st.sampled_from(["x", "é🦜", "\x00", "<@U0BOT> "]), st.integers(5_000, 60_000)
)
scalars: SearchStrategy[Any] = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10), st.sampled_from(SPECIALS)
)
garbage: SearchStrategy[Any] = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
# Ids and timestamps that look almost right.
bad_ids = st.sampled_from(
    ["", "u0alice", "U0ALICE\n", " U0ALICE", "U0AL ICE", "U" * 41, "Ü0ALICE", "U0ALICE\x00", "C0GENERAL\n"]
)
bad_ts = st.sampled_from(
    ["", "1", "1.", ".1", "abc", "1.2.3", "-1.5", "1e9", "1712345678.000100\n", "١٧١٢٣٤٥٦٧٨.٠٠٠١", "9" * 13 + ".1"]
)
ok_ts = st.builds(lambda s, us: f"{s}.{us:06d}", st.integers(1_000_000_000, 1_999_999_999), st.integers(0, 999_999))
uuids = st.uuids().map(str)


def header_text() -> SearchStrategy[str]:
    return st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=80)


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any], keys: dict[str, SearchStrategy[Any]]) -> dict[str, Any]:
    """`base` with up to four of its fields dropped or replaced (by their own bad values, or by garbage)."""
    result = copy.deepcopy(base)
    for _ in range(draw(st.integers(0, 4))):
        key = draw(st.sampled_from(sorted(keys)))
        if draw(st.booleans()):
            result.pop(key, None)
        else:
            result[key] = draw(keys[key] | garbage)
    return result


def envelope(event: Any, *, team: Any = TEAM) -> dict[str, Any]:
    return {
        "token": "sandbox-verification",
        "team_id": team,
        "api_app_id": "A0SANDBOX",
        "event": event,
        "type": "event_callback",
        "event_id": "Ev0FUZZ",
        "event_time": 1_700_000_000,
        "authorizations": [{"team_id": team, "user_id": "U0BOT", "is_bot": True, "is_enterprise_install": False}],
    }


def message_events(question: Question) -> SearchStrategy[Attempt]:
    """`message` / `app_mention` envelopes, mostly broken. The question's thread is never replied in (a real reply
    there would answer it); the root's own ts comes back as Slack's retry of the first message would."""

    @st.composite
    def build(draw: st.DrawFn) -> Attempt:
        kind = draw(st.sampled_from(["message", "app_mention"]))
        ts = draw(ok_ts | st.just(question.root))
        event = {
            "type": kind,
            "user": draw(st.sampled_from(["U0ALICE", "U0BOB"])),
            "channel": draw(st.sampled_from([GENERAL, "C0NOWHERE"])),
            "ts": ts,
            "event_ts": ts,
            "text": draw(st.sampled_from(["<@U0BOT> hello", "hello"])),
            "channel_type": draw(st.sampled_from(["channel", "im", "group"])),
            "team": TEAM,
        }
        event = draw(
            mutated(
                event,
                {
                    "type": st.sampled_from(["message", "app_mention", "reaction_added", ""]),
                    "user": bad_ids,
                    "channel": bad_ids,
                    "ts": bad_ts,
                    "text": st.one_of(weird_text, huge_text, weird_text.map(lambda s: f"<@U0BOT> {s}")),
                    "subtype": st.sampled_from(
                        ["bot_message", "message_changed", "file_share", "thread_broadcast", "channel_join"]
                    )
                    | weird_text,
                    "thread_ts": st.one_of(bad_ts, ok_ts.filter(lambda t: t != question.root)),
                    "bot_id": st.sampled_from(["B0BOT", ""]),
                    "channel_type": weird_text,
                    "team": bad_ids,
                },
            )
        )
        if draw(st.integers(0, 9)) == 0:
            event = draw(garbage)
        outer = draw(
            mutated(
                envelope(event),
                {
                    "type": st.sampled_from(["event_callback", "url_verification", "app_rate_limited"]),
                    "team_id": bad_ids,
                    "authorizations": st.lists(garbage, max_size=2),
                    "event_id": garbage,
                },
            )
        )
        return event_attempt(outer)

    return build()


def interaction_user() -> SearchStrategy[Any]:
    people = st.sampled_from(["U0BOB", "U0CAROL"]).map(lambda u: {"id": u, "name": u.lower(), "team_id": TEAM})
    broken = st.one_of(garbage, bad_ids.map(lambda u: {"id": u}), st.just({"name": "bob"}), st.just("U0BOB"))
    return people | broken


def action_values(question: Question) -> SearchStrategy[Any]:
    """Garbage, values that are not a uuid, unknown records, and the real record with a wrong action."""
    record = st.one_of(st.just(question.record_id), uuids, weird_text, st.just(question.record_id.upper()))
    action = st.one_of(st.sampled_from(["answer", "cancel", "approve", "", "answer|x"]), weird_text)
    return st.one_of(st.builds(lambda r, a: f"{r}|{a}", record, action), garbage, st.just(question.record_id))


def clicks(question: Question) -> SearchStrategy[Attempt]:
    """`block_actions` payloads, form-encoded as Slack sends them, mostly broken."""

    @st.composite
    def build(draw: st.DrawFn) -> Attempt:
        action = {
            "type": "button",
            "block_id": "lgslack_actions",
            "action_id": ANSWER_BUTTON,
            "value": f"{question.record_id}|answer",
            "action_ts": "1700000000.000001",
        }
        action = draw(
            mutated(
                action,
                {
                    "action_id": st.sampled_from(["lgslack.act:", "lgslack.act:nope", "lgslack.retry", "other"])
                    | weird_text.map(lambda s: f"lgslack.act:{s}"),
                    "value": action_values(question),
                    "block_id": garbage,
                },
            )
        )
        if action.get("action_id") == "lgslack.retry":
            action["value"] = draw(st.one_of(weird_text, st.just("turn:T0:C0:1.1"), st.just("resume:x")))
        payload = {
            "type": "block_actions",
            "user": draw(interaction_user()),
            "api_app_id": "A0SANDBOX",
            "token": "sandbox-verification",
            "team": {"id": TEAM, "domain": "sandbox"},
            "container": {"type": "message", "message_ts": question.ts, "channel_id": GENERAL},
            "channel": {"id": GENERAL, "name": "general"},
            "message": {"type": "message", "ts": question.ts, "text": "", "blocks": []},
            "trigger_id": "1.2.fuzz",
            "response_url": "http://127.0.0.1:9/nowhere",
            "state": {"values": {}},
            "actions": [action],
        }
        payload = draw(
            mutated(
                payload,
                {
                    "actions": st.one_of(
                        st.just([]), st.lists(garbage, max_size=2), st.just([action, action]), st.just([None])
                    ),
                    "user": interaction_user(),
                    "container": st.one_of(
                        garbage,
                        st.fixed_dictionaries({"channel_id": bad_ids | st.just(GENERAL), "message_ts": bad_ts | ok_ts}),
                    ),
                    "channel": garbage,
                    "message": garbage,
                    "trigger_id": garbage,
                    "team": garbage,
                    "type": st.sampled_from(["block_actions", "interactive_message", "shortcut", ""]),
                },
            )
        )
        return interaction_attempt(payload)

    return build()


def would_answer(values: Any) -> bool:
    """Whether a submission would be a real answer to the question (the fuzzing must never decide it)."""
    if not isinstance(values, dict):
        return False
    element = values.get(ANSWER_BLOCK)
    if not isinstance(element, dict) or not element:
        return False
    first = next(iter(element.values()))
    return isinstance(first, dict) and bool(str(first.get("value") or "").strip())


def state_values() -> SearchStrategy[Any]:
    """`state.values` that are garbage, or shaped like the answer field but not an answer."""
    not_an_answer = st.one_of(
        garbage,
        st.fixed_dictionaries({"type": st.just("plain_text_input"), "value": st.sampled_from([None, "", "  ", 0])}),
    )
    inner = st.dictionaries(st.sampled_from(["answer", "x"]) | st.text(max_size=4), not_an_answer, max_size=2)
    shaped = st.dictionaries(st.sampled_from([ANSWER_BLOCK, "other"]), inner | garbage, max_size=2)
    return (garbage | shaped).filter(lambda v: not would_answer(v))


def submissions(question: Question) -> SearchStrategy[Attempt]:
    """`view_submission` payloads of the answer modal, mostly broken."""

    @st.composite
    def build(draw: st.DrawFn) -> Attempt:
        record = draw(st.one_of(st.just(question.record_id), uuids, weird_text))
        metadata = draw(
            st.one_of(
                st.just(f"{record}|answer|{GENERAL}|{question.ts}"),
                st.just(f"{record}|answer"),
                st.builds(lambda a, c, t: f"{record}|{a}|{c}|{t}", weird_text, bad_ids, bad_ts),
                weird_text,
                garbage,
            )
        )
        view = {
            "id": "V0FUZZ",
            "type": "modal",
            "callback_id": "lgslack.submit",
            "private_metadata": metadata,
            "state": {"values": draw(state_values())},
            "blocks": [{"type": "input", "block_id": ANSWER_BLOCK, "element": {"type": "plain_text_input"}}],
            "title": {"type": "plain_text", "text": "Answer"},
            "hash": "1.fuzz",
        }
        view = draw(
            mutated(
                view,
                {
                    "state": st.one_of(garbage, state_values().map(lambda v: {"values": v})),
                    "private_metadata": garbage,
                    "blocks": st.one_of(garbage, st.lists(garbage, max_size=3)),
                    "callback_id": st.sampled_from(["other", ""]) | garbage,
                    "type": garbage,
                },
            )
        )
        payload = {
            "type": "view_submission",
            "user": draw(interaction_user()),
            "api_app_id": "A0SANDBOX",
            "token": "sandbox-verification",
            "team": {"id": TEAM, "domain": "sandbox"},
            "trigger_id": "1.2.fuzz",
            "view": view,
            "response_urls": [],
        }
        payload = draw(
            mutated(
                payload,
                {
                    "user": interaction_user(),
                    "view": garbage,
                    "type": st.sampled_from(["view_submission", "view_closed"]),
                    "trigger_id": garbage,
                },
            )
        )
        return interaction_attempt(payload)

    return build()


def odd_bodies() -> SearchStrategy[Attempt]:
    """Signed bodies that are not a Slack request at all: unparsable `payload=`, any JSON, any bytes."""
    content_types = st.sampled_from([JSON, FORM, "text/plain", None, "multipart/form-data", "application/json; x"])
    raw_json = st.builds(as_json, garbage)
    return st.one_of(
        st.builds(
            lambda p: Attempt(("payload=" + p).encode("utf-8", "surrogatepass"), FORM), weird_text | st.just("{")
        ),
        st.builds(lambda v: Attempt(urlencode({"payload": json.dumps(v)}).encode(), FORM), garbage),
        st.builds(Attempt, raw_json, content_types),
        st.builds(Attempt, st.binary(max_size=200), content_types),
        st.builds(lambda b: Attempt(b"\xff\xfe" + b, JSON), st.binary(max_size=50)),
        st.builds(lambda c: Attempt(as_json({"type": "url_verification", "challenge": c}), JSON), garbage | weird_text),
        st.builds(
            lambda q: Attempt(urlencode(q, errors="surrogatepass").encode(), FORM),
            st.dictionaries(weird_text, weird_text, max_size=3),
        ),
    )


def forgeries() -> SearchStrategy[Signing]:
    """Every way a request can fail to be signed by Slack now."""
    now_ish = st.integers(-300, 300)
    return st.one_of(
        st.just(Signing(secret=None, send_timestamp=False, send_signature=False)),
        st.builds(Signing, skew=now_ish, send_timestamp=st.just(False)),
        st.builds(Signing, skew=now_ish, send_signature=st.just(False)),
        st.builds(Signing, skew=st.integers(301, 10**9) | st.integers(-(10**9), -301)),
        st.builds(Signing, secret=st.sampled_from(["", "wrong", SIGNING_SECRET + " "]) | st.text(max_size=20)),
        st.builds(
            Signing,
            signature=st.one_of(
                st.sampled_from(["", "v0=", "v1=" + "0" * 64, "v0=" + "0" * 64, "v0=" + "zz" * 32, "v0=é"]),
                header_text(),
            ),
        ),
        st.builds(
            Signing,
            timestamp=st.one_of(
                st.sampled_from(["", "abc", "1.5", "-1", " ", "1e9", "0x10", "9" * 5000, "١٢٣"]), header_text()
            ),
        ),
    )


def forged_bodies() -> SearchStrategy[bytes]:
    """Anything, including a perfectly valid event or interaction (only its signature is wrong)."""
    placeholder = Question(root="1700000000.000100", ts="1700000000.000200", record_id=str(uuid.UUID(int=1)))
    valid_event = as_json(
        envelope({"type": "app_mention", "user": "U0ALICE", "channel": GENERAL, "ts": "1.1", "text": "<@U0BOT> hi"})
    )
    return st.one_of(
        st.just(valid_event),
        st.binary(max_size=300),
        st.builds(as_json, garbage),
        clicks(placeholder).map(lambda a: a.body),
        submissions(placeholder).map(lambda a: a.body),
        st.builds(lambda b: b"\xff" + b, st.binary(max_size=20)),
    )


# ---- tests --------------------------------------------------------------------------------------------------


async def test_forged_requests_are_refused_and_record_nothing(
    harness: Harness, slack: Any, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """Unsigned, wrongly signed, stale or oddly signed: 401 (or 400), whatever the body, and nothing recorded."""
    watch(caplog)
    process = await harness.start(GRAPH)
    front = Front(process.url + "/slack/events", asyncio.get_running_loop(), http)

    @fuzz_settings(examples=400)
    @given(body=forged_bodies(), signing=forgeries(), content_type=st.sampled_from([JSON, FORM, None]))
    @example(body=b"\xff\xfe\x00garbage", signing=Signing(secret="wrong"), content_type=JSON)
    @example(body=b"\xff\xfe\x00garbage", signing=Signing(timestamp="abc"), content_type=JSON)
    def forged(body: bytes, signing: Signing, content_type: str | None) -> None:
        front.check(Attempt(body, content_type, signing), refused)

    await asyncio.to_thread(forged)
    await wait_drained(harness.database_url, slack)
    assert await recorded(harness.database_url) == NOTHING
    assert logged_errors(caplog) == []


async def test_malformed_signed_requests_are_no_ops_and_lose_nothing(
    harness: Harness, slack: Any, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """Signed but broken events, clicks, submissions and bodies: never a 5xx, nothing logged at ERROR; the open
    question stays open and the bot still works."""
    watch(caplog)
    process = await harness.start(GRAPH)
    question = await ask(harness, slack)
    await wait_drained(harness.database_url, slack)
    front = Front(process.url + "/slack/events", asyncio.get_running_loop(), http)

    @fuzz_settings(examples=300)
    @given(attempt=message_events(question))
    def events(attempt: Attempt) -> None:
        front.check(attempt, below_500)

    @fuzz_settings(examples=300)
    @given(attempt=clicks(question))
    def clicked(attempt: Attempt) -> None:
        front.check(attempt, below_500)

    @fuzz_settings(examples=300)
    @given(attempt=submissions(question))
    def submitted(attempt: Attempt) -> None:
        front.check(attempt, below_500)

    @fuzz_settings(examples=150)
    @given(attempt=odd_bodies())
    def odd(attempt: Attempt) -> None:
        front.check(attempt, below_500)

    failures: list[str] = []
    for family in (events, clicked, submitted, odd):
        try:
            await asyncio.to_thread(family)
        except Exception as exc:  # every family runs; all their failures are reported together
            failures.append(f"{family.__name__}: {describe(exc)}")
    await wait_drained(harness.database_url, slack, timeout=60)
    assert not failures, "\n\n".join(failures)
    assert logged_errors(caplog) == []

    # Nothing was decided by the noise: the question is still open, and a reply still answers it, once.
    state = await scalar(harness.database_url, "SELECT state FROM lgslack_interrupts WHERE id = %s", question.record_id)
    assert state == "pending"
    assert await scalar(harness.database_url, "SELECT count(*) FROM lgslack_decisions") == 0
    await answer_in_thread(slack, harness.database_url, question.root)

    # And a new conversation goes from start to end as usual.
    fresh, _ = await start_conversation(slack)
    await answer_in_thread(slack, harness.database_url, fresh)
    assert logged_errors(caplog) == []


@dataclass(frozen=True)
class Case:
    """A named malformed request from the issue and the statuses allowed. A `dropped` one must be a logged no-op:
    refused with a 4xx, or acked with a warning from the bot saying it was ignored."""

    name: str
    attempt: Attempt
    allowed: Callable[[int], bool] = below_500
    dropped: bool = False


def named_cases(question: Question) -> list[Case]:
    def event(**fields: Any) -> Attempt:
        base = {"type": "app_mention", "user": "U0BOB", "channel": GENERAL, "ts": "1700000001.000100"}
        base.update(fields)
        return event_attempt(envelope({k: v for k, v in base.items() if v is not None} | {"text": "<@U0BOT> hi"}))

    def click(**fields: Any) -> Attempt:
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {"id": "U0BOB"},
            "team": {"id": TEAM},
            "container": {"type": "message", "message_ts": question.ts, "channel_id": GENERAL},
            "trigger_id": "1.2.fuzz",
            "actions": [{"action_id": ANSWER_BUTTON, "value": f"{question.record_id}|answer"}],
        }
        payload.update(fields)
        return interaction_attempt({k: v for k, v in payload.items() if v is not None})

    def submit(values: Any, **fields: Any) -> Attempt:
        view = {
            "id": "V0FUZZ",
            "type": "modal",
            "callback_id": "lgslack.submit",
            "private_metadata": f"{question.record_id}|answer|{GENERAL}|{question.ts}",
            "state": {"values": values},
            "blocks": [{"type": "input", "block_id": ANSWER_BLOCK}],
        }
        view.update(fields)
        view = {k: v for k, v in view.items() if v is not None}
        payload = {"type": "view_submission", "user": {"id": "U0BOB"}, "team": {"id": TEAM}, "view": view}
        return interaction_attempt(payload)

    return [
        Case("event without channel", event(channel=None), dropped=True),
        Case("event without ts", event(ts=None), dropped=True),
        Case("event without user", event(user=None), dropped=True),
        Case("event channel with a trailing newline", event(channel="C0GENERAL\n"), dropped=True),
        Case("event ts with a trailing newline", event(ts="1700000001.000100\n"), dropped=True),
        Case("event ts in Arabic-Indic digits", event(ts="١٧٠٠٠٠٠٠٠١.٠٠٠١"), dropped=True),
        Case("event that is not an object", event_attempt(envelope(["not", "an", "event"])), dropped=True),
        Case("click with empty actions", click(actions=[]), dropped=True),
        Case("click without user", click(user=None), dropped=True),
        Case("click with a string user", click(user="U0BOB"), dropped=True),
        Case(
            "click on the real record with a bogus action",
            click(actions=[{"action_id": "lgslack.act:answer", "value": f"{question.record_id}|launch"}]),
        ),
        Case("click without container", click(container=None, channel=None)),
        Case("click without trigger_id", click(trigger_id=None)),
        Case("retry click with garbage", click(actions=[{"action_id": "lgslack.retry", "value": "turn:\ud800"}])),
        Case("submission with garbage state", submit("garbage"), dropped=True),
        Case("submission with a string in the answer field", submit({ANSWER_BLOCK: {"answer": "garbage"}})),
        Case("submission with a list in the answer field", submit({ANSWER_BLOCK: {"answer": ["x"]}})),
        Case("submission without state", submit({}, state=None), dropped=True),
        Case("submission without private_metadata", submit({}, private_metadata=None)),
        Case("submission for a random record", submit({}, private_metadata=f"{uuid.uuid4()}|answer")),
        Case("submission of a view without a type", submit({}, type=None), dropped=True),
        Case("unparsable payload=", Attempt(b"payload=%7Bnot json", FORM), lambda s: s == 400),
        Case("payload= that is a list", Attempt(b"payload=%5B1%2C2%5D", FORM)),
        Case("JSON body that is a list", Attempt(b"[1,2]", JSON)),
        Case("signed non-UTF-8 body", Attempt(b"\xff\xfe{}", JSON), refused),
        Case("unsigned garbage", Attempt(b"\x00garbage", JSON, Signing(secret=None, send_signature=False)), refused),
        Case("unsigned non-UTF-8 body, current timestamp", Attempt(b"\xff", JSON, Signing(secret="wrong")), refused),
        Case("non-numeric timestamp", Attempt(b"{}", JSON, Signing(timestamp="abc")), refused),
        Case("non-ASCII signature", Attempt(b"{}", JSON, Signing(signature="v0=é")), refused),
    ]


async def test_named_malformed_requests_get_a_4xx_or_a_logged_no_op(
    harness: Harness, slack: Any, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """The cases named in the issue, each reported on its own."""
    watch(caplog)
    process = await harness.start(GRAPH)
    question = await ask(harness, slack)
    await wait_drained(harness.database_url, slack)
    front = Front(process.url + "/slack/events", asyncio.get_running_loop(), http)
    before = await recorded(harness.database_url)

    failures: list[str] = []
    for case in named_cases(question):
        start = len(caplog.records)
        status, _ = await front.post(case.attempt)
        errors = logged_errors(caplog, since=start)
        warnings = [
            r.getMessage() for r in caplog.records[start:] if r.levelno == logging.WARNING and r.name.startswith("bot")
        ]
        if not case.allowed(status):
            failures.append(f"{case.name}: status {status}")
        if errors:
            failures.append(f"{case.name}: logged {errors}")
        if case.dropped and status < 400 and not warnings:
            failures.append(f"{case.name}: acked with {status} and no warning: it was not recognised as malformed")
    await wait_drained(harness.database_url, slack)
    after = await recorded(harness.database_url)
    # Only refusals and ephemeral notes came of them: no conversation, message, request or decision.
    if any(after[k] != before[k] for k in ("conversations", "inbound", "interrupts", "decisions")):
        failures.append(f"records changed: {before} -> {after}")
    assert not failures, "\n".join(failures)
    await answer_in_thread(slack, harness.database_url, question.root)


async def test_nul_bytes_and_lone_surrogates_in_text_are_dropped_not_fatal(
    harness: Harness, slack: Any, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL stores neither a NUL nor a lone surrogate: in a message or a modal answer they are removed, and
    the conversation goes on."""
    watch(caplog)
    process = await harness.start(GRAPH)
    front = Front(process.url + "/slack/events", asyncio.get_running_loop(), http)

    async def mention(ts: str, text: str) -> int:
        event = {"type": "app_mention", "user": "U0ALICE", "channel": GENERAL, "ts": ts, "text": text}
        status, _ = await front.post(event_attempt(envelope(event)))
        return status

    # Messages the bot ignores (no mention) give the threads a root in Slack; their events come again, mangled.
    root = await slack.post("U0ALICE", GENERAL, "hello")
    other = await slack.post("U0ALICE", GENERAL, "hello again")
    await wait_drained(harness.database_url, slack)
    assert await mention(root, "<@U0BOT> f\x00oo") == 200
    question = await wait_for_message(slack, GENERAL, root, containing("Please provide feedback: foo bar"))
    assert await mention(other, "<@U0BOT> \ud800foo") == 200
    await wait_for_message(slack, GENERAL, other, containing("Please provide feedback"))

    # The first question answered through its modal, with a NUL typed in.
    await slack.click("U0ALICE", GENERAL, question["ts"], ANSWER_BUTTON)
    view = (await slack.wait_for(lambda: slack.views("U0ALICE")))[-1]
    field_id = next(b["element"]["action_id"] for b in view["blocks"] if b.get("block_id") == ANSWER_BLOCK)
    values = {ANSWER_BLOCK: {field_id: {"type": "plain_text_input", "value": "ba\x00z"}}}
    payload = {
        "type": "view_submission",
        "user": {"id": "U0ALICE", "name": "alice", "team_id": TEAM},
        "team": {"id": TEAM, "domain": "sandbox"},
        "api_app_id": "A0SANDBOX",
        "trigger_id": "1.2.nul",
        "view": {**view, "state": {"values": values}},
    }
    status, body = await front.post(interaction_attempt(payload))
    assert status == 200, body
    await wait_for_message(slack, GENERAL, root, containing("qux"))
    await wait_drained(harness.database_url, slack)
    results = [m["text"] for m in await thread(slack, GENERAL, root) if "qux" in visible_text(m)]
    assert results == ["foo bar baz qux"]
    assert logged_errors(caplog) == []
