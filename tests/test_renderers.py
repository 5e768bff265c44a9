from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.blocks import ACTION, MODAL_CALLBACK, parse_action_value
from bot.interrupts.base import ANSWER_BLOCK, render_decided
from bot.interrupts.questions import JsonRenderer, QueryRenderer, QuestionRenderer, ReviseRenderer
from bot.interrupts.registry import Registry
from bot.types import Answer, InvalidAction, OpenModal, Request, Verdict

RECORD = "3f1c0e7e-2d4b-4f7e-9c1a-8b9d0e1f2a3b"


def typed(text: str) -> dict[str, Any]:
    return {ANSWER_BLOCK: {"value": {"type": "plain_text_input", "value": text}}}


def buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


@pytest.mark.parametrize(
    ("request_", "kind"),
    [
        (Request("Please provide feedback: foo bar"), "question"),
        (Request({"query": "What should I feed my cat?"}), "query"),
        (Request({"text_to_revise": "original"}), "revise"),
        (Request({"anything": [1, 2]}), "json"),
        (Request(42), "json"),
        (Request("How many?", {"type": "integer"}), "schema"),
        (Request({"action_requests": [], "review_configs": []}), "hitl"),
        (
            Request({"type": "tool_approval", "name": "x", "args": {}, "tool_call_id": "c", "description": ""}),
            "tool_approval",
        ),
        (Request([{"action_request": {"action": "x", "args": {}}, "config": {}, "description": ""}]), "agent_inbox"),
        (Request({"type": "breakpoint", "question": "Where?"}), "breakpoint"),
    ],
)
def test_registry_picks_the_renderer_by_shape(request_: Request, kind: str) -> None:
    assert Registry().for_request(request_).kind == kind


def test_a_custom_renderer_is_tried_first() -> None:
    class Custom(QuestionRenderer):
        kind = "custom"

        def matches(self, request: Request) -> bool:
            return request.value == "special"

    registry = Registry()
    registry.register(Custom())
    assert registry.for_request(Request("special")).kind == "custom"
    assert registry.for_request(Request("other")).kind == "question"


@pytest.mark.parametrize(
    ("renderer", "payload", "answer", "value"),
    [
        (QuestionRenderer(), "Please provide feedback: foo bar", "baz", "baz"),
        (QueryRenderer(), {"query": "cat food?"}, "fish", {"data": "fish"}),
        (ReviseRenderer(), {"text_to_revise": "teh text"}, "the text", "the text"),
        (JsonRenderer(), {"x": 1}, '{"ok": true}', {"ok": True}),
        (JsonRenderer(), {"x": 1}, "plain words", "plain words"),
    ],
)
def test_modal_submission_and_reply_give_the_resume_value(renderer: Any, payload: Any, answer: str, value: Any) -> None:
    request = Request(payload)
    opened = renderer.click(RECORD, request, "answer", {})
    assert isinstance(opened, OpenModal)
    assert opened.view["callback_id"] == MODAL_CALLBACK
    assert parse_action_value(opened.view["private_metadata"]) == (RECORD, "answer")
    assert any(b.get("block_id") == ANSWER_BLOCK for b in opened.view["blocks"])
    expected = Answer(value, answer, (Verdict("answer"),))
    assert renderer.submit(request, "answer", typed(answer), {}) == expected
    assert renderer.reply(request, answer) == expected


def test_the_message_carries_only_ids_on_its_button() -> None:
    message = QueryRenderer().render(RECORD, Request({"query": "What should I feed my cat?"}), {})
    (button,) = buttons(message.blocks)
    assert button["action_id"] == f"{ACTION}:answer"
    assert parse_action_value(button["value"]) == (RECORD, "answer")
    assert "What should I feed my cat?" in json.dumps(message.blocks)


def test_revise_modal_is_prefilled_with_the_text() -> None:
    opened = ReviseRenderer().click(RECORD, Request({"text_to_revise": "draft text"}), "answer", {})
    assert isinstance(opened, OpenModal)
    (field,) = [b for b in opened.view["blocks"] if b.get("block_id") == ANSWER_BLOCK]
    assert field["element"]["initial_value"] == "draft text"


def test_empty_answers_are_refused_and_unknown_actions_are_invalid() -> None:
    request = Request("q?")
    assert QuestionRenderer().submit(request, "answer", typed("  "), {}) == {
        ANSWER_BLOCK: "Write an answer before sending."
    }
    assert QuestionRenderer().reply(request, "  ") is None
    with pytest.raises(InvalidAction):
        QuestionRenderer().click(RECORD, request, "approve:0", {})


def test_payload_text_cannot_ping_anyone() -> None:
    message = QuestionRenderer().render(RECORD, Request("<!channel> approve <@U999>?"), {})
    dumped = json.dumps(message.blocks)
    assert "<!channel>" not in dumped and "<@U999>" not in dumped
    assert "&lt;!channel&gt;" in dumped


def test_decided_message_says_who_what_when_and_has_no_buttons() -> None:
    when = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    message = render_decided(
        QueryRenderer(),
        Request({"query": "cat food?"}),
        user_id="U0BOB",
        answer_text="fish <!here>",
        decided_at=when,
        progress={},
    )
    dumped = json.dumps(message.blocks)
    assert not buttons(message.blocks)
    assert "Answered by <@U0BOB>" in dumped and "fish &lt;!here&gt;" in dumped
    assert f"<!date^{int(when.timestamp())}^" in dumped
