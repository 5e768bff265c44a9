"""Acting on the playground's page like a person, and reading what it shows."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

from playwright.async_api import Locator, Page

from bot.dev.playground import Playground

# The pictures the README shows are rewritten only by `make pictures`; a test run writes its own elsewhere.
DOCS = (
    Path(__file__).resolve().parents[2] / "docs"
    if os.environ.get("UPDATE_DOCS_PICTURES")
    else Path(tempfile.gettempdir()) / "lgslack-pictures"
)
PEOPLE = {"alice": "U0ALICE", "bob": "U0BOB", "carol": "U0CAROL"}


async def act_as(page: Page, name: str) -> None:
    """Switch the person the page acts as."""
    await page.select_option("#acting-user", PEOPLE[name])
    await page.wait_for_selector(f"body[data-me='{PEOPLE[name]}']")


async def open_channel(page: Page, channel_id: str) -> None:
    await page.locator(f".side-item[data-channel='{channel_id}']").click()
    await page.wait_for_selector(f"body[data-channel='{channel_id}']")


async def choose_graph(page: Page, playground: Playground, channel_id: str, graph: str) -> None:
    """Pick the channel's graph in the header, and wait until the bot's store has it."""
    await page.select_option("#graph-select", graph)
    assert playground.chooser is not None
    for _ in range(100):
        if await playground.chooser.current(channel_id) == graph:
            return
        await page.wait_for_timeout(50)
    raise AssertionError(f"{channel_id} did not switch to {graph}")


async def send(page: Page, text: str, *, thread: bool = False) -> None:
    """Type into the channel's (or the open thread's) composer and press Enter."""
    box = page.locator("#thread-composer textarea" if thread else "#composer textarea")
    await box.fill(text)
    await box.press("Enter")
    await page.wait_for_function("(box) => box.value === ''", arg=await box.element_handle())


def thread_pane(page: Page) -> Locator:
    return page.locator("#thread")


def message(scope: Page | Locator, text: str, *, bot: bool | None = None) -> Locator:
    """Messages in `scope` showing `text` (only the bot's, or only people's, when `bot` says so)."""
    selector = ".msg" if bot is None else f".msg[data-kind='{'bot' if bot else 'person'}']"
    return scope.locator(selector).filter(has_text=re.compile(re.escape(text)))


async def screenshot(page: Page, name: str) -> Path:
    """Save a 1280x800 screenshot under DOCS (docs/ with `make pictures`)."""
    DOCS.mkdir(parents=True, exist_ok=True)
    path = DOCS / name
    await page.evaluate("document.querySelector('#toasts').replaceChildren()")
    await page.wait_for_timeout(150)  # let the last frame (and fonts) settle
    await page.screenshot(path=str(path), animations="disabled", caret="hide")
    return path


def find_message(playground: Playground, predicate: Any) -> tuple[str, dict[str, Any]] | None:
    """The first message in any channel matching predicate, as (channel, message)."""
    assert playground.sandbox is not None
    for channel, stored in playground.sandbox.workspace.messages.items():
        for message in stored.values():
            data = message.to_api()
            if predicate(data):
                return channel, data
    return None
