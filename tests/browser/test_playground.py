"""The playground in a real browser: what a new user does in the first minutes, clicked through the web page.

Each test takes the screenshots under docs/ that the README and docs/playground.md show.
"""

from __future__ import annotations

import importlib.util

import pytest

pytest.importorskip("playwright")

from playwright.async_api import Page, expect

from bot.dev.playground import Playground
from tests.browser.pages import (
    act_as,
    choose_graph,
    find_message,
    message,
    open_channel,
    screenshot,
    send,
    thread_pane,
)

GENERAL, EXPERTS = "C0GENERAL", "C0EXPERTS"


def buttons_of(data: dict[str, object]) -> list[str]:
    return [
        element["text"]["text"]
        for block in data.get("blocks") or []  # type: ignore[attr-defined]
        if block.get("type") == "actions"
        for element in block.get("elements", [])
        if element.get("type") == "button"
    ]


async def test_hello_gets_the_demo_models_answer_in_a_thread(page: Page, playground: Playground) -> None:
    await expect(page.locator("#model-label")).to_have_text("Model: offline demo model")
    await expect(page.locator("#channel-title")).to_contain_text("general")
    await expect(page.locator("#graph-select")).to_have_value("graphs.assistant:graph")
    intro = page.locator(".intro")
    await expect(intro).to_contain_text("New conversations here run assistant: ")
    await expect(intro).not_to_contain_text("[object")

    await send(page, "@agent hello")
    # The demo model takes a moment: meanwhile the thread shows the agent's status (assistant.threads.setStatus).
    working = "(el => !el.hidden && el.textContent === 'agent is thinking…')(document.querySelector('#thread-working'))"
    await page.wait_for_function(working, polling="raf")

    mine = message(page.locator("#message-list"), "hello", bot=False)
    await expect(mine.locator(".mention")).to_have_text("@agent")
    answer = message(thread_pane(page), "offline demo model", bot=True)
    await expect(answer).to_be_visible()
    await expect(answer).to_contain_text("You said: “hello”")
    await expect(answer.locator("b")).to_have_text("offline demo model")  # **bold** arrived as mrkdwn *bold*
    await expect(mine.locator(".thread-summary")).to_contain_text("1 reply")
    await expect(page.locator("#thread-working")).to_be_hidden()
    await expect(page.locator("#channel-working")).to_be_hidden()


async def test_revising_a_text_in_a_prefilled_modal(page: Page, playground: Playground) -> None:
    await choose_graph(page, playground, GENERAL, "graphs.revise_text:graph")
    await expect(page.locator(".intro")).to_contain_text("revise_text")

    await send(page, "@agent teh first draft")
    question = message(thread_pane(page), "teh first draft", bot=True)
    await question.get_by_role("button", name="Edit").click()

    modal = page.get_by_role("dialog")
    await expect(modal.locator("#modal-title")).to_have_text("Revise the text")
    text = modal.get_by_role("textbox")
    await expect(text).to_have_value("teh first draft")
    await text.fill("The first draft, revised.")
    await screenshot(page, "playground-modal.png")

    await text.fill("")
    await modal.get_by_role("button", name="Send").click()
    await expect(modal.locator(".input-error")).to_have_text("Please complete this required field.")
    await text.fill("   ")
    await modal.get_by_role("button", name="Send").click()
    await expect(modal.locator(".input-error")).to_have_text("Write an answer before sending.")
    await expect(modal.locator(".block-input.has-error")).to_have_count(1)

    await text.fill("The first draft, revised.")
    await modal.get_by_role("button", name="Send").click()
    await expect(modal).to_be_hidden()

    decided = message(thread_pane(page), "Answered by", bot=True)
    await expect(decided).to_contain_text("The first draft, revised.")
    await expect(decided.get_by_role("button")).to_have_count(0)
    await expect(decided.locator(".edited")).to_be_visible()
    result = thread_pane(page).locator(".msg[data-kind='bot'] .msg-content").last
    await expect(result).to_have_text("The first draft, revised.")


