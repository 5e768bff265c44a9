from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.audit import format_rows, parse_moment
from bot.errors import ConfigError
from bot.interrupts.forms import fields_of, parse_form
from bot.interrupts.reviews import AgentInboxRenderer, HitlBatchRenderer, ToolApprovalRenderer, parse_edit
from bot.rules.policy import ApprovalRule, Policy, load_policy, read_config
from bot.types import Answer, InvalidAction, OpenModal, Request, Step, Verdict

RECORD = "3f1c0e7e-2d4b-4f7e-9c1a-8b9d0e1f2a3b"
HITL = Request(
    {
        "action_requests": [
            {"name": "send_email", "args": {"to": "a@x.io", "subject": "Hi", "body": "Yo"}, "description": "Email"},
            {"name": "refund", "args": {"order": 42, "amount": 9.5, "notify": True}},
        ],
        "review_configs": [
            {"action_name": "send_email", "allowed_decisions": ["approve", "edit", "reject", "respond"]},
            {"action_name": "refund", "allowed_decisions": ["approve", "reject"]},
        ],
    }
)


def typed(**fields: str) -> dict[str, Any]:
    return {block: {"value": {"type": "plain_text_input", "value": value}} for block, value in fields.items()}


def progress_of(*steps: Step, user: str = "U1") -> dict[str, Any]:
    return {
        s.key: {"decision": s.decision, "text": s.text, "user": user, "verdict": s.verdict.as_dict()} for s in steps
    }


def test_hitl_buttons_follow_each_actions_allowed_decisions() -> None:
    message = HitlBatchRenderer().render(RECORD, HITL, {})
    ids = [e["action_id"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]]
    assert ids == [
        "lgslack.act:approve:0",
        "lgslack.act:edit:0",
        "lgslack.act:reject:0",
        "lgslack.act:respond:0",
        "lgslack.act:approve:1",
        "lgslack.act:reject:1",
        "lgslack.act:approve_all",
    ]
    with pytest.raises(InvalidAction):
        HitlBatchRenderer().click(RECORD, HITL, "edit:1", {})


def test_hitl_batch_completes_in_order_with_each_decision() -> None:
    renderer = HitlBatchRenderer()
    refund = renderer.click(RECORD, HITL, "approve:1", {})
    assert isinstance(refund, Step) and refund.decision == {"type": "approve"}
    assert renderer.complete(HITL, progress_of(refund)) is None
    opened = renderer.click(RECORD, HITL, "reject:0", progress_of(refund))
    assert isinstance(opened, OpenModal)
    reject = renderer.submit(HITL, "reject:0", typed(lgslack_reason="wrong person"), progress_of(refund))
    assert isinstance(reject, Step) and reject.verdict == Verdict("reject", "send_email", reason="wrong person")
    final = renderer.complete(HITL, progress_of(refund, reject))
    assert final is not None and final.value == {
        "decisions": [{"type": "reject", "message": "wrong person"}, {"type": "approve"}]
    }
    with pytest.raises(InvalidAction):
        renderer.click(RECORD, HITL, "approve:1", progress_of(refund))


def test_a_rejection_without_reason_sends_no_message() -> None:
    step = HitlBatchRenderer().submit(HITL, "reject:0", typed(lgslack_reason=""), {})
    assert isinstance(step, Step) and step.decision == {"type": "reject"}


def test_approve_all_keeps_earlier_decisions() -> None:
    renderer = HitlBatchRenderer()
    reject = renderer.submit(HITL, "reject:1", typed(lgslack_reason="no"), {})
    assert isinstance(reject, Step)
    answer = renderer.click(RECORD, HITL, "approve_all", progress_of(reject))
    assert isinstance(answer, Answer)
    assert answer.value == {"decisions": [{"type": "approve"}, {"type": "reject", "message": "no"}]}
    assert answer.verdicts == (Verdict("approve", "send_email"),)


