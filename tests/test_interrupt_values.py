"""Any value a graph passes to `interrupt()` reaches Slack readably and the graph gets back the type it expects."""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Any, NamedTuple
from uuid import UUID

import pytest
from pydantic import BaseModel

from bot.interrupts.values import as_json
from tests.support import odd_values
from tests.support.harness import Harness
from tests.support.slack import GENERAL, buttons, containing, thread, visible_text, wait_for_message


class Point(NamedTuple):
    x: int
    y: int


class Broken:
    def __str__(self) -> str:
        raise RuntimeError("no")

    def __repr__(self) -> str:
        raise RuntimeError("no")


def test_values_become_the_json_a_langgraph_server_would_send() -> None:
    @dataclasses.dataclass
    class Inner:
        when: date

    class Model(BaseModel):
        inner: Any
        at: datetime

    value = {
        "model": Model(inner=Inner(date(2026, 1, 2)), at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        "uuid": UUID(int=1),
        "set": frozenset({3}),
        "tuple": (1, 2),
        "named": Point(1, 2),
        "decimal": Decimal("1.50"),
        "whole": Decimal("2"),
        "nan": math.nan,
        "inf": Decimal("Infinity"),
        "bytes": b"hi",
        "delta": timedelta(minutes=1, milliseconds=500),
        "path": PurePosixPath("/a/b"),
        "tz": UTC,
        "error": ValueError("bad input"),
        "text": "a\x00b\udc80c",
        7: "int key",
        "broken": Broken(),
    }
    encoded = as_json(value)
    assert encoded == {
        "model": {"inner": {"when": "2026-01-02"}, "at": "2026-01-02T03:04:05+00:00"},
        "uuid": "00000000-0000-0000-0000-000000000001",
        "set": [3],
        "tuple": [1, 2],
        "named": {"x": 1, "y": 2},
        "decimal": 1.5,
        "whole": 2,
        "nan": None,
        "inf": None,
        "bytes": "aGk=",
        "delta": 60.5,
        "path": "/a/b",
        "tz": "UTC",
        "error": {"error": "ValueError", "message": "bad input"},
        "text": "a\ufffdb?c",
        "7": "int key",
        "broken": "<Broken>",
    }
    json.dumps(encoded, allow_nan=False)  # plain JSON, nothing left for an encoder to refuse


def test_a_self_referencing_value_still_encodes() -> None:
    loop: list[Any] = []
    loop.append(loop)
    encoded = as_json(loop)
    json.dumps(encoded)


async def _ask(harness: Harness, slack: Any, kind: str) -> tuple[str, dict[str, Any]]:
    await harness.start("tests.support.odd_values:graph")
    root = await slack.post("U0ALICE", GENERAL, f"<@U0BOT> {kind}")
    request = await wait_for_message(slack, GENERAL, root, lambda m: bool(buttons(m)))
    return root, request


@pytest.fixture(autouse=True)
def _clear_received() -> None:
    odd_values.RECEIVED.clear()


async def test_a_pydantic_model_is_shown_as_its_fields_and_a_json_reply_comes_back_as_data(
    harness: Harness, slack: Any
) -> None:
    root, request = await _ask(harness, slack, "pydantic")
    shown = visible_text(request)
    for expected in (
        '"title": "Printer on fire"',
        '"priority": "high"',
        '"due": "2026-12-01T09:30:00+00:00"',
        f'"id": "{odd_values.TICKET_ID}"',
        '"tags": [',
    ):
        assert expected in shown, shown
    await slack.post("U0BOB", GENERAL, '{"assignee": "bob", "eta_hours": 2}', thread_ts=root)
    await slack.wait_for(lambda: odd_values.RECEIVED or None)
    assert odd_values.RECEIVED == [{"assignee": "bob", "eta_hours": 2}]
    await wait_for_message(slack, GENERAL, root, containing("assignee"))


async def test_a_model_with_a_query_is_asked_like_the_seeds_human_assistance(harness: Harness, slack: Any) -> None:
    root, request = await _ask(harness, slack, "pydantic_query")
    assert "Which printer is on fire?" in visible_text(request)
    await slack.post("U0BOB", GENERAL, "The one on floor 2", thread_ts=root)
    await slack.wait_for(lambda: odd_values.RECEIVED or None)
    assert odd_values.RECEIVED == [{"data": "The one on floor 2"}]


@pytest.mark.parametrize(
    ("kind", "shown"),
    [
        ("datetime", "2026-12-01T09:30:00+00:00"),
        ("uuid", str(odd_values.TICKET_ID)),
        ("dataclass", '"price": 129.9'),
        ("set", "only"),
        ("tuple_of_things", '"AP9ieXRlcw==",\n  null,'),
        ("dirty_text", "Is \ufffd this ? clean?"),
    ],
)
async def test_each_value_is_shown_readably_and_a_text_answer_comes_back_as_text(
    harness: Harness, slack: Any, kind: str, shown: str
) -> None:
    root, request = await _ask(harness, slack, kind)
    assert shown in visible_text(request), visible_text(request)
    await slack.post("U0BOB", GENERAL, "fine by me", thread_ts=root)
    await slack.wait_for(lambda: odd_values.RECEIVED or None)
    assert odd_values.RECEIVED == ["fine by me"]
    assert type(odd_values.RECEIVED[0]) is str
    messages = await thread(slack, GENERAL, root)
    assert not any("hit an error" in visible_text(m) for m in messages)


async def test_the_dataclass_fields_are_all_there(harness: Harness, slack: Any) -> None:
    _, request = await _ask(harness, slack, "dataclass")
    shown = visible_text(request)
    for expected in ('"room": "Lisbon"', '"nights": 3', '"stay": 259200.0', '"path": "/srv/booking.txt"'):
        assert expected in shown, shown


async def test_a_value_langgraph_itself_cannot_checkpoint_is_a_visible_failure_with_retry(
    harness: Harness, slack: Any
) -> None:
    await harness.start("tests.support.odd_values:graph")
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> unstorable")
    failed = await wait_for_message(slack, GENERAL, root, containing("The agent hit an error"))
    assert "not msgpack serializable" in visible_text(failed)
    assert [b["action_id"] for b in buttons(failed)] == ["lgslack.retry"]


async def test_a_malformed_approval_request_is_shown_by_the_next_renderer_and_still_answered(
    harness: Harness, slack: Any
) -> None:
    root, request = await _ask(harness, slack, "malformed_hitl")
    assert '"action_requests": [' in visible_text(request) and "send_email" in visible_text(request)
    await slack.post("U0BOB", GENERAL, "no", thread_ts=root)
    await slack.wait_for(lambda: odd_values.RECEIVED or None)
    assert odd_values.RECEIVED == ["no"]


class _FailsWhenShown:
    """A custom renderer that passes the registry's try-out but fails when the request is really shown."""

    kind = "custom"
    verb = "Answered"

    def matches(self, request: Any) -> bool:
        return isinstance(request.value, dict) and "custom" in request.value

    def render(self, record_id: str, request: Any, progress: Any) -> Any:
        from bot.interrupts.registry import PROBE
        from bot.types import SlackMessage

        if record_id != PROBE:
            raise KeyError("boom")
        return SlackMessage(text="ok")

    def tools(self, request: Any, action: str) -> list[str]:
        return []


async def test_a_request_whose_renderer_fails_is_still_shown_with_the_error(harness: Harness, slack: Any) -> None:
    from bot.interrupts.registry import Registry

    registry = Registry()
    registry.register(_FailsWhenShown())  # type: ignore[arg-type]
    await harness.start("tests.support.odd_values:graph", registry=registry)
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> custom")
    shown = await wait_for_message(slack, GENERAL, root, containing("can't be shown"))
    assert "only my renderer knows this" in visible_text(shown) and "KeyError" in visible_text(shown)


async def test_a_typed_ask_human_resumes_with_the_answer_field(harness: Harness, slack: Any) -> None:
    root, request = await _ask(harness, slack, "ask_human")
    assert "Ship it today?" in visible_text(request)
    await slack.post("U0BOB", GENERAL, "Yes, after lunch", thread_ts=root)
    await slack.wait_for(lambda: odd_values.RECEIVED or None)
    assert odd_values.RECEIVED == [{"answer": "Yes, after lunch"}]


async def test_a_form_resumes_with_the_schemas_types(harness: Harness, slack: Any) -> None:
    _, request = await _ask(harness, slack, "form")
    await slack.click("U0BOB", GENERAL, request["ts"], "lgslack.act:answer")
    await slack.wait_for(lambda: slack.views("U0BOB"))
    await slack.submit(
        "U0BOB",
        {
            "field:nights": "3",
            "field:budget": "250.5",
            "field:refundable": ["true"],
            "field:extras": [json.dumps("wifi")],
        },
    )
    await slack.wait_for(lambda: odd_values.RECEIVED or None)
    (received,) = odd_values.RECEIVED
    assert received == {"nights": 3, "budget": 250.5, "refundable": True, "extras": ["wifi"]}
    assert [type(received[k]) for k in ("nights", "budget", "refundable", "extras")] == [int, float, bool, list]
