"""Browser tests: the whole playground in this process (sandbox + bot + demo model + a test database), driven
through its web page by Playwright and Debian's Chromium, headless, with a fresh profile for each test.

Playwright's own browser download is never used. Without /usr/bin/chromium (or $CHROMIUM) the tests are
skipped; `.ci/run` installs the package first.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bot.dev.playground import Playground
from tests.support.models import reset_model_clients

if TYPE_CHECKING:
    from playwright.async_api import Page

CHROMIUM = Path(os.environ.get("CHROMIUM") or "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 800}
TIMEOUT_MS = 20_000


DOCS_DIR = Path(__file__).resolve().parents[2] / "docs"


def _pictures() -> dict[str, bytes]:
    return {str(path): path.read_bytes() for path in sorted(DOCS_DIR.rglob("*.png"))}


@pytest.fixture(scope="session", autouse=True)
def docs_untouched() -> Iterator[None]:
    """The browser tests leave the pictures under docs/ as they found them (`make pictures` rewrites them)."""
    if os.environ.get("UPDATE_DOCS_PICTURES"):
        yield
        return
    before = _pictures()
    yield
    after = _pictures()
    changed = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    assert not changed, f"the browser tests changed pictures under docs/: {changed}"


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium, or a skip that says how to get it."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is missing: `apt-get install chromium` (Debian's package) to run the browser tests")
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.skip("Playwright for Python is not installed: pip install -e '.[test]'")
    return CHROMIUM


@pytest.fixture
def clean_model_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No model settings leak in: the playground must pick its offline demo model."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE", "OPENAI_MODEL", "LANGSMITH_TRACING"):
        monkeypatch.delenv(name, raising=False)
    reset_model_clients()
    yield
    reset_model_clients()


@pytest.fixture
def playground_env() -> dict[str, str]:
    """More environment for the playground; a test module overrides this fixture, or a test parametrizes it."""
    return {}


@pytest.fixture
async def playground(
    chromium: Path, database_url: str, tmp_path: Path, clean_model_env: None, playground_env: dict[str, str]
) -> AsyncIterator[Playground]:
    """`python -m bot dev`, in this process, on free ports, with a throwaway database."""
    environ = {"DATABASE_URL": database_url, "BOT_DATA_DIR": str(tmp_path / "data"), "BOT_WORKERS": "2"}
    environ.update(playground_env)
    running = Playground(environ, port=0)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def page(chromium: Path, playground: Playground, tmp_path: Path) -> AsyncIterator[Page]:
    """A fresh Chromium profile with the playground's page open and ready, acting as alice."""
    from playwright.async_api import async_playwright

    errors: list[str] = []
    async with async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(chromium),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport=VIEWPORT,  # type: ignore[arg-type]
            locale="en-US",
            timezone_id="UTC",
        )
        try:
            tab = context.pages[0] if context.pages else await context.new_page()
            tab.set_default_timeout(TIMEOUT_MS)
            tab.on("pageerror", lambda error: errors.append(str(error)))
            await tab.goto(playground.url)
            await tab.wait_for_selector("body[data-ready='1']")
            yield tab
        finally:
            await context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
