"""Pure pieces of the sandbox: Block Kit checks, typed state, timestamps, signatures, rich text."""

from __future__ import annotations

from typing import Any

import pytest
from slack_sdk.signature import SignatureVerifier

from bot.dev.sandbox import sign
from bot.dev.sandbox.blocks import assign_ids, find_action, typed_state_value, validate_blocks, validate_view
from bot.dev.sandbox.events import mentions_user, rich_text_blocks
from bot.dev.sandbox.interactions import state_values
from bot.dev.sandbox.workspace import Message, TsClock, Workspace


def button(action_id: str, text: str = "Go", value: str = "v") -> dict[str, Any]:
    return {"type": "button", "action_id": action_id, "text": {"type": "plain_text", "text": text}, "value": value}


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def test_a_reasonable_message_is_valid() -> None:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "Title"}},
        section("*hi*"),
        {"type": "divider"},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "ctx"}]},
        {"type": "actions", "block_id": "a", "elements": [button("yes"), button("no")]},
        {"type": "markdown", "text": "**md**"},
        {"type": "rich_text", "elements": []},
    ]
    assert validate_blocks(blocks) == []


@pytest.mark.parametrize(
    ("blocks", "expected"),
    [
        ([section("x")] * 51, "no more than 50 items"),
        ([{"type": "carousel"}], "unsupported block type 'carousel'"),
        ([section("x" * 3001)], "less than 3001 characters [json-pointer:/blocks/0/text/text]"),
        ([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}], "less than 151"),
        ([{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}], "must be one of plain_text"),
        ([{"type": "actions", "elements": [button("b", text="t" * 76)]}], "/blocks/0/elements/0/text/text"),
        ([{"type": "actions", "elements": [button("b", value="v" * 2001)]}], "elements/0/value"),
        ([{"type": "actions", "elements": [button("b" * 256)]}], "less than 256 characters"),
        ([{"type": "actions", "elements": [button("b"), button("b")]}], "duplicate action_id 'b'"),
        ([{**section("a"), "block_id": "x"}, {**section("b"), "block_id": "x"}], "duplicate block_id 'x'"),
        ([{"type": "markdown", "text": "m" * 7000}, {"type": "markdown", "text": "m" * 5001}], "cumulative"),
        ([{"type": "section"}], "either text or fields"),
        ([{"type": "actions", "elements": []}], "at least 1 item"),
    ],
)
def test_block_kit_violations_are_reported(blocks: list[dict[str, Any]], expected: str) -> None:
    errors = validate_blocks(blocks)
    assert any(expected in e for e in errors), errors


def test_modal_rules() -> None:
    view = {"type": "modal", "title": {"type": "plain_text", "text": "A" * 24}, "blocks": [section("x")] * 100}
    assert validate_view(view) == []
    too_long = {**view, "title": {"type": "plain_text", "text": "A" * 25}}
    assert any("/view/title/text" in e for e in validate_view(too_long))
    assert any("no more than 100" in e for e in validate_view({**view, "blocks": [section("x")] * 101}))
    needs_submit = {
        **view,
        "blocks": [
            {"type": "input", "label": {"type": "plain_text", "text": "L"}, "element": {"type": "plain_text_input"}}
        ],
    }
    assert any("submit is required" in e for e in validate_view(needs_submit))


def test_ids_are_assigned_like_slack_and_buttons_are_found() -> None:
    blocks = assign_ids(
        [section("x"), {"type": "actions", "elements": [button("go", value="1"), button("go2", value="2")]}]
    )
    assert all(b["block_id"] for b in blocks)
    found = find_action(blocks, "go2")
    assert found is not None and found[1]["value"] == "2"
    assert find_action(blocks, "go", value="nope") is None
    assert find_action(blocks, "missing") is None


def test_typed_state_values() -> None:
    options = [
        {"text": {"type": "plain_text", "text": "Red"}, "value": "r"},
        {"text": {"type": "plain_text", "text": "Blue"}, "value": "b"},
    ]
    assert typed_state_value({"type": "plain_text_input"}, "hi") == {"type": "plain_text_input", "value": "hi"}
    assert typed_state_value({"type": "number_input"}, 3)["value"] == "3"
    assert typed_state_value({"type": "static_select", "options": options}, "Blue")["selected_option"]["value"] == "b"
    multi = typed_state_value({"type": "multi_static_select", "options": options}, ["r", "b"])
    assert [o["value"] for o in multi["selected_options"]] == ["r", "b"]
    assert typed_state_value({"type": "checkboxes", "options": options}, "r")["selected_options"][0]["value"] == "r"
    assert typed_state_value({"type": "radio_buttons", "options": options}, "r")["selected_option"]["value"] == "r"
    assert typed_state_value({"type": "datepicker"}, "2025-01-02")["selected_date"] == "2025-01-02"
    assert typed_state_value({"type": "users_select"}, "U0BOB")["selected_user"] == "U0BOB"
    with pytest.raises(ValueError, match="no option"):
        typed_state_value({"type": "static_select", "options": options}, "green")


