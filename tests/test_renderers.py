from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.renderers import (
    ACTION_OPEN,
    ANSWER_ACTION,
    ANSWER_BLOCK,
    MODAL_CALLBACK,
    Answer,
    JsonRenderer,
    QueryRenderer,
    QuestionRenderer,
    Registry,
    ReviseRenderer,
    render_decided,
)

RECORD = "3f1c0e7e-2d4b-4f7e-9c1a-8b9d0e1f2a3b"


def typed(text: str) -> dict[str, Any]:
    return {ANSWER_BLOCK: {ANSWER_ACTION: {"type": "plain_text_input", "value": text}}}


def buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        ("Please provide feedback: foo bar", "question"),
        ({"query": "What should I feed my cat?"}, "query"),
        ({"text_to_revise": "original"}, "revise"),
        ({"anything": [1, 2]}, "json"),
        (42, "json"),
    ],
)
def test_registry_picks_the_renderer_by_shape(payload: Any, kind: str) -> None:
    assert Registry().for_payload(payload).kind == kind


def test_a_custom_renderer_is_tried_first() -> None:
    class Custom(QuestionRenderer):
        kind = "custom"

        def matches(self, payload: Any) -> bool:
            return payload == "special"

    registry = Registry()
    registry.register(Custom())
    assert registry.for_payload("special").kind == "custom"
    assert registry.for_payload("other").kind == "question"


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
    modal = renderer.build_modal(RECORD, payload)
    assert modal["callback_id"] == MODAL_CALLBACK
    assert modal["private_metadata"] == RECORD
    assert any(b.get("block_id") == ANSWER_BLOCK for b in modal["blocks"])
    assert renderer.parse_submission(payload, typed(answer)) == Answer(value, answer)
    assert renderer.parse_reply(payload, answer) == Answer(value, answer)


def test_the_message_carries_only_the_record_id_on_its_button() -> None:
    message = QueryRenderer().render(RECORD, {"query": "What should I feed my cat?"})
    (button,) = buttons(message.blocks)
    assert button["action_id"] == ACTION_OPEN
    assert button["value"] == RECORD
    assert "What should I feed my cat?" in json.dumps(message.blocks)


def test_revise_modal_is_prefilled_with_the_text() -> None:
    modal = ReviseRenderer().build_modal(RECORD, {"text_to_revise": "draft text"})
    (field,) = [b for b in modal["blocks"] if b.get("block_id") == ANSWER_BLOCK]
    assert field["element"]["initial_value"] == "draft text"


def test_empty_answers_are_refused_in_the_modal() -> None:
    assert QuestionRenderer().parse_submission("q?", typed("  ")) == {ANSWER_BLOCK: "Write an answer before sending."}
    assert QuestionRenderer().parse_reply("q?", "  ") is None


def test_payload_text_cannot_ping_anyone() -> None:
    message = QuestionRenderer().render(RECORD, "<!channel> approve <@U999>?")
    dumped = json.dumps(message.blocks)
    assert "<!channel>" not in dumped and "<@U999>" not in dumped
    assert "&lt;!channel&gt;" in dumped


def test_decided_message_says_who_what_when_and_has_no_buttons() -> None:
    when = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    message = render_decided(
        QueryRenderer(), {"query": "cat food?"}, user_id="U0BOB", answer_text="fish <!here>", decided_at=when
    )
    dumped = json.dumps(message.blocks)
    assert not buttons(message.blocks)
    assert "<@U0BOB>" in dumped and "fish &lt;!here&gt;" in dumped
    assert f"<!date^{int(when.timestamp())}^" in dumped