def test_edit_fields_are_typed_back_and_bad_input_is_refused() -> None:
    item = HitlBatchRenderer().items(HITL)[1]
    assert parse_edit(item, typed(**{"arg:order": "43", "arg:amount": "10", "arg:notify": "false"})) == (
        {"order": 43, "amount": 10.0, "notify": False},
        {},
    )
    assert parse_edit(item, typed(**{"arg:order": "x", "arg:amount": "1", "arg:notify": "maybe"}))[1] == {
        "arg:order": "Write a whole number.",
        "arg:notify": "Write true or false.",
    }


def test_missing_or_emptied_edit_fields_are_refused_in_the_modal() -> None:
    item = HitlBatchRenderer().items(HITL)[1]
    _, errors = parse_edit(item, {**typed(**{"arg:order": "43"}), "arg:notify": {"v": {"value": None}}})
    empty = "This field is empty: write a value, or reject the call instead."
    assert errors == {"arg:amount": empty, "arg:notify": empty}


def test_nested_arguments_are_edited_as_json() -> None:
    request = Request(
        {
            "action_requests": [{"name": "tag", "args": {"labels": ["a", "b"]}}],
            "review_configs": [{"action_name": "tag", "allowed_decisions": ["edit"]}],
        }
    )
    renderer = HitlBatchRenderer()
    opened = renderer.click(RECORD, request, "edit:0", {})
    assert isinstance(opened, OpenModal)
    assert [b["block_id"] for b in opened.view["blocks"]] == ["lgslack_args_json"]
    bad = renderer.submit(request, "edit:0", typed(lgslack_args_json="[1"), {})
    assert isinstance(bad, dict) and bad["lgslack_args_json"].startswith("This is not valid JSON")
    assert renderer.submit(request, "edit:0", typed(lgslack_args_json="[1]"), {}) == {
        "lgslack_args_json": 'The arguments must be a JSON object, like {"name": "value"}.'
    }
    step = renderer.submit(request, "edit:0", typed(lgslack_args_json='{"labels": ["c"]}'), {})
    assert isinstance(step, Step)
    assert step.decision == {"type": "edit", "edited_action": {"name": "tag", "args": {"labels": ["c"]}}}


def test_per_call_request_reads_allowed_decisions_from_its_schema() -> None:
    schema = {"oneOf": [{"properties": {"type": {"const": "approve"}}}, {"properties": {"type": {"const": "reject"}}}]}
    request = Request(
        {
            "type": "tool_approval",
            "tool_call_id": "c1",
            "name": "refund",
            "args": {"order": 1},
            "description": "Refund?",
        },
        schema,
    )
    renderer = ToolApprovalRenderer()
    assert renderer.items(request)[0].allowed == ("approve", "reject")
    step = renderer.click(RECORD, request, "approve:0", {})
    assert isinstance(step, Step)
    final = renderer.complete(request, progress_of(step))
    assert final is not None and final.value == {"type": "approve"}


def test_agent_inbox_responses() -> None:
    request = Request(
        [
            {
                "action_request": {"action": "ticket", "args": {"t": "x"}},
                "config": {"allow_accept": True, "allow_respond": True},
                "description": "?",
            }
        ]
    )
    renderer = AgentInboxRenderer()
    assert renderer.items(request)[0].allowed == ("accept", "respond")
    step = renderer.submit(request, "respond:0", typed(lgslack_response="use the other form"), {})
    assert isinstance(step, Step)
    final = renderer.complete(request, progress_of(step))
    assert final is not None and final.value == [{"type": "response", "args": "use the other form"}]
    with pytest.raises(InvalidAction):
        renderer.click(RECORD, request, "ignore:0", {})


