"""`python -m bot dev`: the local Slack sandbox, the bot wired to it, and the embedded PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping

from bot.config import load_settings

log = logging.getLogger(__name__)

SIGNING_SECRET = "playground-signing-secret"
BOT_TOKEN = "xoxb-playground"


async def run_playground(environ: Mapping[str, str]) -> None:
    from bot.cli import _until_stopped
    from bot.demo_model import DEMO_LABEL, demo_responder
    from bot.fake_openai import FakeOpenAI
    from bot.runtime import build_bot, serve_http
    from bot.sandbox import SlackSandbox

    env = dict(environ)
    port = int(env.get("PORT") or 3000)
    model: FakeOpenAI | None = None
    if not env.get("OPENAI_API_KEY") and not env.get("OPENAI_BASE_URL"):
        model = FakeOpenAI(responder=demo_responder)
        await model.start()
        os.environ["OPENAI_BASE_URL"] = model.base_url
        os.environ["OPENAI_API_KEY"] = "sk-offline-demo"
    sandbox = SlackSandbox(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN, port=port)
    await sandbox.start()
    env.update(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=sandbox.api_url,
    )
    try:
        settings = load_settings(env, "dev")
        bot = await build_bot(settings)
        try:
            bot.start_workers()
            runner, bot_port = await serve_http(bot, host="127.0.0.1", port=0)
            sandbox.request_url = f"http://127.0.0.1:{bot_port}/slack/events"
            print(
                f"Playground: {sandbox.url}  (graph {settings.graph}; model: "
                f"{DEMO_LABEL if model else 'OpenAI-compatible at ' + (env.get('OPENAI_BASE_URL') or 'OpenAI')})",
                flush=True,
            )
            await _until_stopped()
            await runner.cleanup()
        finally:
            await bot.close()
    finally:
        await sandbox.stop()
        if model:
            await model.stop()
    await asyncio.sleep(0)
