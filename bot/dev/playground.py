"""`python -m bot dev`: the local Slack sandbox with its web page, the bot wired to it, and the embedded PostgreSQL.

Nothing to sign up for: the sandbox stands in for Slack (``http://127.0.0.1:3000`` by default, ``PORT`` moves
it), the bot talks to it exactly as to Slack, and without ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` the example
graphs run on the offline demo model (`bot.dev.demo_model`). The database and the sandbox's messages are kept under
``.data/`` (``BOT_DATA_DIR``) between runs. Every example graph that imports can be chosen per channel on the page.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import logging
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from bot.config import Settings, load_settings

if TYPE_CHECKING:
    from aiohttp import web

    from bot.dev.fake_openai import FakeOpenAI
    from bot.dev.sandbox import GraphOption, SlackSandbox
    from bot.runtime import Bot
    from bot.store import Store

log = logging.getLogger(__name__)

SIGNING_SECRET = "playground-signing-secret"
BOT_TOKEN = "xoxb-playground"
ESCALATION_CHANNEL = "C0EXPERTS"
DEMO_API_KEY = "sk-offline-demo"
DEMO_DELAY = 1.0
"""Seconds the demo model "thinks" before each answer, so that the page shows the agent at work."""
DEMO_PACE = 0.08
"""Seconds between the words of the demo model's streamed answers, so that the page shows them being written."""


@dataclass(frozen=True)
class Example:
    """An example graph of `graphs/` as the page offers it."""

    spec: str
    label: str
    examples: tuple[str, ...]
    description: str | None = None


EXAMPLES: tuple[Example, ...] = (
    Example(
        "graphs.assistant:graph",
        "assistant",
        ("what's the weather in Boston?", "ask an expert: which database should we use?", "hello"),
    ),
    Example(
        "graphs.approvals:graph",
        "approvals",
        ("send an email to bob@example.com about lunch", "what's the weather in Paris?"),
    ),
    Example(
        "graphs.chatbot:graph",
        "chatbot",
        ("ask an expert: how should I build an AI agent?", "what's the weather in San Francisco?"),
    ),
    Example(
        "graphs.react_agent:agent",
        "react_agent",
        ("ask a human: what should I feed my cat? And what's the weather in San Francisco?",),
    ),
    Example(
        "graphs.approvals:per_call_graph",
        "approvals (per call)",
        ("send an email to bob@example.com about lunch and one to carol@example.com about the offsite",),
        "The approvals agent with one interrupt per gated tool call (interrupt_mode=per_call)",
    ),
    Example("graphs.ask_human:graph", "ask_human", ("ask a human: where are you?", "search for LangGraph")),
    Example("graphs.feedback_workflow:graph", "feedback_workflow", ("foo",)),
    Example("graphs.revise_text:graph", "revise_text", ("teh first draft of our release notes",)),
)


