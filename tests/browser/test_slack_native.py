"""What the bot does beyond plain messages, as the playground's page shows it: answers streamed as they are
written, the thread's live status, the assistant pane with its suggested prompts, the App Home inbox, and the
`/agent` slash command. Every wait is for a condition on the page, never a fixed time."""

from __future__ import annotations

import itertools

import pytest

pytest.importorskip("playwright")

from playwright.async_api import Locator, Page, expect

from bot.dev.playground import Playground
from tests.browser.pages import act_as, choose_graph, message, open_channel, screenshot, send, thread_pane

GENERAL, EXPERTS = "C0GENERAL", "C0EXPERTS"
STATUS = "#thread-working"


async def texts_while_streaming(page: Page, selector: str) -> list[str]:
    """The texts a streaming message showed, frame by frame, until it stopped streaming (collected in the page)."""
    return await page.evaluate(
        """(selector) => new Promise((resolve) => {
            const seen = [];
            const tick = () => {
              const el = document.querySelector(selector);
              if (el) {
                const text = el.querySelector('.msg-content')?.textContent || '';
                if (seen[seen.length - 1] !== text) seen.push(text);
                if (!el.classList.contains('streaming')) return resolve(seen);
              }
              requestAnimationFrame(tick);
            };
            tick();
        })""",
        selector,
    )


async def test_an_answer_streams_into_the_thread_as_it_is_written(page: Page, playground: Playground) -> None:
    await send(page, "@agent hello")
    streaming = "#thread .msg[data-kind='bot'].streaming"
    await page.wait_for_selector(streaming)
    await expect(page.locator(f"{streaming} .stream-caret")).to_be_visible()
    await screenshot(page, "playground-streaming.png")
    seen = await texts_while_streaming(page, "#thread .msg[data-kind='bot']:last-child")
    assert len(seen) >= 3, f"the answer arrived in {len(seen)} step(s): {seen}"
    assert all(later.startswith(earlier.rstrip()[:20]) for earlier, later in itertools.pairwise(seen))
    answer = message(thread_pane(page), "offline demo model", bot=True)
    await expect(answer).to_contain_text("You said: “hello”")
    await expect(answer.locator(".stream-caret")).to_have_count(0)
    await expect(answer.locator("b")).to_have_text("offline demo model")
    await expect(thread_pane(page).locator(".msg[data-kind='bot']")).to_have_count(1)  # posted once


def status_is(text: str) -> str:
    return f"(el => !el.hidden && el.textContent === {text!r})(document.querySelector('{STATUS}'))"


@pytest.mark.parametrize("playground_env", [{"APPROVERS": "U0BOB"}])
async def test_the_thread_says_what_the_agent_is_doing_until_it_answers(page: Page, playground: Playground) -> None:
    status = page.locator(STATUS)
    await send(page, "@agent what's the weather in Boston?")
    await page.wait_for_function(status_is("agent is thinking…"), polling="raf")
    await expect(message(thread_pane(page), "Weather in Boston", bot=True)).to_be_visible()
    await expect(status).to_be_hidden()

    # A request left waiting: the thread says for whom, until that person decides and the agent answers.
    await choose_graph(page, playground, GENERAL, "graphs.approvals:graph")
    await send(page, "@agent send an email to bob@example.com about lunch")
    await page.wait_for_function(status_is("agent is waiting for @bob's approval"), polling="raf")
    await screenshot(page, "playground-status.png")
    await act_as(page, "bob")
    await message(thread_pane(page), "send_email", bot=True).get_by_role("button", name="Approve").click()
    await expect(message(thread_pane(page), "Done: Email sent to bob@example.com", bot=True)).to_be_visible()
    await expect(status).to_be_hidden()


async def test_the_assistant_pane_offers_prompts_that_start_a_conversation(page: Page, playground: Playground) -> None:
    await page.get_by_role("button", name="Ask the agent").click()
    pane = thread_pane(page)
    await expect(pane).to_have_attribute("data-assistant", "1")
    await expect(page.locator("#thread-title")).to_have_text("New chat")
    chips = page.locator("#thread-prompts .chip")
    await expect(chips.first).to_be_visible()
    await expect(page.locator("#thread-prompts")).to_contain_text("Try asking:")
    await expect(chips.filter(has_text="What's the weather in Boston?")).to_have_count(1)
    await screenshot(page, "playground-assistant.png")

    await chips.filter(has_text="What's the weather in Boston?").click()
    await expect(message(pane, "What's the weather in Boston?", bot=False)).to_be_visible()
    await expect(page.locator("#thread-title")).to_have_text("What's the weather in Boston?")
    await expect(page.locator("#thread-prompts")).to_be_hidden()
    await expect(message(pane, "Weather in Boston", bot=True)).to_be_visible()
    await expect(page.locator(STATUS)).to_be_hidden()


async def open_home(page: Page) -> Locator:
    """Open the app (under Apps in the sidebar) on its Home tab, which delivers app_home_opened."""
    await page.locator("#app-list .side-item").click()
    await page.locator("#app-tabs [data-tab='home']").click()
    await page.wait_for_selector("body[data-tab='home']")
    return page.locator("#home")


