"""Fixtures of the fault suite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.harness import Harness
from tests.support.processes import Bots


@pytest.fixture
async def bots(harness: Harness, sandbox: Any) -> AsyncIterator[Bots]:
    """The bot processes of one test; whatever still runs at the end is killed."""
    processes = Bots(harness, sandbox)
    try:
        yield processes
    finally:
        processes.kill_all()
