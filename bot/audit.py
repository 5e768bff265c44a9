"""`python -m bot audit`: print or export every decision: who, when, on what, the decision, edits, reason, latency."""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.config import load_settings
from bot.db import open_database
from bot.errors import ConfigError
from bot.store import Store

COLUMNS = [
    "decided_at",
    "user_id",
    "decision",
    "action",
    "edited_args",
    "reason",
    "latency_ms",
    "kind",
    "graph",
    "conversation_id",
    "channel_id",
    "thread_ts",
    "requested_by",
    "requested_at",
    "record_id",
    "request",
]
JSON_COLUMNS = {"edited_args", "request"}
_RELATIVE = re.compile(r"^(\d+)([mhdw])$")


def parse_moment(raw: str, option: str, now: datetime | None = None) -> datetime:
    """An ISO date or datetime (UTC unless it says otherwise), or a span back from now: 30m, 12h, 7d, 2w."""
    now = now or datetime.now(UTC)
    match = _RELATIVE.match(raw.strip())
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        return now - timedelta(**{{"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[unit]: amount})
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise ConfigError(option, f"is {raw!r}", "use an ISO date like 2026-11-01, a datetime, or 7d / 12h") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _cell(value: Any, column: str = "") -> str:
    if value is None:
        return ""
    if column in JSON_COLUMNS:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def format_rows(rows: Sequence[Mapping[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([{c: row.get(c) for c in COLUMNS} for row in rows], default=_cell, indent=2) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([_cell(row.get(c), c) for c in COLUMNS])
        return out.getvalue()
    shown = ["decided_at", "user_id", "decision", "action", "reason", "latency_ms", "conversation_id"]
    table = [shown] + [[_cell(row.get(c))[:40] for c in shown] for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(shown))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in table]
    return "\n".join(lines) + f"\n({len(rows)} decisions)\n"


async def run_audit(argv: Sequence[str], environ: Mapping[str, str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bot audit", description="Print or export the decision audit.")
    parser.add_argument("--conversation", help="only this conversation id (team:channel:thread_ts)")
    parser.add_argument("--since", help="from this moment: ISO date/datetime, or 30m / 12h / 7d / 2w ago")
    parser.add_argument("--until", help="before this moment, same forms")
    parser.add_argument("--format", choices=["table", "csv", "json"], default="table")
    parser.add_argument("--output", help="write to this file instead of standard output")
    args = parser.parse_args(list(argv))
    since = parse_moment(args.since, "--since") if args.since else None
    until = parse_moment(args.until, "--until") if args.until else None
    settings = load_settings(environ, "tool")
    db = await open_database(settings.database_url, settings.data_dir, max_size=2, wait=settings.database_wait)
    try:
        rows = await Store(db.pool).decisions(conversation_id=args.conversation, since=since, until=until)
    finally:
        await db.close()
    output = format_rows(rows, args.format)
    if args.output:
        await asyncio.to_thread(Path(args.output).write_text, output, encoding="utf-8", newline="")
        print(f"wrote {len(rows)} decisions to {args.output}")
    else:
        print(output, end="")
