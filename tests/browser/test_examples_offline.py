"""Every example a channel can switch to runs offline on the demo model, as the page's examples suggest:
each one answers, or stops at its human step (a question, an approval, a draft to edit), without an error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.dev.playground import Playground
from bot.dev.sandbox import SandboxClient
from tests.support.models import reset_model_clients
from tests.support.slack import buttons, from_bot, visible_text

HUMAN_STEPS = {"Answer", "Edit", "Approve", "Reply"}


@pytest.fixture
async def offline(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Playground]:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL"):
        monkeypatch.delenv(name, raising=False)
    reset_model_clients()
    environ = {"DATABASE_URL": database_url, "BOT_DATA_DIR": str(tmp_path), "BOT_WORKERS": "4"}
    running = Playground(environ, port=0, demo_delay=0, demo_pace=0)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()
        reset_model_clients()


def human_step(messages: list[dict[str, Any]]) -> bool:
    return any(from_bot(m) and HUMAN_STEPS & {b["text"]["text"] for b in buttons(m)} for m in messages)


async def test_every_example_graph_runs_offline(offline: Playground) -> None:
    assert offline.chooser is not None and offline.sandbox is not None
    options = offline.chooser.listed
    assert {o.label for o in options} >= {"assistant", "chatbot", "react_agent", "feedback_workflow", "revise_text"}
    channels = ["C0GENERAL", "D0ALICE"]
    tried: list[str] = []
    async with SandboxClient(offline.url) as slack:
        for option in options:
            assert option.examples, f"{option.label} offers nothing to try"
            for n, example in enumerate(option.examples):
                tried.append(f"{option.label}: {example}")
                channel = channels[n % 2]
                await offline.chooser.choose(channel, option.id)
                text = f"<@U0BOT> {example}" if channel.startswith("C") else example
                root = await slack.post("U0ALICE", channel, text)

                async def outcome(channel: str = channel, root: str = root) -> list[dict[str, Any]] | None:
                    thread = await slack.replies(channel, root)
                    experts = [m for m in await slack.history("C0EXPERTS") if float(m["ts"]) > float(root)]
                    replies = [m for m in thread[1:] if from_bot(m)]
                    if replies and (human_step(thread) or human_step(experts) or any(not buttons(m) for m in replies)):
                        return thread
                    return None

                thread = await slack.wait_for(outcome, timeout=30)
                assert any(from_bot(m) for m in thread[1:]), f"{option.label} / {example}: no answer"
                shown = "\n".join(visible_text(m) for m in thread)
                assert "hit an error" not in shown, f"{option.label} / {example}: {shown}"
                assert "offline demo model" not in shown or example == "hello", f"{option.label} / {example}: {shown}"
    assert len(tried) >= 10
