"""`python -m bot dev` as a person runs it: it starts, prints the page's URL, serves it, and Ctrl-C stops
everything cleanly (exit 0, no traceback), keeping the sandbox's messages under the data folder."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp

from bot.dev.sandbox import SandboxClient
from tests.support.database import free_port

REPO = Path(__file__).resolve().parents[2]


async def test_make_dev_starts_prints_the_url_and_stops_cleanly_on_ctrl_c(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "BOT_", "SLACK_", "PORT"))}
    env.update(DATABASE_URL=database_url, PORT=str(port), BOT_DATA_DIR=str(tmp_path / "data"), PYTHONUNBUFFERED="1")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "dev",
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    url = f"http://127.0.0.1:{port}"
    printed: list[str] = []
    try:
        async with asyncio.timeout(90):
            while "Ctrl-C stops everything" not in "".join(printed):
                line = await process.stdout.readline()
                assert line, f"`python -m bot dev` ended early: {(await process.stderr.read()).decode()[-3000:]}"
                printed.append(line.decode())
        banner = "".join(printed)
        assert f"Slack playground: {url}" in banner and "offline demo model" in banner

        async with aiohttp.ClientSession() as http:
            async with http.get(url + "/", headers={"Accept": "text/html"}) as page:
                assert page.status == 200 and "/web/app.js" in await page.text()
            async with http.get(url + "/control/graphs", params={"channel": "C0GENERAL"}) as graphs:
                state = await graphs.json()
        assert state["current"] == "graphs.assistant:graph"
        offered = {option["id"] for option in state["options"]}
        assert {"graphs.assistant:graph", "graphs.chatbot:graph", "graphs.revise_text:graph"} <= offered

        async with SandboxClient(url) as slack:
            root = await slack.post("U0ALICE", "C0GENERAL", "<@U0BOT> hello")
            # The answer streams in (text only), then becomes the formatted reply (blocks).
            reply = await slack.wait_for_reply("C0GENERAL", root, lambda m: bool(m.get("blocks")), timeout=30)
        assert "offline demo model" in str(reply["blocks"])
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        async with asyncio.timeout(60):
            out, err = await process.communicate()
    errors = err.decode()
    assert process.returncode == 0, errors[-3000:]
    assert "Traceback" not in errors, errors[-3000:]
    assert "Stopping the playground" in out.decode()
    assert (tmp_path / "data" / "sandbox.json").is_file()


def test_the_playground_environment_offers_every_example_graph_and_escalates_to_experts() -> None:
    from bot.dev.playground import playground_environ

    env = playground_environ({"BOT_GRAPHS": "tests.support.graphs:form"})
    assert env["ESCALATION_CHANNEL"] == "C0EXPERTS"
    graphs = env["BOT_GRAPHS"].split(",")
    assert graphs[0] == "tests.support.graphs:form"
    assert {"graphs.assistant:graph", "graphs.chatbot:graph", "graphs.react_agent:agent"} <= set(graphs)
    assert {"graphs.feedback_workflow:graph", "graphs.revise_text:graph"} <= set(graphs)
    assert env["SLACK_BOT_TOKEN"].startswith("xoxb-")
    assert playground_environ({"ESCALATION_CHANNEL": "C0OTHER"})["ESCALATION_CHANNEL"] == "C0OTHER"


def test_graph_options_and_the_model_label() -> None:
    from bot.dev.playground import describe_model, graph_options, importable

    assert not importable("graphs.nothing_here:graph")
    options = graph_options(["graphs.revise_text:graph", "graphs.chatbot:graph", "graphs.revise_text:graph"])
    assert [(o.id, o.label) for o in options] == [
        ("graphs.revise_text:graph", "revise_text"),
        ("graphs.chatbot:graph", "chatbot"),
    ]
    assert options[0].description.startswith("Revise a text with a human")
    assert options[0].examples
    assert describe_model({}, offline=True) == "offline demo model"
    assert describe_model({"OPENAI_API_KEY": "sk-x"}, offline=False) == "gpt-4o-mini (OpenAI)"
    assert describe_model(
        {"OPENAI_BASE_URL": "http://localhost:11434/v1", "OPENAI_MODEL": "llama3"}, offline=False
    ) == ("llama3 at localhost:11434")


def test_the_demo_model_writes_its_answers_a_word_at_a_time() -> None:
    from bot.dev.demo_model import word_by_word
    from bot.dev.fake_openai import Reply, ToolCall

    streamed = word_by_word(Reply(content="Hi! I'm the **demo**.\nTry this.", delay=1.0), 0.08)
    assert (streamed.pieces, streamed.chunk_delay, streamed.delay) == (6, 0.08, 1.0)
    calling = Reply(tool_calls=[ToolCall("get_weather", {"location": "Boston"})])
    assert word_by_word(calling, 0.08) == calling  # tool calls arrive at once
    assert word_by_word(Reply(content="a b"), 0) == Reply(content="a b")