def _describe(spec: str) -> str:
    """The first sentence of the graph module's docstring, without reST markup."""
    module = importlib.import_module(spec.partition(":")[0])
    doc = (module.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ").replace("``", "")
    return doc.split(". ")[0].rstrip(".")


def importable(spec: str) -> bool:
    """Whether `module:attribute` names a graph the bot can load (e.g. graphs.approvals may not exist yet)."""
    from bot.runner import load_graph

    try:
        load_graph(spec)
    except Exception as exc:  # any failure means "not offered"; the reason goes to the debug log
        log.debug("graph %s is not available: %s", spec, exc)
        return False
    return True


def graph_options(specs: Sequence[str]) -> list[GraphOption]:
    """Page options for `specs` (the default graph first), labelled, described, with examples to try."""
    from bot.dev.sandbox import GraphOption

    known = {example.spec: example for example in EXAMPLES}
    options = []
    for spec in dict.fromkeys(specs):
        example = known.get(spec)
        try:
            description = (example.description if example else None) or _describe(spec)
        except Exception:
            description = ""
        label = example.label if example else spec
        options.append(GraphOption(spec, label, description, example.examples if example else ()))
    return options


def with_example_prompts(settings: Settings) -> Settings:
    """The example graphs' examples become the assistant pane's suggested prompts (up to four), for the graphs
    whose `BOT_CONFIG` table names none."""
    from bot.rules.graphs import MAX_PROMPTS, NO_OPTIONS, Prompt

    options = dict(settings.graph_options)
    for example in EXAMPLES:
        current = options.get(example.spec, NO_OPTIONS)
        if not current.prompts and example.examples:
            prompts = tuple(
                Prompt(title=_prompt_title(text), message=text[:1].upper() + text[1:])
                for text in example.examples[:MAX_PROMPTS]
            )
            options[example.spec] = dataclasses.replace(current, prompts=prompts)
    return dataclasses.replace(settings, graph_options=options)


def _prompt_title(text: str, limit: int = 32) -> str:
    title = text[:1].upper() + text[1:]
    head = title.split(":")[0] if ":" in title else title
    return head if len(head) <= limit else head[: limit - 1].rsplit(" ", 1)[0] + "…"


def playground_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment the playground's bot runs with: every importable example graph may be chosen per
    channel (BOT_GRAPHS), ask-human questions go to #experts (ESCALATION_CHANNEL), Slack is the sandbox."""
    env = dict(environ)
    if not env.get("ESCALATION_CHANNEL", "").strip():
        env["ESCALATION_CHANNEL"] = ESCALATION_CHANNEL
    configured = [s.strip() for s in env.get("BOT_GRAPHS", "").split(",") if s.strip()]
    examples = [example.spec for example in EXAMPLES if importable(example.spec)]
    env["BOT_GRAPHS"] = ",".join(dict.fromkeys([*configured, *examples]))
    env.update(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET)
    return env


class PlaygroundGraphs:
    """The sandbox page's graph chooser, backed by the bot's per-channel graph setting."""

    def __init__(self, settings: Settings, options: Sequence[GraphOption]) -> None:
        self.settings = settings
        self.listed = list(options)
        self.store: Store | None = None

    async def options(self) -> Sequence[GraphOption]:
        return self.listed

    async def current(self, channel: str) -> str | None:
        from bot.dev.sandbox.workspace import TEAM_ID

        if self.store is None:
            return self.settings.graph
        chosen = await self.store.channel_graph(team_id=TEAM_ID, channel_id=channel)
        return chosen or self.settings.graph

    async def choose(self, channel: str, graph: str | None) -> None:
        from bot.dev.sandbox.workspace import TEAM_ID

        allowed = [option.id for option in self.listed]
        if graph is not None and graph not in allowed:
            raise ValueError(f"{graph} is not one of {', '.join(allowed)}")
        if self.store is None:
            raise ValueError("the bot is not running yet")
        chosen = None if graph == self.settings.graph else graph
        await self.store.set_channel_graph(team_id=TEAM_ID, channel_id=channel, graph=chosen)


def describe_model(env: Mapping[str, str], offline: bool) -> str:
    """What the page and the banner say about the model."""
    from bot.dev.demo_model import DEMO_LABEL

    if offline:
        return DEMO_LABEL
    name = env.get("OPENAI_MODEL") or "gpt-4o-mini"
    base = env.get("OPENAI_BASE_URL")
    return f"{name} at {urlparse(base).netloc or base}" if base else f"{name} (OpenAI)"


class Playground:
    """The sandbox, the demo model (when no model is configured), and the bot, started and stopped together.

    ``port`` overrides ``PORT`` (0 picks a free port, as the browser tests do); ``demo_delay`` is how long the
    offline demo model takes to answer, ``demo_pace`` the seconds between the words it streams.
    """

    def __init__(
        self,
        environ: Mapping[str, str],
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        demo_delay: float = DEMO_DELAY,
        demo_pace: float = DEMO_PACE,
    ) -> None:
        self.environ = dict(environ)
        self.host = host
        self.port = port
        self.demo_delay = demo_delay
        self.demo_pace = demo_pace
        self.settings: Settings | None = None
        self.model: FakeOpenAI | None = None
        self.model_label = ""
        self.sandbox: SlackSandbox | None = None
        self.bot: Bot | None = None
        self.chooser: PlaygroundGraphs | None = None
        self._http: web.AppRunner | None = None
        self._saved_env: dict[str, str | None] = {}

    @property
    def url(self) -> str:
        """The page's URL (the sandbox's)."""
        if self.sandbox is None:
            raise RuntimeError("the playground is not started")
        return self.sandbox.url

    def _set_env(self, **values: str) -> None:
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    async def start(self) -> None:
        """Start everything; on failure what was started is stopped again."""
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        from bot.dev.demo_model import demo_responder, word_by_word
        from bot.dev.fake_openai import ChatRequest, FakeOpenAI, Reply
        from bot.dev.sandbox import SlackSandbox
        from bot.runtime import build_bot, serve_http
        from graphs._model import chat_model

        env = playground_environ(self.environ)
        offline = not env.get("OPENAI_API_KEY") and not env.get("OPENAI_BASE_URL")
        if offline:
            delay, pace = self.demo_delay, self.demo_pace

            def responder(request: ChatRequest) -> Reply:
                return word_by_word(dataclasses.replace(demo_responder(request), delay=delay), pace)

            self.model = FakeOpenAI(responder=responder)
            await self.model.start()
            self._set_env(OPENAI_BASE_URL=self.model.base_url, OPENAI_API_KEY=DEMO_API_KEY)
        chat_model.cache_clear()
        self.model_label = describe_model(env, offline)

        settings = load_settings(env, "dev")
        self.settings = settings
        port = settings.port if self.port is None else self.port
        self.chooser = PlaygroundGraphs(settings, graph_options([settings.graph, *settings.graphs]))
        self.sandbox = SlackSandbox(
            signing_secret=SIGNING_SECRET,
            bot_token=BOT_TOKEN,
            host=self.host,
            port=port,
            graph_chooser=self.chooser,
            state_file=settings.data_dir / "sandbox.json",
        )
        await self.sandbox.start()
        self.sandbox.set_label("model", self.model_label)

        env["SLACK_API_URL"] = self.sandbox.api_url
        self.bot = await build_bot(with_example_prompts(load_settings(env, "dev")))
        self.chooser.store = self.bot.store
        self.bot.start_workers()
        await self.bot.open_claims()
        self._http, bot_port = await serve_http(self.bot, host="127.0.0.1", port=0)
        self.sandbox.request_url = f"http://127.0.0.1:{bot_port}/slack/events"

    async def stop(self) -> None:
        """Stop whatever is running (safe to call more than once)."""
        from graphs._model import chat_model

        http, self._http = self._http, None
        if http is not None:
            await http.cleanup()
        bot, self.bot = self.bot, None
        if bot is not None:
            await bot.close()
        sandbox, self.sandbox = self.sandbox, None
        if sandbox is not None:
            await sandbox.stop()
        model, self.model = self.model, None
        if model is not None:
            await model.stop()
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()
        chat_model.cache_clear()

    def banner(self) -> str:
        """What `python -m bot dev` prints once everything is up."""
        assert self.settings is not None and self.chooser is not None
        offline = self.model is not None
        model = self.model_label + (" (set OPENAI_API_KEY or OPENAI_BASE_URL for a real one)" if offline else "")
        database = "embedded PostgreSQL" if not self.settings.database_url else "DATABASE_URL"
        graphs = len(self.chooser.listed)
        return "\n".join(
            [
                "",
                f"  Slack playground: {self.url}",
                "",
                f"  model     {model}",
                f"  graph     {self.settings.graph} by default; {graphs} to choose from per channel on the page",
                f"  data      {self.settings.data_dir}/ ({database}; kept between runs)",
                f"  log       {self.settings.data_dir / 'playground.log'} (only warnings and errors show here)",
                "",
                "  Open the URL, act as alice, bob or carol, and mention @agent. Ctrl-C stops everything.",
                "",
            ]
        )


async def run_playground(environ: Mapping[str, str]) -> None:
    """Run the playground until Ctrl-C (or SIGTERM); then stop everything and return normally."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    playground = Playground(environ)
    starting: asyncio.Task[Any] = asyncio.create_task(playground.start())
    stopping = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if starting in done:
            starting.result()
            print(playground.banner(), flush=True)
            await stopping
        else:
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
        print("Stopping the playground…", flush=True)
    finally:
        stopping.cancel()
        await playground.stop()
        for sig in handled:
            loop.remove_signal_handler(sig)