async def test_bob_answers_a_question_the_agent_asked_for_alice(page: Page, playground: Playground) -> None:
    await choose_graph(page, playground, GENERAL, "graphs.chatbot:graph")
    await send(page, "@agent ask an expert: which database should we use?")
    root = find_message(playground, lambda m: "which database" in m.get("text", "") and m.get("user") == "U0ALICE")
    assert root is not None
    _, asked = root

    # The question shows up where the bot puts it: in alice's thread, or escalated to #experts.
    def is_question(m: dict[str, object]) -> bool:
        return m.get("bot_id") is not None and "Answer" in buttons_of(m) and "which database" in str(m.get("blocks"))

    for _ in range(200):
        found = find_message(playground, is_question)
        if found:
            break
        await page.wait_for_timeout(50)
    assert found, "the agent never asked"
    channel, question = found

    await act_as(page, "bob")
    await open_channel(page, channel)
    if question.get("thread_ts") and question["thread_ts"] != question["ts"]:
        parent = page.locator(f"#message-list .msg[data-ts='{question['thread_ts']}']")
        await parent.locator(".thread-summary").click()
        where = thread_pane(page)
    else:
        where = page.locator("#message-list")
    shown = where.locator(f".msg[data-ts='{question['ts']}']")
    await expect(shown).to_contain_text("which database should we use?")
    await screenshot(page, "playground-question.png")

    await shown.get_by_role("button", name="Answer").click()
    modal = page.get_by_role("dialog")
    await modal.get_by_role("textbox").fill("PostgreSQL: it already runs the checkpoints and the job queue.")
    await modal.get_by_role("button", name="Send").click()
    await expect(modal).to_be_hidden()
    await expect(shown).to_contain_text("Answered by @bob")

    await act_as(page, "alice")
    await open_channel(page, GENERAL)
    await page.locator(f"#message-list .msg[data-ts='{asked['ts']}'] .thread-summary").click()
    reply = message(thread_pane(page), "A person answered", bot=True)
    await expect(reply).to_contain_text("PostgreSQL: it already runs the checkpoints and the job queue.")


@pytest.mark.skipif(importlib.util.find_spec("graphs.approvals") is None, reason="graphs.approvals not yet available")
async def test_approving_an_email_the_agent_wants_to_send(page: Page, playground: Playground) -> None:
    from graphs.tools import OUTBOX

    await choose_graph(page, playground, GENERAL, "graphs.approvals:graph")
    await send(page, "@agent what's the weather in Boston?")
    await expect(message(thread_pane(page), "It's rainy!", bot=True)).to_be_visible()

    before = len(OUTBOX)
    await send(page, "@agent send an email to bob@example.com about lunch")
    request = message(thread_pane(page), "send_email", bot=True)
    approve = request.get_by_role("button", name="Approve")
    await expect(approve).to_be_visible()
    await expect(request.get_by_role("button", name="Reject")).to_be_visible()
    await screenshot(page, "playground-approval.png")
    assert len(OUTBOX) == before, "nothing is sent before a person approves"

    await approve.click()
    await expect(message(thread_pane(page), "Done: Email sent to bob@example.com", bot=True)).to_be_visible()
    await expect(request).to_contain_text("Approved")
    await expect(request.get_by_role("button", name="Approve")).to_have_count(0)
    assert OUTBOX[-1]["to"] == "bob@example.com"


SHOWCASE = [
    {"type": "header", "text": {"type": "plain_text", "text": "Weekly report :bar_chart:", "emoji": True}},
    {
        "type": "section",
        "text": {
            "type": "mrkdwn",
            "text": "*Bold*, _italic_, ~struck~, `code`, <https://example.com|a link>, "
            "<javascript:alert(1)|not a link>, <@U0BOB>, <#C0EXPERTS>, "
            "<!date^1700000000^{date_short}|Nov 14, 2023> and &lt;b&gt;not html&lt;/b&gt; "
            "<img src=x onerror=alert(1)>",
        },
        "fields": [
            {"type": "mrkdwn", "text": "*Owner*\nalice"},
            {"type": "mrkdwn", "text": "*Status*\n:large_green_circle: on track"},
        ],
        "accessory": {"type": "button", "action_id": "details", "text": {"type": "plain_text", "text": "Details"}},
    },
    {"type": "context", "elements": [{"type": "mrkdwn", "text": "Updated by <@U0CAROL>"}]},
    {"type": "divider"},
    {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "action_id": "ok",
                "style": "primary",
                "text": {"type": "plain_text", "text": "Ship it"},
            },
            {"type": "button", "action_id": "no", "style": "danger", "text": {"type": "plain_text", "text": "Stop"}},
            {"type": "button", "action_id": "later", "text": {"type": "plain_text", "text": "Later"}},
        ],
    },
    {"type": "markdown", "text": "## Notes\n- **first** point\n- second, see [docs](https://example.com/docs)"},
    {
        "type": "rich_text",
        "elements": [
            {
                "type": "rich_text_list",
                "style": "ordered",
                "elements": [
                    {
                        "type": "rich_text_section",
                        "elements": [{"type": "text", "text": "rich one", "style": {"bold": True}}],
                    },
                    {
                        "type": "rich_text_section",
                        "elements": [{"type": "emoji", "name": "tada"}, {"type": "text", "text": " two"}],
                    },
                ],
            },
            {"type": "rich_text_preformatted", "elements": [{"type": "text", "text": "print('hi')"}]},
        ],
    },
    {
        "type": "image",
        "image_url": "data:image/svg+xml;base64,PHN2ZyB4bWxucz0naHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmcnIHdpZHRoPSczMjAn"
        "IGhlaWdodD0nODAnPjxyZWN0IHdpZHRoPSczMjAnIGhlaWdodD0nODAnIGZpbGw9JyM0YTE1NGInLz48L3N2Zz4=",
        "alt_text": "a purple banner",
        "title": {"type": "plain_text", "text": "Banner"},
    },
]