def test_schema_forms_parse_and_validate() -> None:
    schema = {
        "type": "object",
        "properties": {
            "count": {"type": "integer", "minimum": 1},
            "ratio": {"anyOf": [{"type": "number"}, {"type": "null"}]},
            "mode": {"$ref": "#/$defs/Mode"},
            "ok": {"type": "boolean"},
        },
        "required": ["count", "mode"],
        "$defs": {"Mode": {"enum": ["fast", "slow"]}},
    }
    fields, is_object = fields_of(schema)
    assert is_object and [(f.name, f.kind, f.required) for f in fields] == [
        ("count", "integer", True),
        ("ratio", "number", False),
        ("mode", "enum", True),
        ("ok", "boolean", False),
    ]
    values = {
        "field:count": {"value": {"type": "number_input", "value": "2"}},
        "field:mode": {"value": {"type": "static_select", "selected_option": {"value": '"slow"'}}},
        "field:ok": {"value": {"type": "checkboxes", "selected_options": [{"value": "true"}]}},
    }
    assert parse_form(schema, values) == ({"count": 2, "mode": "slow", "ok": True}, {})
    assert parse_form(schema, {"field:count": {"value": {"value": "0"}}}) == (
        None,
        {"field:count": "The smallest allowed is 1.", "field:mode": "This is required."},
    )
    assert parse_form({"type": "integer"}, {"field:value": {"value": {"value": "7"}}}) == (7, {})


async def test_policy_picks_the_most_specific_rule_and_checks_groups() -> None:
    async def members(group: str) -> set[str]:
        return {"U_EXPERT"} if group == "S_EXPERTS" else set()

    policy = Policy(
        ApprovalRule(("U_LEAD",)),
        (ApprovalRule(("S_EXPERTS",), graph="g"), ApprovalRule(("U_FIN",), True, tool="refund")),
    )
    assert policy.rule_for("g", "refund").approvers == ("U_FIN",)
    assert policy.rule_for("g", "email").approvers == ("S_EXPERTS",)
    assert policy.rule_for("other", "email").approvers == ("U_LEAD",)
    assert await policy.refusal(user_id="U_EXPERT", graph="g", tools=["email"], requester=None, members=members) is None
    refused = await policy.refusal(user_id="U_X", graph="g", tools=["email"], requester=None, members=members)
    assert refused is not None and "<!subteam^S_EXPERTS>" in refused
    mine = await policy.refusal(user_id="U_FIN", graph="g", tools=["refund"], requester="U_FIN", members=members)
    assert mine is not None and "someone else" in mine
    assert await policy.refusal(user_id="U_X", graph="g", tools=[], requester=None, members=members) is None


def test_policy_file_and_environment(tmp_path: Path) -> None:
    config = tmp_path / "bot.toml"
    config.write_text(
        '[approvals]\napprovers = ["U0LEAD"]\n\n[[approvals.rules]]\ntool = "refund"\napprovers = ["S0FIN"]\n'
        "exclude_requester = true\n"
    )
    policy = load_policy({}, read_config(config))
    assert policy.default.approvers == ("U0LEAD",) and policy.rules[0].approvers == ("S0FIN",)
    assert load_policy({"APPROVERS": "U0A, S0B"}, read_config(config)).default.approvers == ("U0A", "S0B")
    with pytest.raises(ConfigError, match=r"^APPROVERS lists '#finance'"):
        load_policy({"APPROVERS": "#finance"}, None)
    config.write_text('[[approvals.rules]]\ntool = "refund"\napprovers = "U0X"\n')
    with pytest.raises(ConfigError, match=r"^BOT_CONFIG has a bad approvals.rules\[0\].approvers"):
        load_policy({}, read_config(config))
    config.write_text("[approvals\n")
    with pytest.raises(ConfigError, match=r"^BOT_CONFIG names .* not valid TOML"):
        read_config(config)


def test_audit_moments_and_formats() -> None:
    now = datetime(2026, 11, 21, 12, tzinfo=UTC)
    assert parse_moment("2h", "--since", now) == datetime(2026, 11, 21, 10, tzinfo=UTC)
    assert parse_moment("2026-11-01", "--since") == datetime(2026, 11, 1, tzinfo=UTC)
    rows = [{"decided_at": now, "user_id": "U1", "decision": "edit", "edited_args": {"to": "x"}, "request": "q?"}]
    assert '"{""to"": ""x""}"' in format_rows(rows, "csv")
    assert "(1 decisions)" in format_rows(rows, "table")
