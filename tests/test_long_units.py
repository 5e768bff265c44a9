"""Long values, as pure functions: split edit fields that join back exactly, messages that show what fits and
say how much is left, and the read-only "Show all" modal that pages through the whole."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from bot import blocks as b
from bot import text as t
from bot.dev.sandbox.blocks import validate_blocks, validate_view
from bot.dev.sandbox.interactions import state_values
from bot.interrupts import long
from bot.interrupts.base import ANSWER_BLOCK, answer_hidden, quoted, render_decided
from bot.interrupts.escalation import render_escalated
from bot.interrupts.forms import SchemaRenderer, parse_form
from bot.interrupts.questions import JsonRenderer, QuestionRenderer, ReviseRenderer
from bot.interrupts.reviews import (
    AgentInboxRenderer,
    HitlBatchRenderer,
    _describe_args,
    args_hidden,
    edit_fields,
    parse_edit,
)
from bot.types import Answer, InvalidAction, OpenModal, Request, Step, Verdict

RECORD = "3f1c0e7e-2d4b-4f7e-9c1a-8b9d0e1f2a3b"
WORDS = ["Lorem", "ipsum", "déjà", "vu", "R&D", "a<b>c", "naïve", "🙂", "tab\tstop", "x" * 17, "end."]


def draft(size: int) -> str:
    """A text of exactly `size` characters: paragraphs, lines, words, trailing spaces, &, < and non-ASCII."""
    out: list[str] = []
    length, n = 0, 0
    while length < size:
        word = WORDS[n % len(WORDS)]
        sep = "\n\n" if n % 97 == 96 else "  \n" if n % 13 == 12 else " "
        out.append(word + sep)
        length += len(word) + len(sep)
        n += 1
    text = "".join(out)[: size - 3] + " \n\n"
    assert len(text) == size
    return text


def submitted_unchanged(view: dict[str, Any]) -> dict[str, Any]:
    """The `state.values` Slack reports for a modal submitted without touching it (initial values)."""
    values, missing = state_values(view["blocks"])
    assert not missing
    return values


def inputs(view: dict[str, Any]) -> list[dict[str, Any]]:
    return [block for block in view["blocks"] if block["type"] == "input"]


@pytest.mark.parametrize("size", [4899, 10_000])
def test_a_long_revise_text_is_split_over_fields_and_comes_back_exactly(size: int) -> None:
    text = draft(size)
    request = Request({"text_to_revise": text})
    opened = ReviseRenderer().click(RECORD, request, "answer", {})
    assert isinstance(opened, OpenModal)
    assert validate_view(opened.view) == []
    fields = inputs(opened.view)
    parts = t.split(text, 3000)
    assert len(fields) == len(parts) == {4899: 2, 10_000: 4}[size]
    assert [f["block_id"] for f in fields] == [f"{ANSWER_BLOCK}#part{i}" for i in range(1, len(parts) + 1)]
    assert [f["label"]["text"] for f in fields] == [
        f"Text (part {i} of {len(parts)})" for i in range(1, len(parts) + 1)
    ]
    assert all(len(f["element"]["initial_value"]) <= 3000 for f in fields)
    assert "".join(f["element"]["initial_value"] for f in fields) == text
    note = json.dumps(opened.view["blocks"])
    assert f"{size:,} characters" in note and "joined in order" in note

    answer = ReviseRenderer().submit(request, "answer", submitted_unchanged(opened.view), {})
    assert answer == Answer(text, text, (Verdict("answer"),))
    assert isinstance(answer, Answer) and type(answer.value) is str and len(answer.value) == size


def test_an_edited_part_is_joined_in_order_with_the_others() -> None:
    text = draft(4899)
    first, _ = t.split(text, 3000)
    request = Request({"text_to_revise": text})
    values = {
        f"{ANSWER_BLOCK}#part1": {"value": {"type": "plain_text_input", "value": first}},
        f"{ANSWER_BLOCK}#part2": {"value": {"type": "plain_text_input", "value": "A new ending."}},
    }
    answer = ReviseRenderer().submit(request, "answer", values, {})
    assert isinstance(answer, Answer) and answer.value == first + "A new ending."
    emptied = {k: {"value": {"type": "plain_text_input", "value": None}} for k in values}
    assert ReviseRenderer().submit(request, "answer", emptied, {}) == {
        f"{ANSWER_BLOCK}#part1": "Write an answer before sending."
    }


def test_a_part_whose_ends_were_trimmed_by_a_client_is_taken_as_shown() -> None:
    text = draft(7000)
    parts = t.split(text, 3000)
    values = {
        b.part_id(ANSWER_BLOCK, i): {"value": {"type": "plain_text_input", "value": part.strip()}}
        for i, part in enumerate(parts, start=1)
    }
    assert b.submitted_whole(values, ANSWER_BLOCK, text) == text


def test_text_too_long_for_any_modal_sends_the_person_to_a_thread_reply() -> None:
    text = draft(100 * 3000)
    opened = ReviseRenderer().click(RECORD, Request({"text_to_revise": text}), "answer", {})
    assert isinstance(opened, OpenModal)
    assert validate_view(opened.view) == []
    assert inputs(opened.view) == [] and "submit" not in opened.view
    assert opened.view["close"]["text"] == "Close"
    shown = json.dumps(opened.view["blocks"])
    assert "300,000 characters" in shown and "reply in this request's thread" in shown
    assert ReviseRenderer().reply(Request({"text_to_revise": text}), "shorter") == Answer(
        "shorter", "shorter", (Verdict("answer"),)
    )


def test_the_sandbox_refuses_an_initial_value_over_3000_characters_as_slack_does() -> None:
    field = b.text_input("f", "F", initial="x" * 3001)
    errors = validate_view(b.modal(RECORD, "answer", "T", [field]))
    assert errors == ["must be less than 3001 characters [json-pointer:/view/blocks/0/element/initial_value]"]
    assert validate_blocks([b.text_input("f", "F", initial="x" * 3000)]) == []
    element = {"type": "plain_text_input", "action_id": "v", "max_length": 3001, "min_length": -1}
    assert validate_blocks([{"type": "input", "label": b.plain("L"), "element": element}]) == [
        "must be between 0 and 3000 [json-pointer:/blocks/0/element/min_length]",
        "must be between 1 and 3000 [json-pointer:/blocks/0/element/max_length]",
    ]


def hitl(args: dict[str, Any]) -> Request:
    configs = [{"action_name": "send_email", "allowed_decisions": ["approve", "edit", "reject"]}]
    return Request({"action_requests": [{"name": "send_email", "args": args}], "review_configs": configs})


def test_a_long_string_argument_is_edited_in_parts_and_the_rest_stay_typed() -> None:
    body = draft(6500)
    request = hitl({"to": "a@x.io", "body": body, "urgent": True})
    renderer = HitlBatchRenderer()
    opened = renderer.click(RECORD, request, "edit:0", {})
    assert isinstance(opened, OpenModal) and validate_view(opened.view) == []
    assert [f["block_id"] for f in inputs(opened.view)] == [
        "arg:to",
        "arg:body#part1",
        "arg:body#part2",
        "arg:body#part3",
        "arg:urgent",
    ]
    step = renderer.submit(request, "edit:0", submitted_unchanged(opened.view), {})
    assert isinstance(step, Step)
    edited = {"to": "a@x.io", "body": body, "urgent": True}
    assert step.decision == {"type": "edit", "edited_action": {"name": "send_email", "args": edited}}
    assert type(step.decision["edited_action"]["args"]["body"]) is str


def test_a_long_json_editor_is_split_and_parsed_from_its_joined_parts() -> None:
    args = {"items": [{"n": i, "note": f"line {i} " + "z" * 40} for i in range(200)]}
    item = AgentInboxRenderer().items(
        Request([{"action_request": {"action": "bulk", "args": args}, "config": {"allow_edit": True}}])
    )[0]
    fields = edit_fields(item)
    ids = [f["block_id"] for f in fields if f["type"] == "input"]
    assert len(ids) >= 4 and ids[0] == "lgslack_args_json#part1"
    view = b.modal(RECORD, "edit:0", "Edit", fields)
    assert validate_view(view) == [] and parse_edit(item, submitted_unchanged(view)) == (args, {})
    broken = submitted_unchanged(view)
    broken["lgslack_args_json#part2"]["value"]["value"] = "}"
    edited, errors = parse_edit(item, broken)
    assert edited == {} and list(errors) == ["lgslack_args_json#part1"]
    assert errors["lgslack_args_json#part1"].startswith("This is not valid JSON")


def test_an_argument_too_long_for_the_form_is_kept_as_it_is_and_the_form_says_so() -> None:
    huge = draft(99 * 3000)
    item = HitlBatchRenderer().items(hitl({"to": "a@x.io", "body": huge}))[0]
    fields = edit_fields(item)
    assert [f["block_id"] for f in fields if f["type"] == "input"] == ["arg:to"]
    assert "runs as it is" in json.dumps(fields)
    view = b.modal(RECORD, "edit:0", "Edit", fields)
    values = submitted_unchanged(view)
    values["arg:to"]["value"]["value"] = "b@x.io"
    assert parse_edit(item, values) == ({"to": "b@x.io", "body": huge}, {})


def test_a_form_default_longer_than_a_field_is_split_and_given_back_whole() -> None:
    default = draft(5200)
    schema = {
        "type": "object",
        "properties": {"letter": {"type": "string", "default": default}, "copies": {"type": "integer"}},
        "required": ["letter"],
    }
    request = Request("Write the letter", schema)
    opened = SchemaRenderer().click(RECORD, request, "answer", {})
    assert isinstance(opened, OpenModal) and validate_view(opened.view) == []
    assert [f["block_id"] for f in inputs(opened.view)] == ["field:letter#part1", "field:letter#part2", "field:copies"]
    value, errors = parse_form(schema, submitted_unchanged(opened.view))
    assert errors == {} and value == {"letter": default}
    emptied = submitted_unchanged(opened.view)
    for key in ("field:letter#part1", "field:letter#part2"):
        emptied[key]["value"]["value"] = None
    assert parse_form(schema, emptied) == (None, {"field:letter#part1": "This is required."})


def test_a_message_shows_what_fits_says_how_much_is_left_and_offers_show_all() -> None:
    question = draft(200_000)
    message = QuestionRenderer().render(RECORD, Request(question), {})
    assert validate_blocks(message.blocks) == [] and len(message.blocks) == 49
    sections = [blk["text"]["text"] for blk in message.blocks if blk["type"] == "section"]
    everything = t.split(t.to_mrkdwn(question))
    assert sections == everything[:45]
    hidden = len(html.unescape("".join(everything[45:])))
    assert f"{hidden:,} more characters of this request are not shown here" in json.dumps(message.blocks)
    (show,) = [e for blk in message.blocks if blk["type"] == "actions" for e in blk["elements"] if "show" in e["value"]]
    assert (show["text"]["text"], b.parse_action_value(show["value"])) == ("Show all", (RECORD, "show:question:1"))

    short = QuestionRenderer().render(RECORD, Request("Short?"), {})
    assert "Show all" not in json.dumps(short.blocks)


def test_show_all_pages_through_the_whole_question_read_only() -> None:
    question = draft(400_000)
    renderer = QuestionRenderer()
    request = Request(question)
    everything = renderer.question_sections(request)
    pages: list[dict[str, Any]] = []
    action = "show:question:1"
    while True:
        view = long.show_all(renderer, RECORD, request, action).view
        assert validate_view(view) == [] and "callback_id" in view
        pages.append(view)
        action = b.parse_action_value(view["private_metadata"])[1]
        if action == "show:question:1":
            break
    assert len(pages) == 2
    assert [p["submit"]["text"] for p in pages] == ["Next part (2 of 2)", "Back to part 1"]
    assert pages[0]["blocks"][0]["elements"][0]["text"].startswith("Part 1 of 2 · 400,000 characters in all")
    shown = [blk["text"]["text"] for p in pages for blk in p["blocks"] if blk["type"] == "section"]
    assert shown == everything and html.unescape("".join(shown)) == question
    assert all(inputs(p) == [] for p in pages)

    single = long.show_all(renderer, RECORD, Request("Short?"), "show:question:1").view
    assert "submit" not in single and single["close"]["text"] == "Close"
    for bad in ("show:question:3", "show:question:0", "show:nothing:1", "show:question:²", "show:question", "show"):
        with pytest.raises(InvalidAction):
            long.show_all(renderer, RECORD, request, bad)


def test_a_json_payload_is_split_into_code_sections_not_cut() -> None:
    value = {"rows": [{"id": i, "name": f"R&D <{i}>", "tags": ["a", "b"]} for i in range(400)]}
    message = JsonRenderer().render(RECORD, Request(value), {})
    assert validate_blocks(message.blocks) == []
    codes = [blk["text"]["text"] for blk in message.blocks if blk["type"] == "section"]
    assert len(codes) > 1 and all(c.startswith("```") and c.endswith("```") and len(c) <= 3000 for c in codes)
    joined = html.unescape("".join(c[3:-3] for c in codes))
    assert joined == json.dumps(value, indent=2, ensure_ascii=False) and "…" not in joined
    assert "Show all" not in json.dumps(message.blocks)


def test_code_shortened_for_a_glance_stays_within_a_section_even_when_escaping_grows_it() -> None:
    shown = b.code("<&>" * 2000)
    assert len(shown) <= 3000 and shown.endswith("…```") and "&am…" not in shown
    glance, hidden = long.code_glance("<&>" * 2000, 2900)
    assert hidden == 6000 - len(html.unescape(glance[3:-4]))


def test_the_decided_view_quotes_a_long_answer_short_and_says_how_much_is_left() -> None:
    answer = draft(10_000)
    hidden = answer_hidden(answer)
    assert 10_000 - 2800 < hidden < 10_000 - 2000 and answer_hidden("short") == 0
    assert quoted("short &") == "&gt; short &amp;"
    line = quoted(answer)
    assert len(line) <= 3000 and line.endswith(f"…\n_{hidden:,} more characters of the answer are not shown here._")
    shown = html.unescape("\n".join(q.removeprefix("&gt; ") for q in line.split("…\n_")[0].split("\n")))
    assert answer.startswith(shown) and len(shown) + hidden == len(answer)
    message = render_decided(
        QuestionRenderer(),
        Request("q?"),
        user_id="U0BOB",
        answer_text=answer,
        decided_at=datetime(2026, 1, 1, tzinfo=UTC),
        progress={},
    )
    assert validate_blocks(message.blocks) == []
    view = long.show_all(QuestionRenderer(), RECORD, Request("q?"), "show:answer:1", answer).view
    sections = [blk["text"]["text"] for blk in view["blocks"] if blk["type"] == "section"]
    assert html.unescape("".join(sections)) == answer
    assert long.more_blocks(RECORD, answer_hidden(answer), long.ANSWER)[1]["elements"][0]["value"] == (
        f"{RECORD}|show:answer:1"
    )
    assert long.more_blocks(RECORD, 0, long.ANSWER) == []


def test_a_form_answer_is_quoted_short_in_the_decided_view() -> None:
    answer = json.dumps({"letter": draft(5000)})
    (line,) = SchemaRenderer().decided_lines(Request("q", {"type": "object"}), answer, {})
    assert len(line) <= 3000 and "more characters of the answer are not shown here" in line
    view = long.show_all(SchemaRenderer(), RECORD, Request("q", {"type": "object"}), "show:answer:1", answer).view
    codes = [blk["text"]["text"] for blk in view["blocks"] if blk["type"] == "section"]
    assert html.unescape("".join(c[3:-3] for c in codes)) == answer


def test_a_review_says_how_much_of_its_arguments_is_left_out_and_show_all_gives_the_whole_request() -> None:
    body = draft(4899)
    request = hitl({"to": "a@x.io", "body": body, "rows": [{"n": i, "s": "<&>" * 20} for i in range(300)]})
    (item,) = HitlBatchRenderer().items(request)
    described = _describe_args(item.args)
    assert len(described) <= 2900 and validate_blocks([b.section(described)]) == []
    assert args_hidden(item.args) > len(body) - 1500 and args_hidden({"to": "a@x.io"}) == 0
    assert long.more_blocks(RECORD, args_hidden(item.args))[1]["elements"][0]["value"] == f"{RECORD}|show:question:1"
    view = long.show_all(HitlBatchRenderer(), RECORD, request, "show:question:1").view
    codes = [blk["text"]["text"] for blk in view["blocks"] if blk["type"] == "section"]
    assert json.loads(html.unescape("".join(c[3:-3] for c in codes))) == request.value


def test_the_answer_modal_shows_the_start_of_a_long_question_and_says_where_the_rest_is() -> None:
    opened = QuestionRenderer().click(RECORD, Request(draft(50_000)), "answer", {})
    assert isinstance(opened, OpenModal) and validate_view(opened.view) == []
    kinds = [blk["type"] for blk in opened.view["blocks"]]
    assert kinds == ["section"] * 5 + ["context", "input"]
    assert "*Show all* on the request's message opens it whole" in json.dumps(opened.view["blocks"])


def test_a_form_question_longer_than_a_message_gets_show_all() -> None:
    question = draft(160_000)
    request = Request({"question": question}, {"type": "string"})
    message = SchemaRenderer().render(RECORD, request, {})
    assert validate_blocks(message.blocks) == [] and len(message.blocks) == 48
    assert "Show all" in json.dumps(message.blocks)
    pages = [long.show_all(SchemaRenderer(), RECORD, request, f"show:question:{n}").view for n in (1,)]
    assert html.unescape("".join(blk["text"]["text"] for blk in pages[0]["blocks"] if blk["type"] == "section")) == (
        question
    )


def test_the_experts_copy_of_a_long_request_keeps_every_section_shown_and_show_all() -> None:
    message = QuestionRenderer().render(RECORD, Request(draft(200_000)), {})
    copy = render_escalated(message, requester="U0ALICE", permalink=None, recent=[("U0ALICE", "hi")], graph="g")
    assert validate_blocks(copy.blocks) == [] and len(copy.blocks) == 50
    assert [blk for blk in copy.blocks if blk["type"] == "section"] == [
        blk for blk in message.blocks if blk["type"] == "section"
    ]
    shown = json.dumps(copy.blocks)
    assert "Show all" in shown and "more characters of this request" in shown and "The first answer wins" in shown