def test_state_values_use_initial_values_and_flag_required_fields() -> None:
    def field(block_id: str, element: dict[str, Any], optional: bool = False) -> dict[str, Any]:
        label = {"type": "plain_text", "text": "L"}
        return {"type": "input", "block_id": block_id, "label": label, "element": element, "optional": optional}

    blocks = [
        field("a", {"type": "plain_text_input", "action_id": "x", "initial_value": "draft"}),
        field("b", {"type": "plain_text_input", "action_id": "y"}),
        field("c", {"type": "plain_text_input", "action_id": "z"}, optional=True),
    ]
    values, missing = state_values(blocks, {})
    assert values["a"]["x"]["value"] == "draft" and missing == {"b": "Please complete this required field."}
    values, missing = state_values(blocks, {"b": "typed", "c": {"z": "more"}})
    assert (values["b"]["y"]["value"], values["c"]["z"]["value"], missing) == ("typed", "more", {})
    with pytest.raises(ValueError, match="nope"):
        state_values(blocks, {"nope": "x"})


def test_timestamps_strictly_increase_and_never_repeat() -> None:
    clock = TsClock(now=lambda: 1763764000.5, step=100)
    stamps = [clock.next() for _ in range(20_005)]
    assert stamps[0] == "1763764000.000100"
    assert len(set(stamps)) == len(stamps)
    as_pairs = [tuple(int(p) for p in s.split(".")) for s in stamps]
    assert as_pairs == sorted(as_pairs)
    assert all(len(s.split(".")[1]) == 6 for s in stamps)


def test_signature_matches_slack_sdk_verifier() -> None:
    body = '{"type":"event_callback"}'
    signature = sign("s3cret", 1700000000, body)
    verifier = SignatureVerifier("s3cret", clock=type("C", (), {"now": lambda self: 1700000001.0})())
    assert verifier.is_valid(body, 1700000000, signature)
    assert not verifier.is_valid(body + " ", 1700000000, signature)


def test_rich_text_and_mentions() -> None:
    (block,) = rich_text_blocks("<@U0BOT> ping <!subteam^S0EXPERTS> see <https://x.io|x>")
    kinds = [e["type"] for e in block["elements"][0]["elements"]]
    assert kinds == ["user", "text", "usergroup", "text", "link"]
    assert mentions_user("hey <@U0BOT|agent>") and not mentions_user("hey <@U0BOB>")


def test_seeded_workspace() -> None:
    ws = Workspace.seeded()
    assert {"U0BOT", "U0ALICE", "U0BOB", "U0CAROL"} <= ws.users.keys()
    assert ws.channels["D0ALICE"].is_im and ws.channels["D0ALICE"].members == {"U0BOT", "U0ALICE"}
    assert "U0BOT" in ws.channels["C0EXPERTS"].members and ws.usergroups["S0EXPERTS"].users == ("U0BOB", "U0CAROL")
    ws.add_user("U0DAVE", "dave")
    ws.add_channel("C0RANDOM", "random", ["U0DAVE"], bot_member=False)
    assert ws.resolve_channel("U0DAVE") is ws.channels["D0DAVE"]
    assert ws.resolve_channel("#random") is ws.channels["C0RANDOM"]


def test_a_thread_is_its_parent_then_its_replies_through_deletes_saves_and_loads() -> None:
    ws = Workspace.seeded()
    ts = ws.clock.next

    def say(text: str, thread_ts: str | None = None, user: str = "U0ALICE") -> Message:
        return ws.add_message(Message(ts=ts(), channel="C0GENERAL", text=text, user=user, thread_ts=thread_ts))

    roots = [say(f"root {n}") for n in range(3)]
    for n in range(3):
        for root in roots:
            say(f"reply {n} to {root.text}", thread_ts=root.ts, user="U0BOT" if n % 2 else "U0BOB")
    first = roots[0]
    texts = [m.text for m in ws.thread("C0GENERAL", first.ts)]
    assert texts == ["root 0", "reply 0 to root 0", "reply 1 to root 0", "reply 2 to root 0"]
    reply = ws.thread("C0GENERAL", first.ts)[2]
    assert [m.text for m in ws.thread("C0GENERAL", reply.ts)] == texts  # found from a reply too
    assert first.reply_count == 3 and first.reply_users == ["U0BOB", "U0BOT"]

    ws.delete_message("C0GENERAL", reply.ts)
    assert [m.text for m in ws.thread("C0GENERAL", first.ts)] == [texts[0], texts[1], texts[3]]
    assert first.reply_count == 2

    saved = ws.dump_messages()
    ws.clear_messages()
    assert ws.thread("C0GENERAL", first.ts) == []
    assert ws.load_messages(saved) == 3 + 3 * 3 - 1
    assert [m.text for m in ws.thread("C0GENERAL", roots[2].ts)] == [
        "root 2",
        "reply 0 to root 2",
        "reply 1 to root 2",
        "reply 2 to root 2",
    ]
