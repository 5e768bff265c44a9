"""Logs for operators: one setup for every command, ids carried by context, JSON on request.

`setup_logging` is called once by the CLI. Each record carries the ids of what it is about, taken from context
variables set at the boundaries (`bind`): the Slack request (`request_id`), the job (`job_id`) and the
conversation (`conversation_id`). As text they follow the message as ``[conversation=… job=…]``; with
``LOG_FORMAT=json`` each record is one JSON object per line with them as fields.

`dev` keeps its terminal for the playground's banner: there only warnings and errors are shown, and the whole
log (LOG_LEVEL, INFO by default) goes to a file under the data folder.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

__all__ = ["IDS", "JsonFormatter", "TurnLog", "bind", "current_ids", "handler", "set_ids", "setup_logging"]

IDS = ("conversation_id", "request_id", "job_id")
_vars: dict[str, contextvars.ContextVar[str | None]] = {
    name: contextvars.ContextVar(f"bot_log_{name}", default=None) for name in IDS
}

QUIET = ("httpx", "httpx2", "httpcore", "openai", "aiohttp.access", "procrastinate", "pgserver", "langgraph")
"""Libraries whose INFO lines say what we already say (a line per model call, per job, per pg_ctl call)."""

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s%(ids)s"


@contextlib.contextmanager
def bind(**ids: str | int | None) -> Iterator[None]:
    """Within the block (and tasks started in it), log records carry these ids; None leaves one unchanged."""
    tokens = []
    for name, value in ids.items():
        if value is None:
            continue
        if name not in _vars:
            raise ValueError(f"unknown log id {name!r}: use one of {', '.join(IDS)}")
        tokens.append((_vars[name], _vars[name].set(str(value))))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def set_ids(**ids: str | int | None) -> None:
    """Bind ids for the rest of the current task: only at the start of a task of its own (a job, a request),
    whose context dies with it."""
    for name, value in ids.items():
        if value is not None:
            _vars[name].set(str(value))


@dataclass
class TurnLog:
    """The one line per turn or resume an operator reads: run, graph, duration and outcome (as JSON fields too).
    Made when the run starts; `done` or `failed` writes the line."""

    run: str
    kind: str
    graph: str
    started: float = field(default_factory=time.monotonic)

    def done(self, logger: logging.Logger, outcome: Any) -> None:
        self._write(logger, logging.INFO, _describe_outcome(outcome))

    def failed(self, logger: logging.Logger, error: BaseException | str) -> None:
        result = f"failed ({type(error).__name__}: {error})" if isinstance(error, BaseException) else str(error)
        self._write(logger, logging.WARNING, result)

    def _write(self, logger: logging.Logger, level: int, result: str) -> None:
        duration_ms = round((time.monotonic() - self.started) * 1000)
        logger.log(
            level,
            "%s %s: graph %s, %.2f s, %s",
            self.kind,
            self.run,
            self.graph,
            duration_ms / 1000,
            result,
            extra={"run": self.run, "graph": self.graph, "duration_ms": duration_ms, "outcome": result.split(" (")[0]},
        )


def _describe_outcome(outcome: Any) -> str:
    waiting = len(getattr(outcome, "interrupts", ()) or ())
    replies = len(getattr(outcome, "replies", ()) or ())
    said = f"{replies} repl{'y' if replies == 1 else 'ies'}"
    if waiting:
        return f"waiting ({waiting} request{'s' if waiting > 1 else ''}, {said})"
    if getattr(outcome, "finished", False):
        return f"finished ({said})"
    return f"ran ({said})"


def current_ids() -> dict[str, str]:
    """The ids bound where this is called."""
    return {name: value for name, var in _vars.items() if (value := var.get()) is not None}


class _Ids(logging.Filter):
    """Adds the bound ids to each record (as attributes, and as the ``ids`` text suffix)."""

    def filter(self, record: logging.LogRecord) -> bool:
        ids = current_ids()
        for name, value in ids.items():
            if not hasattr(record, name):
                setattr(record, name, value)
        present = {name: getattr(record, name) for name in IDS if getattr(record, name, None) is not None}
        record.ids = (
            " [" + " ".join(f"{name.removesuffix('_id')}={value}" for name, value in present.items()) + "]"
            if present
            else ""
        )
        return True


class _Unhelpful(logging.Filter):
    """Drops lines that only confuse an operator."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Bolt warns on every start when SLACK_BOT_TOKEN is in the environment: the bot gives it a client that
        # already holds that token, so nothing is "unused".
        return not (record.name.startswith("slack_bolt") and "`token` will be unused" in str(record.msg))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the bound ids, and the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in IDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        for name in ("graph", "duration_ms", "outcome", "run"):
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def _formatter(fmt: str) -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter()
    return logging.Formatter(TEXT_FORMAT)


def handler(stream: TextIO | None, level: int, fmt: str, *, path: Path | None = None) -> logging.Handler:
    """A handler writing to `stream` (or the file at `path`) in `fmt`, its records carrying the bound ids."""
    made: logging.Handler = (
        logging.FileHandler(path, encoding="utf-8") if path is not None else logging.StreamHandler(stream)
    )
    made.setLevel(level)
    made.setFormatter(_formatter(fmt))
    made.addFilter(_Ids())
    made.addFilter(_Unhelpful())
    return made


def setup_logging(
    *, level: str = "INFO", fmt: str = "text", file: Path | None = None, stream: TextIO | None = None
) -> None:
    """Configure the root logger once: `level` and `fmt` ("text" or "json") from LOG_LEVEL and LOG_FORMAT.

    With `file` (the playground), the terminal shows only warnings and errors and the file gets everything at
    `level`; Python warnings (a library's deprecation notice) go to the log too, not to the terminal.
    """
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    wanted = logging.getLevelName(level.upper())
    wanted = wanted if isinstance(wanted, int) else logging.INFO
    out = stream or sys.stderr
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        root.addHandler(handler(None, wanted, fmt, path=file))
        console = handler(out, max(wanted, logging.WARNING), fmt)
        console.addFilter(lambda record: record.name != "py.warnings")
        root.addHandler(console)
        logging.captureWarnings(True)
    else:
        root.addHandler(handler(out, wanted, fmt))
    root.setLevel(wanted)
    for name in QUIET:
        # Their INFO lines are noise at INFO; LOG_LEVEL=DEBUG shows them again.
        logging.getLogger(name).setLevel(logging.DEBUG if wanted <= logging.DEBUG else logging.WARNING)
