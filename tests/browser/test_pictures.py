"""Pictures without surprises: emoji show on a machine without emoji fonts (the page draws them itself), and the
browser tests never touch the screenshots committed under docs/ (only `make pictures` rewrites those)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from bot.dev.playground import Playground
from tests.browser.pages import DOCS

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "bot" / "dev" / "sandbox" / "web"
# Pictographs that need an emoji font (the astral planes, and the BMP ones Slack's shortcodes stand for).
ASTRAL = re.compile(r"[\U0001F000-\U0001FAFF]")


def drawn() -> set[str]:
    """The characters emoji.js has a picture of."""
    source = (WEB / "emoji.js").read_text(encoding="utf-8")
    body = source[source.index("const PICTURES") : source.index("const PATTERN")]
    return set(re.findall(r'^  "([^"]+)":', body, re.MULTILINE))


def shortcodes() -> dict[str, str]:
    """text.js's :shortcode: -> emoji map."""
    source = (WEB / "text.js").read_text(encoding="utf-8")
    body = source[source.index("const EMOJI") : source.index("const ENTITIES")]
    pairs = re.findall(r'(?:"([^"]+)"|([a-z0-9_]+)): "([^"]+)"', body)
    return {quoted or bare: char.replace("\ufe0f", "") for quoted, bare, char in pairs}


def test_every_emoji_the_bot_and_the_page_use_is_drawn() -> None:
    pictures, names = drawn(), shortcodes()
    assert len(pictures) >= 60 and len(names) >= 100
    missing: dict[str, set[str]] = {}
    for path in [*(ROOT / "bot").rglob("*.py"), *WEB.glob("*.js"), *WEB.glob("*.html")]:
        if path.name in ("text.js", "emoji.js"):
            continue
        text = path.read_text(encoding="utf-8")
        used = {names[code] for code in re.findall(r":([a-z0-9_+-]+):", text) if code in names}
        used |= set(ASTRAL.findall(text))
        used |= {char for char in names.values() if len(char) == 1 and char in text and ord(char) >= 0x2300}
        lacking = {char for char in used if char not in pictures}
        if lacking:
            missing[str(path.relative_to(ROOT))] = lacking
    assert not missing, f"emoji without a picture in emoji.js: {missing}"


def test_the_browser_tests_write_pictures_outside_docs() -> None:
    if os.environ.get("UPDATE_DOCS_PICTURES"):
        pytest.skip("`make pictures` rewrites docs/ on purpose")
    assert not DOCS.resolve().is_relative_to(ROOT), f"a test run would write its screenshots to {DOCS}"
    for path in (ROOT / "tests" / "browser").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        if path.name not in ("pages.py", "conftest.py", Path(__file__).name):
            assert '"docs"' not in source, f"{path.name} names docs/ itself: save pictures under pages.DOCS"


async def test_emoji_show_as_pictures_without_emoji_fonts(page: Page, playground: Playground) -> None:
    sandbox = playground.sandbox
    assert sandbox is not None
    text = ":white_check_mark: Approved :warning: mind the :hourglass_flowing_sand: :tada: 🤖"
    posted = sandbox.post_as_bot(sandbox.channel("C0GENERAL"), text=text)
    shown = page.locator(f"#message-list .msg[data-ts='{posted.ts}'] .msg-content")
    await expect(shown).to_have_text("✅ Approved ⚠️ mind the ⏳ 🎉 🤖")  # the text stays the emoji
    await expect(shown.locator(".emoji")).to_have_count(5)
    # Each picture is an SVG shipped with the page, and decodes.
    sizes = await page.evaluate(
        """() => Promise.all([...document.querySelectorAll('.emoji')].map((el) => new Promise((resolve) => {
            const url = getComputedStyle(el).backgroundImage.replace(/^url\\("?|"?\\)$/g, '');
            if (!url.startsWith('data:image/svg+xml')) return resolve(-1);
            const img = new Image();
            img.onload = () => resolve(img.naturalWidth);
            img.onerror = () => resolve(0);
            img.src = url;
        })))"""
    )
    assert len(sizes) >= 5 and all(size > 0 for size in sizes), sizes
    # Nothing on the page is left for a font to draw: every pictograph is inside a picture.
    leftover = await page.evaluate(
        """() => {
            const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
            const found = [];
            while (walker.nextNode()) {
              const node = walker.currentNode;
              if (node.parentElement.closest('.emoji, option, select, textarea')) continue;
              for (const match of node.data.matchAll(/\\p{Extended_Pictographic}/gu)) found.push(match[0]);
            }
            return found;
        }"""
    )
    assert leftover == [], f"emoji without a picture: {leftover}"