@pytest.mark.parametrize("playground_env", [{"APPROVERS": "U0BOB"}])
async def test_app_home_lists_what_waits_and_its_buttons_decide(page: Page, playground: Playground) -> None:
    from graphs.tools import OUTBOX

    await choose_graph(page, playground, GENERAL, "graphs.approvals:graph")
    await send(page, "@agent send an email to bob@example.com about lunch")
    request = message(thread_pane(page), "send_email", bot=True)
    await expect(request.get_by_role("button", name="Approve")).to_be_visible()

    # alice's Home: her request, waiting on bob (only bob may approve).
    home = await open_home(page)
    await expect(home).to_contain_text("Your requests waiting on others")
    await expect(home).to_contain_text("send_email")
    await expect(home).to_contain_text("waiting for @bob")
    await expect(home.get_by_role("button", name="Approve")).to_have_count(0)

    # bob's Home: the same request with its buttons; Approve there acts like the one in the thread.
    await act_as(page, "bob")
    home = await open_home(page)
    await expect(home).to_contain_text("Waiting for you")
    await expect(home.get_by_role("button", name="Approve")).to_be_visible()
    await expect(home.get_by_role("button", name="Reject")).to_be_visible()
    await screenshot(page, "playground-home.png")
    before = len(OUTBOX)
    await home.get_by_role("button", name="Approve").click()
    await expect(home.get_by_role("button", name="Approve")).to_have_count(0)
    for _ in range(200):  # the approved run goes on in a worker
        if len(OUTBOX) > before:
            break
        await page.wait_for_timeout(50)
    assert [mail["to"] for mail in OUTBOX[before:]] == ["bob@example.com"]

    # alice's Home was published again when bob decided: nothing of hers waits any more.
    await act_as(page, "alice")
    await expect(page.locator("body")).to_have_attribute("data-tab", "home")
    await expect(home).to_contain_text("Your requests waiting on others")
    await expect(home).not_to_contain_text("send_email")
    await open_channel(page, GENERAL)
    await expect(home).to_be_hidden()
    await expect(message(page.locator("#message-list"), "send an email", bot=False)).to_be_visible()


async def test_the_agent_slash_command_answers_only_me(page: Page, playground: Playground) -> None:
    box = page.locator("#composer textarea")
    await box.fill("/agent help")
    await expect(page.locator("#composer-hint")).to_contain_text("Slash command")
    await box.press("Enter")
    note = page.locator("#message-list .msg.ephemeral").filter(has_text="The agent in Slack.")
    await expect(note).to_contain_text("Only visible to you")
    await expect(note).to_contain_text("/agent pending")
    await expect(box).to_have_value("")

    await choose_graph(page, playground, GENERAL, "graphs.approvals:graph")
    await send(page, "@agent send an email to bob@example.com about lunch")
    approve = message(thread_pane(page), "send_email", bot=True).get_by_role("button", name="Approve")
    await expect(approve).to_be_visible()
    await send(page, "/agent pending")
    pending = page.locator("#message-list .msg.ephemeral").filter(has_text="waiting for you")
    await expect(pending).to_contain_text("send_email")

    await send(page, "/agent cancel")
    listed = page.locator("#message-list .msg.ephemeral").filter(has=page.get_by_role("button", name="Cancel it"))
    await expect(listed).to_be_visible()
    await screenshot(page, "playground-command.png")
    await listed.get_by_role("button", name="Cancel it").click()
    await expect(page.locator("#message-list .msg.ephemeral").filter(has_text="Cancelled")).to_be_visible()
    await expect(approve).to_have_count(0)

    await act_as(page, "bob")
    await expect(page.locator("#message-list .msg.ephemeral")).to_have_count(0)


async def test_a_modal_left_open_does_not_come_back_on_reload(page: Page, playground: Playground) -> None:
    assert playground.sandbox is not None
    await choose_graph(page, playground, GENERAL, "graphs.revise_text:graph")
    await send(page, "@agent teh first draft")
    await message(thread_pane(page), "teh first draft", bot=True).get_by_role("button", name="Edit").click()
    modal = page.get_by_role("dialog")
    await expect(modal).to_be_visible()

    await page.reload()
    await page.wait_for_selector("body[data-ready='1']")
    await expect(page.locator("#message-list .msg").first).to_be_visible()
    await expect(modal).to_have_count(0)
    for _ in range(100):
        if not playground.sandbox.views("U0ALICE"):
            break
        await page.wait_for_timeout(50)
    assert playground.sandbox.views("U0ALICE") == []

    # The request is still there, and opens a fresh modal; closing it keeps it closed across a reload too.
    await open_channel(page, GENERAL)
    root = page.locator("#message-list .msg").filter(has_text="teh first draft").first
    await root.locator(".thread-summary").click()
    await message(thread_pane(page), "teh first draft", bot=True).get_by_role("button", name="Edit").click()
    await expect(modal.get_by_role("textbox")).to_have_value("teh first draft")
    await modal.get_by_role("button", name="Close").click()
    await expect(modal).to_have_count(0)
    await page.reload()
    await page.wait_for_selector("body[data-ready='1']")
    await expect(page.locator("#message-list .msg").first).to_be_visible()
    await expect(modal).to_have_count(0)