async def test_block_kit_ephemerals_streams_and_status_render_safely(page: Page, playground: Playground) -> None:
    sandbox = playground.sandbox
    assert sandbox is not None
    general = sandbox.channel(GENERAL)
    posted = sandbox.post_as_bot(general, text="Weekly report", blocks=SHOWCASE)
    shown = page.locator(f"#message-list .msg[data-ts='{posted.ts}']")

    await expect(shown.locator(".block-header")).to_have_text("Weekly report 📊")
    section = shown.locator(".block-section .section-text")
    await expect(section.locator("b").first).to_have_text("Bold")
    await expect(section.locator("i")).to_have_text("italic")
    await expect(section.locator("s")).to_have_text("struck")
    await expect(section.locator("code")).to_have_text("code")
    await expect(section.locator("a")).to_have_count(1)
    await expect(section.locator("a")).to_have_attribute("href", "https://example.com")
    await expect(section).to_contain_text("not a link")
    await expect(section).to_contain_text("@bob")
    await expect(section).to_contain_text("#experts")
    await expect(section).to_contain_text("Nov 14, 2023")
    await expect(section).to_contain_text("<b>not html</b>")
    await expect(section.locator("img")).to_have_count(0)
    await expect(shown.locator(".section-fields .mrkdwn")).to_have_count(2)
    await expect(shown.locator(".section-accessory").get_by_role("button", name="Details")).to_be_visible()
    await expect(shown.locator(".block-context")).to_contain_text("Updated by @carol")
    await expect(shown.locator(".block-divider")).to_have_count(1)
    await expect(shown.locator(".btn.primary")).to_have_text("Ship it")
    await expect(shown.locator(".btn.danger")).to_have_text("Stop")
    await expect(shown.locator(".block-markdown .md-h")).to_have_text("Notes")
    await expect(shown.locator(".block-markdown li b")).to_have_text("first")
    await expect(shown.locator(".rich-text ol li")).to_have_count(2)
    await expect(shown.locator(".rich-text pre")).to_have_text("print('hi')")
    await expect(shown.locator(".block-image img")).to_have_attribute("alt", "a purple banner")
    await screenshot(page, "playground-blocks.png")

    await shown.get_by_role("button", name="Ship it").click()
    clicks = [d for d in sandbox.deliveries() if d["type"] == "block_actions" and d["action_id"] == "ok"]
    assert [(d["user"], d["channel"]) for d in clicks] == [("U0ALICE", GENERAL)]

    root = sandbox.post("U0ALICE", GENERAL, "a thread for the stream")
    parent = page.locator(f"#message-list .msg[data-ts='{root}']")
    await parent.hover()
    await parent.get_by_role("button", name="Reply in thread").click()
    sandbox.set_status(GENERAL, root, "is thinking…")
    await expect(page.locator("#thread-working")).to_have_text("agent is thinking…")
    stream = sandbox.start_stream(general, root, markdown_text="Streaming **starts**")
    streamed = thread_pane(page).locator(f".msg[data-ts='{stream.ts}']")
    await expect(streamed.locator(".stream-caret")).to_be_visible()
    sandbox.append_stream(general, stream.ts, markdown_text=" and grows")
    await expect(streamed).to_contain_text("Streaming starts and grows")
    sandbox.stop_stream(general, stream.ts, markdown_text=".")
    sandbox.set_status(GENERAL, root, "")
    await expect(streamed.locator(".stream-caret")).to_have_count(0)
    await expect(streamed.locator(".msg-content b")).to_have_text("starts")
    await expect(page.locator("#thread-working")).to_be_hidden()

    sandbox.post_ephemeral(general, "U0ALICE", text="Only you can see *this*.", thread_ts=root)
    note = thread_pane(page).locator(".msg.ephemeral")
    await expect(note).to_contain_text("Only visible to you")
    await expect(note.locator("b")).to_have_text("this")
    await act_as(page, "bob")
    await expect(thread_pane(page).locator(".msg.ephemeral")).to_have_count(0)
    await act_as(page, "alice")
    await note.get_by_role("button", name="Dismiss message").click()
    await expect(note).to_have_count(0)
    assert await page.evaluate("typeof window.__xss") == "undefined"
