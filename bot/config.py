"""Settings, read once at start-up from an environment mapping (never at import time)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from bot.errors import ConfigError
from bot.interrupts.base import Renderer
from bot.interrupts.registry import load_renderers
from bot.rules.graphs import GraphOptions, load_graph_options
from bot.rules.policy import Policy, load_policy, read_config
from bot.rules.routing import Router, load_router

__all__ = ["DEFAULT_GRAPH", "ConfigError", "Mode", "Settings", "load_settings"]

Mode = Literal["serve", "socket", "worker", "dev", "tool"]

DEFAULT_GRAPH = "graphs.assistant:graph"
DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_WORKERS = 32
"""BOT_WORKERS: the jobs (turns, resumes) a process runs at once. A turn spends most of its time waiting (for the
model, the tools, a LangGraph Server), and a job worker's place stays taken while it waits: with 4, a process ran
4 conversations at once and a fifth waited for one to end, whatever its CPU was doing (issue 11: 4.4 turns/s
against a LangGraph Server's 64 at 50 at once). 32 waiting runs cost little: one event loop, the pool's 10
connections shared, each taken only for a statement."""


@dataclass(frozen=True)
class Settings:
    slack_bot_token: str
    slack_signing_secret: str
    slack_app_token: str | None
    slack_api_url: str
    port: int
    graph: str
    graphs: tuple[str, ...]
    langgraph_url: str | None
    langgraph_assistant_id: str | None
    database_url: str | None
    data_dir: Path
    escalation_channel: str | None
    workers: int
    intake_turns: int = 1
    """BOT_INTAKE_TURNS: jobs (turns, resumes) the intake (`serve`, `socket`) runs itself at once, when it has
    nothing else to take in; the others go to the job workers."""
    stalled_after: float = 30.0
    slack_timeout: float = 10.0
    reconcile_every: int = 15
    shutdown_grace: float = 15.0
    status_delay: float = 0.5
    worker_nice: int = 10
    prepared_statements: bool = True
    """BOT_PREPARED_STATEMENTS: prepare statements run often on each connection (0 behind a pooler that can't)."""
    database_wait: float = 15.0
    """BOT_DATABASE_WAIT: seconds to wait at start for PostgreSQL to answer."""
    config_file: Path | None = None
    policy: Policy | None = None
    router: Router | None = None
    langgraph_api_key: str | None = None
    graph_options: Mapping[str, GraphOptions] = field(default_factory=dict)
    slack_client_id: str | None = None
    slack_client_secret: str | None = None
    slack_redirect_uri: str | None = None
    host: str = "0.0.0.0"
    log_level: str = "INFO"
    log_format: str = "text"
    retention_days: int = 90
    retention_schedule: str = "17 3 * * *"
    renderers: tuple[Renderer, ...] = ()
    """BOT_RENDERERS: the operator's own renderers, tried before the built-in ones."""

    @property
    def oauth(self) -> bool:
        """Many workspaces: installed through OAuth, a token per team (else the one SLACK_BOT_TOKEN)."""
        return bool(self.slack_client_id and self.slack_client_secret)


def _get(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def _require(environ: Mapping[str, str], name: str, hint: str) -> str:
    value = _get(environ, name)
    if value is None:
        raise ConfigError(name, "is not set", hint)
    return value


def _int(environ: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = _get(environ, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"is {raw!r}, not a whole number", f"use a number from {low} to {high}") from None
    if not low <= value <= high:
        raise ConfigError(name, f"is {value}, out of range", f"use a number from {low} to {high}")
    return value


def _url(environ: Mapping[str, str], name: str) -> str | None:
    raw = _get(environ, name)
    if raw is None:
        return None
    parsed = urlparse(raw)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(name, f"is {raw!r}, not an http(s) URL", "use a URL such as https://host/path/")
    return raw


def _cron(environ: Mapping[str, str], name: str, default: str) -> str:
    from croniter import croniter

    raw = _get(environ, name) or default
    if not croniter.is_valid(raw):
        raise ConfigError(
            name, f"is {raw!r}, not a cron schedule", 'use five fields, such as "17 3 * * *" (03:17 daily)'
        )
    return raw


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")


def log_options(environ: Mapping[str, str]) -> tuple[str, str]:
    """LOG_LEVEL and LOG_FORMAT, checked: read before the rest, as logging is set up first."""
    level = (_get(environ, "LOG_LEVEL") or "INFO").upper()
    if level not in LOG_LEVELS:
        raise ConfigError("LOG_LEVEL", f"is {level!r}", f"use one of {', '.join(LOG_LEVELS)}")
    fmt = (_get(environ, "LOG_FORMAT") or "text").lower()
    if fmt not in LOG_FORMATS:
        raise ConfigError("LOG_FORMAT", f"is {fmt!r}", "use text (the default) or json (one object per line)")
    return level, fmt


def load_settings(environ: Mapping[str, str], mode: Mode) -> Settings:
    """Read and validate the settings a command needs; raise ConfigError on the first bad one."""
    client_id, client_secret = _get(environ, "SLACK_CLIENT_ID"), _get(environ, "SLACK_CLIENT_SECRET")
    if bool(client_id) != bool(client_secret):
        names = ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET")
        given, missing = names if client_id else names[::-1]
        raise ConfigError(
            missing, f"is not set but {given} is (OAuth needs both)", "copy both from the app's Basic Information page"
        )
    needs_slack = mode in ("serve", "socket", "worker") and not client_id
    token_hint = "copy the Bot User OAuth Token (xoxb-…) from your Slack app's OAuth & Permissions page"
    bot_token = _require(environ, "SLACK_BOT_TOKEN", token_hint) if needs_slack else _get(environ, "SLACK_BOT_TOKEN")
    if bot_token is not None and not bot_token.startswith("xoxb-"):
        raise ConfigError("SLACK_BOT_TOKEN", "does not start with xoxb-", token_hint)
    secret_hint = "copy the Signing Secret from your Slack app's Basic Information page"
    if mode == "serve":
        signing_secret = _require(environ, "SLACK_SIGNING_SECRET", secret_hint)
    else:
        signing_secret = _get(environ, "SLACK_SIGNING_SECRET") or ""
    app_token = _get(environ, "SLACK_APP_TOKEN")
    app_hint = "create an App-Level Token with the connections:write scope (Basic Information page)"
    if mode == "socket" and app_token is None:
        raise ConfigError("SLACK_APP_TOKEN", "is not set (Socket Mode needs it)", app_hint)
    if app_token is not None and not app_token.startswith("xapp-"):
        raise ConfigError("SLACK_APP_TOKEN", "does not start with xapp-", app_hint)

    api_url = _url(environ, "SLACK_API_URL") or DEFAULT_SLACK_API_URL
    if not api_url.endswith("/"):
        api_url += "/"

    graph = _get(environ, "BOT_GRAPH") or DEFAULT_GRAPH
    module, _, attribute = graph.partition(":")
    if not module or not attribute:
        raise ConfigError("BOT_GRAPH", f"is {graph!r}, not module:attribute", f"for example {DEFAULT_GRAPH}")

    graphs = tuple(spec.strip() for spec in (_get(environ, "BOT_GRAPHS") or "").split(",") if spec.strip())
    for spec in graphs:
        # The graphs a conversation may run besides BOT_GRAPH; on a LangGraph Server, assistant or graph ids.
        if ":" not in spec and not _get(environ, "LANGGRAPH_URL"):
            raise ConfigError("BOT_GRAPHS", f"lists {spec!r}, not module:attribute", f"for example {DEFAULT_GRAPH}")

    langgraph_url = _url(environ, "LANGGRAPH_URL")
    assistant_id = _get(environ, "LANGGRAPH_ASSISTANT_ID")
    if langgraph_url and not assistant_id:
        raise ConfigError(
            "LANGGRAPH_ASSISTANT_ID", "is not set but LANGGRAPH_URL is", "name the graph or assistant id to run"
        )

    database_url = _get(environ, "DATABASE_URL")
    if database_url is not None and urlparse(database_url).scheme not in ("postgres", "postgresql"):
        raise ConfigError("DATABASE_URL", "is not a PostgreSQL URL", "use postgresql://user:password@host:5432/dbname")

    escalation = _get(environ, "ESCALATION_CHANNEL")
    if escalation is not None and escalation[0] not in "CGD":
        raise ConfigError(
            "ESCALATION_CHANNEL", f"is {escalation!r}, not a channel id", "use the id (C…), not the #name"
        )

    config_file = Path(raw_config) if (raw_config := _get(environ, "BOT_CONFIG")) else None
    config = read_config(config_file) if config_file else None
    log_level, log_format = log_options(environ)
    return Settings(
        slack_bot_token=bot_token or "",
        slack_signing_secret=signing_secret,
        slack_app_token=app_token,
        slack_api_url=api_url,
        port=_int(environ, "PORT", 3000, 1, 65535),
        graph=graph,
        graphs=graphs,
        langgraph_url=langgraph_url,
        langgraph_assistant_id=assistant_id,
        langgraph_api_key=_get(environ, "LANGGRAPH_API_KEY") or _get(environ, "LANGSMITH_API_KEY"),
        database_url=database_url,
        data_dir=Path(_get(environ, "BOT_DATA_DIR") or ".data"),
        escalation_channel=escalation,
        workers=_int(environ, "BOT_WORKERS", DEFAULT_WORKERS, 0, 512),
        intake_turns=_int(environ, "BOT_INTAKE_TURNS", 1, 0, 64),
        worker_nice=_int(environ, "BOT_WORKER_NICE", 10, 0, 19),
        prepared_statements=bool(_int(environ, "BOT_PREPARED_STATEMENTS", 1, 0, 1)),
        database_wait=float(_int(environ, "BOT_DATABASE_WAIT", 15, 1, 3600)),
        stalled_after=float(_int(environ, "BOT_STALLED_AFTER", 30, 2, 3600)),
        slack_timeout=float(_int(environ, "SLACK_TIMEOUT", 10, 1, 120)),
        reconcile_every=_int(environ, "BOT_RECONCILE_EVERY", 15, 1, 59),
        shutdown_grace=float(_int(environ, "BOT_SHUTDOWN_GRACE", 15, 0, 600)),
        status_delay=_int(environ, "BOT_STATUS_DELAY_MS", 500, 0, 60_000) / 1000,
        config_file=config_file,
        policy=load_policy(environ, config),
        router=load_router(environ, config),
        graph_options=load_graph_options(config),
        host=_get(environ, "HOST") or "0.0.0.0",
        log_level=log_level,
        log_format=log_format,
        retention_days=_int(environ, "BOT_RETENTION_DAYS", 90, 0, 36500),
        retention_schedule=_cron(environ, "BOT_RETENTION_SCHEDULE", "17 3 * * *"),
        renderers=load_renderers(_get(environ, "BOT_RENDERERS")),
        slack_client_id=client_id,
        slack_client_secret=client_secret,
        slack_redirect_uri=_url(environ, "SLACK_REDIRECT_URI"),
    )
