"""Decided reviews read as what was decided: the arguments each call ran with, what an edit changed, the reason
or response given; escaped and within Slack's limits. And an action without a review config can't be decided."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NotRequired

import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware
from langchain.agents.middleware.human_in_the_loop import Decision, HITLRequest, HITLResponse
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph
from langgraph.prebuilt.interrupt import HumanResponse
from langgraph.types import interrupt
from pydantic import TypeAdapter
from typing_extensions import TypedDict

from bot.dev.fake_openai import Reply, ToolCall
from bot.dev.sandbox.blocks import validate_blocks
from bot.interrupts.base import render_decided
from bot.interrupts.reviews import AgentInboxRenderer, HitlBatchRenderer, ToolApprovalRenderer
from bot.types import Answer, InvalidAction, Request, SlackMessage, Step
from graphs._model import ConfiguredModel, build_time_model
from tests.support.harness import Harness
from tests.support.slack import Message, buttons, containing, from_bot, thread, visible_text, wait_for_message

GENERAL, EXPERTS = "C0GENERAL", "C0EXPERTS"
RECORD = "3f1c0e7e-2d4b-4f7e-9c1a-8b9d0e1f2a3b"
WHEN = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)

# ---- the graphs these tests drive (loaded by the bot as `tests.test_decided_views:<name>`) --------------------

POSTED: list[dict[str, Any]] = []
"""What `post_notice` was called with, in this process."""


@tool
def post_notice(channel: str, text: str, repeat: int) -> str:
    """Post a notice to a channel, `repeat` times."""
    POSTED.append({"channel": channel, "text": text, "repeat": repeat})
    return f"Posted to {channel} {repeat} times."


GATE = {"post_notice": True}
batched = create_agent(
    build_time_model(),
    tools=[post_notice],
    middleware=[ConfiguredModel(), HumanInTheLoopMiddleware(interrupt_on=GATE)],
)
per_call = create_agent(
    build_time_model(),
    tools=[post_notice],
    middleware=[ConfiguredModel(), HumanInTheLoopMiddleware(interrupt_on=GATE, interrupt_mode="per_call")],
)

RECEIVED: list[Any] = []
"""The resume values the hand-written graphs below got back."""


class Ask(TypedDict):
    request: str
    outcome: NotRequired[Any]


def _graph(node: Any) -> Any:
    builder = StateGraph(Ask)
    builder.add_node("review", node)
    builder.add_edge(START, "review")
    builder.add_edge("review", END)
    return builder.compile()


def _inbox_review(state: Ask) -> Ask:
    entry = {"config": {"allow_accept": True, "allow_edit": True, "allow_respond": True, "allow_ignore": True}}
    answer = interrupt([{**entry, "action_request": {"action": name, "args": args}} for name, args in CALLS])
    RECEIVED.append(answer)
    return {"outcome": answer}


def _unconfigured_review(state: Ask) -> Ask:
    request: HITLRequest = {
        "action_requests": [
            {"name": "post_notice", "args": {"channel": "#ops", "text": "Deploy at 5", "repeat": 1}},
            {"name": "drop_table", "args": {"table": "users"}, "description": "Drop a table"},
        ],
        "review_configs": [{"action_name": "post_notice", "allowed_decisions": ["approve", "reject"]}],
    }
    answer = interrupt(request)
    RECEIVED.append(answer)
    return {"outcome": answer}


inbox = _graph(_inbox_review)
unconfigured = _graph(_unconfigured_review)

# ---- four calls, one of each decision ---------------------------------------------------------------------------

CALLS = [
    ("post_notice", {"channel": "#ops", "text": "Deploy at 5pm.\nFreeze starts now.", "repeat": 1}),
    ("post_notice", {"channel": "#eng", "text": "Line one\nLine two", "repeat": 2}),
    ("post_notice", {"channel": "#all", "text": "Hello <!channel>", "repeat": 3}),
    ("post_notice", {"channel": "#help", "text": "Who is on call?", "repeat": 1}),
]
EDITED = {"channel": "#eng", "text": "New first line\nNew second line\n\nSigned, ops", "repeat": 5}
REASON = "Not to everyone: no <!channel> pings. Ask <@U0BOB>."
RESPONSE = "Dan is on call.\nPage him if it's urgent."

APPROVED_VIEW = (
    ":white_check_mark: *{done}* `post_notice` — <@U0BOB>\n"
    "*channel*: #ops\n"
    "*text*:\n"
    "&gt; Deploy at 5pm.\n"
    "&gt; Freeze starts now.\n"
    "*repeat*: `1`"
)
EDITED_VIEW = (
    ":pencil2: *Edited* `post_notice` — <@U0CAROL>\n"
    "*text*, before:\n"
    "&gt; Line one\n"
    "&gt; Line two\n"
    "*text*, now:\n"
    "&gt; New first line\n"
    "&gt; New second line\n"
    "&gt; \n"
    "&gt; Signed, ops\n"
    "*repeat*: `2` → `5`\n"
    "_Unchanged:_ *channel*: #eng"
)
REJECTED_VIEW = (
    ":x: *Rejected* `post_notice` — <@U0BOB>\n"
    "Reason: Not to everyone: no &lt;!channel&gt; pings. Ask &lt;@U0BOB&gt;.\n"
    "_Proposed:_ *channel*: #all · *text*: Hello &lt;!channel&gt; · *repeat*: `3`"
)
RESPONDED_VIEW = (
    ":speech_balloon: *Responded* for `post_notice` — <@U0CAROL>\n"
    "Response:\n"
    "&gt; Dan is on call.\n"
    "&gt; Page him if it's urgent.\n"
    "_Proposed:_ *channel*: #help · *text*: Who is on call? · *repeat*: `1`"
)


@pytest.fixture(autouse=True)
def clean() -> Iterator[None]:
    POSTED.clear()
    RECEIVED.clear()
    yield
    POSTED.clear()
    RECEIVED.clear()


def sections(message: Message | SlackMessage) -> list[str]:
    blocks = message.blocks if isinstance(message, SlackMessage) else message.get("blocks") or []
    return [block["text"]["text"] for block in blocks if block["type"] == "section"]


def assert_readable(message: Message) -> None:
    shown = visible_text(message)
    assert "\\n" not in shown and '{"' not in shown and "<!channel>" not in shown


async def decided(slack: Any, channel: str, root: str, ts: str) -> Message:
    async def find() -> Message | None:
        messages = await (thread(slack, channel, root) if root else slack.history(channel))
        message = next(m for m in messages if m["ts"] == ts)
        return message if not buttons(message) and "Decided by" in visible_text(message) else None

    found: Message = await slack.wait_for(find, timeout=20)
    return found


async def submit_modal(slack: Any, user: str, values: dict[str, str]) -> None:
    await slack.wait_for(lambda: slack.views(user))
    answer = await slack.submit(user, values)
    assert not answer.get("errors"), answer


async def decide_each(slack: Any, channel: str, messages: list[tuple[str, str]], approve: str = "approve") -> None:
    """(ts, key) per call: approve the first, edit the second, reject (or ignore) the third, respond to the last."""
    (ts0, k0), (ts1, k1), (ts2, k2), (ts3, k3) = messages
    await slack.click("U0BOB", channel, ts0, f"lgslack.act:{approve}:{k0}")
    await slack.click("U0CAROL", channel, ts1, f"lgslack.act:edit:{k1}")
    (modal,) = await slack.wait_for(lambda: slack.views("U0CAROL"))
    prefilled = {b["block_id"]: b["element"].get("initial_value") for b in modal["blocks"] if b["type"] == "input"}
    assert prefilled == {"arg:channel": "#eng", "arg:text": "Line one\nLine two", "arg:repeat": "2"}
    await submit_modal(slack, "U0CAROL", {"arg:channel": "#eng", "arg:text": EDITED["text"], "arg:repeat": "5"})
    if approve == "approve":
        await slack.click("U0BOB", channel, ts2, f"lgslack.act:reject:{k2}")
        await submit_modal(slack, "U0BOB", {"lgslack_reason": REASON})
    else:
        await slack.click("U0BOB", channel, ts2, f"lgslack.act:ignore:{k2}")
    await slack.click("U0CAROL", channel, ts3, f"lgslack.act:respond:{k3}")
    await submit_modal(slack, "U0CAROL", {"lgslack_response": RESPONSE})


def script_four_calls(openai: Any) -> None:
    openai.reply(Reply(tool_calls=[ToolCall(name, args) for name, args in CALLS]))
    openai.reply(Reply(content="Done."))


# ---- through Slack -------------------------------------------------------------------------------------------


async def test_a_decided_batch_shows_each_call_as_it_ran(harness: Harness, slack: Any, openai: Any) -> None:
    script_four_calls(openai)
    await harness.start("tests.test_decided_views:batched")
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> post the notices")
    request = await wait_for_message(slack, GENERAL, root, containing("The agent asks for approval"))
    await decide_each(slack, GENERAL, [(request["ts"], str(i)) for i in range(4)])
    await wait_for_message(slack, GENERAL, root, containing("Done."))

    assert sorted(POSTED, key=lambda p: p["channel"]) == [EDITED, CALLS[0][1]]
    assert type(POSTED[0]["repeat"]) is int
    contents = {m["tool_call_id"]: m["content"] for m in openai.requests[1].tool_messages}
    assert contents["call_3"] == f"User rejected the tool call for `post_notice` with reason: {REASON}"
    assert contents["call_4"] == RESPONSE

    message = await decided(slack, GENERAL, root, request["ts"])
    assert sections(message) == [
        ":white_check_mark: *Decided:* Review: post_notice, post_notice, post_notice, post_notice",
        APPROVED_VIEW.format(done="Approved"),
        EDITED_VIEW,
        REJECTED_VIEW,
        RESPONDED_VIEW,
    ]
    assert_readable(message)


async def test_per_call_approvals_each_show_what_ran(harness: Harness, slack: Any, openai: Any) -> None:
    script_four_calls(openai)
    await harness.start("tests.test_decided_views:per_call")
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> post the notices")

    async def requests() -> list[Message] | None:
        found = [m for m in await thread(slack, GENERAL, root) if from_bot(m) and buttons(m)]
        return found if len(found) == 4 else None

    def call_index(message: Message) -> int:
        return next(
            i for i, (_, args) in enumerate(CALLS) if f"*channel*: {args['channel']}\n" in visible_text(message)
        )

    ordered = sorted(await slack.wait_for(requests, timeout=20), key=call_index)
    await decide_each(slack, GENERAL, [(m["ts"], "0") for m in ordered])
    await wait_for_message(slack, GENERAL, root, containing("Done."))

    assert sorted(POSTED, key=lambda p: p["channel"]) == [EDITED, CALLS[0][1]]
    views = [sections(await decided(slack, GENERAL, root, m["ts"]))[1] for m in ordered]
    assert views == [APPROVED_VIEW.format(done="Approved"), EDITED_VIEW, REJECTED_VIEW, RESPONDED_VIEW]
    for m in ordered:
        assert_readable(await decided(slack, GENERAL, root, m["ts"]))


async def test_agent_inbox_responses_show_what_was_decided(harness: Harness, slack: Any) -> None:
    await harness.start("tests.test_decided_views:inbox")
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> review the notices")
    request = await wait_for_message(slack, GENERAL, root, containing("The agent asks for approval"))
    await decide_each(slack, GENERAL, [(request["ts"], str(i)) for i in range(4)], approve="accept")
    await slack.wait_for(lambda: RECEIVED, timeout=20)

    assert RECEIVED == [
        [
            {"type": "accept", "args": None},
            {"type": "edit", "args": {"action": "post_notice", "args": EDITED}},
            {"type": "ignore", "args": None},
            {"type": "response", "args": RESPONSE},
        ]
    ]
    message = await decided(slack, GENERAL, root, request["ts"])
    ignored = ":no_entry_sign: *Ignored* `post_notice` — <@U0BOB>\n" + REJECTED_VIEW.splitlines()[-1]
    assert sections(message)[1:] == [APPROVED_VIEW.format(done="Accepted"), EDITED_VIEW, ignored, RESPONDED_VIEW]
    assert_readable(message)


async def test_an_action_without_a_review_config_cannot_be_decided_but_can_be_cancelled(
    harness: Harness, slack: Any, tmp_path: Path
) -> None:
    config = tmp_path / "bot.toml"
    config.write_text(f'[[routes]]\nname = "reviews"\nkinds = ["hitl"]\nchannel = "{EXPERTS}"\n')
    graph = "tests.test_decided_views:unconfigured"
    await harness.start(graph, environ=harness.environ(graph, BOT_CONFIG=str(config)))
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> tidy up")
    notice = await wait_for_message(slack, GENERAL, root, containing("I asked the experts in <#C0EXPERTS>"))

    async def experts_request() -> Message | None:
        return next((m for m in await slack.history(EXPERTS) if "drop_table" in visible_text(m)), None)

    request = await slack.wait_for(experts_request, timeout=20)
    assert [b["action_id"] for b in buttons(request)] == ["lgslack.act:approve:0", "lgslack.act:reject:0"]
    assert (
        ":no_entry: No decision can be made on this call: the request has no review config for `drop_table`."
        " It stays undecided until the request is cancelled or times out, which rejects it."
    ) in visible_text(request)

    await slack.click("U0BOB", EXPERTS, request["ts"], "lgslack.act:approve:0")
    partly = await slack.wait_for(lambda: _with_text(slack, request["ts"], "*Approved* `post_notice` — <@U0BOB>"))
    assert [b["action_id"] for b in buttons(partly)] == []
    assert RECEIVED == []

    await slack.click("U0ALICE", GENERAL, notice["ts"], "lgslack.act:cancel")
    await slack.wait_for(lambda: RECEIVED, timeout=20)
    reason = "The person who asked cancelled this request (<@U0ALICE>)."
    assert RECEIVED == [{"decisions": [{"type": "reject", "message": reason}, {"type": "reject", "message": reason}]}]
    cancelled = await decided(slack, EXPERTS, "", request["ts"])
    why = "Reason: The person who asked cancelled this request (&lt;@U0ALICE&gt;)."
    assert sections(cancelled)[1:] == [
        f":x: *Rejected* `post_notice`\n{why}\n_Proposed:_ *channel*: #ops · *text*: Deploy at 5 · *repeat*: `1`",
        f":x: *Rejected* `drop_table`\n{why}\n_Proposed:_ *table*: users",
    ]


async def _with_text(slack: Any, ts: str, text: str) -> Message | None:
    message = next(m for m in await slack.history(EXPERTS) if m["ts"] == ts)
    return message if text in visible_text(message) else None


# ---- the renderers, as data ----------------------------------------------------------------------------------


def typed(**fields: str) -> dict[str, Any]:
    return {block: {"value": {"type": "plain_text_input", "value": value}} for block, value in fields.items()}


def hitl(*calls: tuple[str, dict[str, Any]]) -> Request:
    every = ["approve", "edit", "reject", "respond"]
    return Request(
        {
            "action_requests": [{"name": name, "args": args} for name, args in calls],
            "review_configs": [{"action_name": name, "allowed_decisions": every} for name in dict(calls)],
        }
    )


def progress_of(*steps: Step, user: str = "U0BOB") -> dict[str, Any]:
    return {
        s.key: {"decision": s.decision, "text": s.text, "user": user, "verdict": s.verdict.as_dict()} for s in steps
    }


def view(renderer: Any, request: Request, answer: Answer, progress: dict[str, Any] | None = None) -> SlackMessage:
    return render_decided(
        renderer,
        request,
        user_id="U0BOB",
        answer_text=answer.text,
        decided_at=WHEN,
        progress=progress or {},
        resume_value=answer.value,
    )


def test_the_decisions_built_are_langchains_own() -> None:
    request = hitl(*CALLS)
    renderer = HitlBatchRenderer()
    steps = [
        renderer.click(RECORD, request, "approve:0", {}),
        renderer.submit(request, "edit:1", typed(**{f"arg:{k}": str(v) for k, v in EDITED.items()}), {}),
        renderer.submit(request, "reject:2", typed(lgslack_reason=REASON), {}),
        renderer.submit(request, "respond:3", typed(lgslack_response=RESPONSE), {}),
    ]
    assert all(isinstance(s, Step) for s in steps)
    answer = renderer.complete(request, progress_of(*steps))  # type: ignore[arg-type]
    assert answer is not None
    assert answer.value == {
        "decisions": [
            {"type": "approve"},
            {"type": "edit", "edited_action": {"name": "post_notice", "args": EDITED}},
            {"type": "reject", "message": REASON},
            {"type": "respond", "message": RESPONSE},
        ]
    }
    assert TypeAdapter(HITLResponse).validate_python(answer.value) == answer.value
    decision = TypeAdapter(Decision)
    no_reason = renderer.submit(request, "reject:0", typed(lgslack_reason=""), {})
    assert isinstance(no_reason, Step) and decision.validate_python(no_reason.decision) == {"type": "reject"}
    approval = Request({"type": "tool_approval", "tool_call_id": "c1", "name": "post_notice", "args": CALLS[0][1]})
    single = ToolApprovalRenderer().click(RECORD, approval, "approve:0", {})
    assert isinstance(single, Step) and decision.validate_python(single.decision) == {"type": "approve"}
    inbox_step = AgentInboxRenderer().click(
        RECORD,
        Request([{"action_request": {"action": "a", "args": {}}, "config": {"allow_ignore": True}}]),
        "ignore:0",
        {},
    )
    assert isinstance(inbox_step, Step)
    assert TypeAdapter(HumanResponse).validate_python(inbox_step.decision) == {"type": "ignore", "args": None}
    with pytest.raises(InvalidAction):
        renderer.click(RECORD, Request({**request.value, "review_configs": []}), "approve:0", {})


def test_a_hitl_request_allows_only_langchains_decisions() -> None:
    request = Request(
        {
            "action_requests": [{"name": "x", "args": {}}],
            "review_configs": [{"action_name": "x", "allowed_decisions": ["approve", "ignore", "accept"]}],
        }
    )
    assert HitlBatchRenderer().items(request)[0].allowed == ("approve",)
    with pytest.raises(InvalidAction):
        HitlBatchRenderer().click(RECORD, request, "ignore:0", {})


def test_an_unconfigured_action_has_no_buttons_and_no_approve_all() -> None:
    request = Request(
        {
            "action_requests": [{"name": "post_notice", "args": {"repeat": 1}}, {"name": "drop_table", "args": {}}],
            "review_configs": [{"action_name": "post_notice", "allowed_decisions": ["approve", "edit"]}],
        }
    )
    renderer = HitlBatchRenderer()
    assert [item.allowed for item in renderer.items(request)] == [("approve", "edit"), ()]
    message = renderer.render(RECORD, request, {})
    ids = [e["action_id"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]]
    assert ids == ["lgslack.act:approve:0", "lgslack.act:edit:0"]
    for verb in ("approve", "edit", "reject", "respond"):
        with pytest.raises(InvalidAction):
            renderer.click(RECORD, request, f"{verb}:1", {})
    with pytest.raises(InvalidAction):
        renderer.click(RECORD, request, "approve_all", {})
    declined = renderer.decline(request, "Timed out.")
    assert declined is not None
    assert declined.value == {"decisions": [{"type": "reject", "message": "Timed out."}] * 2}


def test_approve_all_and_a_decline_show_from_the_resume_value() -> None:
    request = hitl(*CALLS[:2])
    renderer = HitlBatchRenderer()
    approved = renderer.click(RECORD, request, "approve_all", {})
    assert isinstance(approved, Answer)
    assert sections(view(renderer, request, approved))[1:] == [
        APPROVED_VIEW.format(done="Approved").replace(" — <@U0BOB>", ""),
        ":white_check_mark: *Approved* `post_notice`\n*channel*: #eng\n*text*:\n&gt; Line one\n&gt; Line two\n"
        "*repeat*: `2`",
    ]
    edit = renderer.submit(request, "edit:1", typed(**{f"arg:{k}": str(v) for k, v in EDITED.items()}), {})
    assert isinstance(edit, Step)
    declined = renderer.decline(request, "Nobody answered\nin time.")
    assert declined is not None
    shown = sections(view(renderer, request, declined, progress_of(edit, user="U0CAROL")))
    assert shown[2] == (
        ":x: *Rejected* `post_notice`\nReason:\n&gt; Nobody answered\n&gt; in time.\n"
        "_Proposed:_ *channel*: #eng · *text*: _(17 characters)_ · *repeat*: `2`"
    )
    mixed = renderer.click(RECORD, request, "approve_all", progress_of(edit, user="U0CAROL"))
    assert isinstance(mixed, Answer)
    assert sections(view(renderer, request, mixed, progress_of(edit, user="U0CAROL")))[2] == EDITED_VIEW


def test_a_decided_view_without_the_resume_value_reads_the_recorded_steps() -> None:
    request = hitl(*CALLS[:1])
    renderer = HitlBatchRenderer()
    step = renderer.click(RECORD, request, "approve:0", {})
    assert isinstance(step, Step)
    answer = renderer.complete(request, progress_of(step))
    assert answer is not None and answer.text == "Approved post_notice"
    message = render_decided(
        renderer, request, user_id="U0BOB", answer_text=answer.text, decided_at=WHEN, progress=progress_of(step)
    )
    assert sections(message)[1] == APPROVED_VIEW.format(done="Approved")


def test_long_values_are_cut_with_a_count_and_every_view_fits_slack() -> None:
    essay = "\n".join(f"Paragraph {i}: " + "words " * 30 for i in range(40))
    nested = {"tags": [f"t{i}" for i in range(300)], "note": "a\nb"}
    calls = [(f"tool_{i}", {"text": essay, "data": nested, "n": i}) for i in range(60)]
    request = hitl(*calls)
    renderer = HitlBatchRenderer()
    approved = renderer.click(RECORD, request, "approve_all", {})
    assert isinstance(approved, Answer)
    message = view(renderer, request, approved)
    assert len(message.blocks) == 50 and validate_blocks(message.blocks) == []
    assert all(len(text) <= 3000 for text in sections(message))
    first = sections(message)[1]
    left = len(essay) - len("\n".join(essay.splitlines()[:15])[:700])
    assert f"… ({left:,} more characters)" in first
    assert "```tags:\n  - t0\n  - t1\n" in first and "note: |\n  a\n  b" not in first
    assert message.blocks[-2] == {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": "… and 13 more not shown."}],
    }

    one = hitl(calls[0])
    edited = {"text": essay.replace("Paragraph 0:", "Paragraph zero:"), "data": nested, "n": 7}
    edit = Answer({"decisions": [{"type": "edit", "edited_action": {"name": "tool_0", "args": edited}}]}, "Edited")
    edited_view = view(renderer, one, edit)
    assert validate_blocks(edited_view.blocks) == []
    (_, change) = sections(edited_view)
    assert len(change) <= 3000 and change.count("more characters)") == 2
    assert change.startswith(":pencil2: *Edited* `tool_0`\n*text*, before:\n&gt; Paragraph 0: words")
    assert "*text*, now:\n&gt; Paragraph zero: words" in change
    size = len(json.dumps(nested))
    assert change.endswith(f"*n*: `0` → `7`\n_Unchanged:_ *data*: _({size:,} characters)_")


def test_payload_text_cannot_ping_from_a_decided_view() -> None:
    request = hitl(("notify <!here>", {"who": "<@U0CAROL>", "text": "<!channel>\n<!everyone>"}))
    renderer = HitlBatchRenderer()
    response = renderer.submit(request, "respond:0", typed(lgslack_response="<!subteam^S0EXPERTS> <@U0ALICE>"), {})
    assert isinstance(response, Step)
    answer = renderer.complete(request, progress_of(response))
    assert answer is not None
    dumped = json.dumps(view(renderer, request, answer, progress_of(response)).as_dict())
    for ping in ("<!here>", "<@U0CAROL>", "<!channel>", "<!everyone>", "<!subteam", "<@U0ALICE>"):
        assert ping not in dumped
    assert "<@U0BOB>" in dumped
