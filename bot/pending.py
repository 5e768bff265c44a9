"""`python -m bot pending`: the open requests, with their age, route and a link to each."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bot.config import load_settings
from bot.db import open_database
from bot.interrupts.base import Renderer
from bot.interrupts.escalation import describe_duration
from bot.interrupts.registry import Registry, default_renderers
from bot.store import Store
from bot.types import Request


def describe_rows(
    rows: Sequence[Mapping[str, Any]], now: datetime, links: Mapping[str, str], renderers: Sequence[Renderer] = ()
) -> list[dict[str, Any]]:
    registry = Registry([*renderers, *default_renderers()])
    described = []
    for row in rows:
        route = row.get("route") or {}
        request = Request(row["payload"], row.get("response_schema"))
        described.append(
            {
                "age": describe_duration((now - row["created_at"]).total_seconds()),
                "kind": row["kind"],
                "request": registry.by_kind(row["kind"]).summary(request),
                "route": f"{route.get('name')} → {route.get('channel')}" if route else "in thread",
                "link": links.get(str(row["id"])) or f"{row.get('channel_id')}/{row.get('message_ts')}",
                "asked_by": row.get("requested_by"),
                "conversation": row["conversation_id"],
                "record_id": str(row["id"]),
            }
        )
    return described


def format_table(described: Sequence[Mapping[str, Any]]) -> str:
    if not described:
        return "No open requests.\n"
    columns = ["age", "kind", "route", "request", "link"]
    table = [columns] + [[str(row[c])[:60] for c in columns] for row in described]
    widths = [max(len(r[i]) for r in table) for i in range(len(columns))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in table]
    return "\n".join(lines) + f"\n({len(described)} open)\n"


async def run_pending(argv: Sequence[str], environ: Mapping[str, str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bot pending", description="List open requests.")
    parser.add_argument("--format", choices=["table", "json"], default="table")
    args = parser.parse_args(list(argv))
    settings = load_settings(environ, "tool")
    db = await open_database(settings.database_url, settings.data_dir, max_size=2, wait=settings.database_wait)
    try:
        rows = await Store(db.pool).all_pending()
    finally:
        await db.close()
    links: dict[str, str] = {}
    if settings.slack_bot_token:
        from bot.slack.gateway import Gateway
        from bot.slack.web import build_client, open_session

        async with open_session(settings.slack_timeout) as session:  # one connection for all the look-ups
            gateway = Gateway(
                build_client(
                    settings.slack_bot_token, settings.slack_api_url, timeout=settings.slack_timeout, session=session
                )
            )
            for row in rows:
                if row.get("channel_id") and row.get("message_ts"):
                    link = await gateway.permalink(row["channel_id"], row["message_ts"])
                    if link:
                        links[str(row["id"])] = link
    described = describe_rows(rows, datetime.now(UTC), links, settings.renderers)
    print(json.dumps(described, indent=2) if args.format == "json" else format_table(described).rstrip("\n"))
