"""Escalation routes: which channel a request goes to, who is reminded, and what happens when nobody answers.

Routes come from ESCALATION_CHANNEL and the `[escalation]` / `[[routes]]` sections of the BOT_CONFIG file;
a `channel` key in the interrupt payload itself wins over both.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from bot.errors import ConfigError

ASK_HUMAN_KINDS = ("query", "ask_human")
"""Payload kinds that are questions for a human expert; string questions count when a tool raised them."""
APPROVAL_KINDS = ("hitl", "tool_approval", "agent_inbox")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d)?$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
_CHANNEL = re.compile(r"^[CGD][A-Z0-9]{2,}$")
_GROUP = re.compile(r"^S[A-Z0-9]{2,}$")
TIMER_KEYS = ("remind_after", "fallback_after", "timeout_after")


@dataclass(frozen=True)
class Route:
    """Where a request goes and its timers (seconds; None = never)."""

    channel: str
    name: str = "escalation"
    mention: str | None = None
    remind_after: float | None = None
    fallback_after: float | None = None
    fallback_channel: str | None = None
    timeout_after: float | None = None
    timeout_answer: str | None = None
    kinds: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()
    graph: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> Route:
        known = {k: v for k, v in data.items() if k in Route.__dataclass_fields__}
        known["kinds"] = tuple(known.get("kinds") or ())
        known["tools"] = tuple(known.get("tools") or ())
        return Route(**known)

    def matches(self, *, graph: str, kind: str, tools: Sequence[str], from_tool: bool) -> bool:
        if self.graph and self.graph != graph:
            return False
        if self.tools:
            return bool(set(self.tools) & set(tools))
        if self.kinds:
            return kind in self.kinds or (kind == "question" and from_tool and "ask_human" in self.kinds)
        return is_ask_human(kind, from_tool)


def is_ask_human(kind: str, from_tool: bool) -> bool:
    return kind in ASK_HUMAN_KINDS or (kind == "question" and from_tool)


@dataclass(frozen=True)
class Router:
    routes: tuple[Route, ...] = ()
    escalation: Route | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def route_for(self, *, graph: str, kind: str, tools: Sequence[str], payload: Any, from_tool: bool) -> Route | None:
        """The payload's own `channel` wins; then the first matching route; then ESCALATION_CHANNEL for questions."""
        named = payload.get("channel") if isinstance(payload, Mapping) else None
        matched = next(
            (r for r in self.routes if r.matches(graph=graph, kind=kind, tools=tools, from_tool=from_tool)), None
        )
        if isinstance(named, str) and _CHANNEL.match(named):
            base = matched or self.escalation or Route.from_dict({**self.defaults, "channel": named})
            return replace(base, channel=named, name="payload")
        if matched:
            return matched
        if self.escalation and is_ask_human(kind, from_tool):
            return self.escalation
        return None


def parse_duration(raw: Any, where: str) -> float | None:
    """Seconds from 45, "45s", "30m", "2h", "1d"; None for none."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        raise ConfigError("BOT_CONFIG", f"has a bad {where}", 'write a duration like "30s", "15m", "2h" or "1d"')
    if isinstance(raw, int | float):
        seconds = float(raw)
    else:
        match = _DURATION.match(str(raw).strip())
        if not match:
            raise ConfigError(
                "BOT_CONFIG", f"has a bad {where} ({raw!r})", 'write a duration like "30s", "15m", "2h" or "1d"'
            )
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise ConfigError("BOT_CONFIG", f"has a bad {where}", "durations must be more than zero")
    return seconds


def _route(data: Mapping[str, Any], where: str, *, needs_channel: bool = True) -> Route:
    known = {
        "name",
        "channel",
        "mention",
        "remind_after",
        "fallback_after",
        "fallback_channel",
        "timeout_after",
        "timeout_answer",
        "kinds",
        "tools",
        "graph",
    }
    unknown = set(data) - known
    if unknown:
        raise ConfigError(
            "BOT_CONFIG",
            f"has unknown key(s) {', '.join(sorted(unknown))} in {where}",
            f"use only {', '.join(sorted(known))}",
        )
    channel = data.get("channel")
    if channel is None and not needs_channel:
        channel = ""
    if needs_channel and (channel is None or channel == ""):
        raise ConfigError(
            "BOT_CONFIG", f"has {where} with no channel", 'add channel = "C0123ABCD", the id of the channel it sends to'
        )
    if not isinstance(channel, str):
        raise ConfigError(
            "BOT_CONFIG", f"has a bad {where}.channel ({channel!r})", 'write a channel id like "C0123ABCD"'
        )
    if channel and not _CHANNEL.match(channel):
        raise ConfigError(
            "BOT_CONFIG", f"has a bad {where}.channel ({channel!r})", "write a channel id like C0123ABCD, not #name"
        )
    for key in ("fallback_channel",):
        if key in data and not (isinstance(data[key], str) and _CHANNEL.match(data[key])):
            raise ConfigError("BOT_CONFIG", f"has a bad {where}.{key}", "write a channel id like C0123ABCD")
    if "mention" in data and not (isinstance(data["mention"], str) and _GROUP.match(data["mention"])):
        raise ConfigError("BOT_CONFIG", f"has a bad {where}.mention", "write a user group id like S0123ABCD")
    for key in ("kinds", "tools"):
        if key in data and not (isinstance(data[key], list) and all(isinstance(x, str) for x in data[key])):
            raise ConfigError("BOT_CONFIG", f"has a bad {where}.{key}", "write a list of strings")
    timers = {key: parse_duration(data.get(key), f"{where}.{key}") for key in TIMER_KEYS}
    if timers["fallback_after"] and not data.get("fallback_channel"):
        raise ConfigError("BOT_CONFIG", f"has {where}.fallback_after but no fallback_channel", "add fallback_channel")
    answer = data.get("timeout_answer")
    if answer is not None and not isinstance(answer, str):
        raise ConfigError("BOT_CONFIG", f"has a bad {where}.timeout_answer", "write the text to answer with")
    return Route(
        channel=channel,
        name=str(data.get("name") or where),
        mention=data.get("mention"),
        fallback_channel=data.get("fallback_channel"),
        timeout_answer=answer,
        kinds=tuple(data.get("kinds") or ()),
        tools=tuple(data.get("tools") or ()),
        graph=data.get("graph"),
        **timers,
    )


def load_router(environ: Mapping[str, str], config: Mapping[str, Any] | None) -> Router:
    config = config or {}
    section = config.get("escalation", {})
    if not isinstance(section, dict):
        raise ConfigError("BOT_CONFIG", "has a bad [escalation] section", "see the README's example")
    channel = environ.get("ESCALATION_CHANNEL", "").strip() or section.get("channel")
    escalation = (
        _route({**section, "channel": channel, "name": section.get("name", "escalation")}, "[escalation]")
        if channel
        else None
    )
    defaults = _route({**section, "channel": ""}, "[escalation]", needs_channel=False).as_dict() if section else {}
    defaults.pop("channel", None)
    raw_routes = config.get("routes", [])
    if not isinstance(raw_routes, list):
        raise ConfigError("BOT_CONFIG", "has a bad routes", "write [[routes]] tables")
    routes = tuple(_route(r, f"routes[{i}]") for i, r in enumerate(raw_routes))
    return Router(routes, escalation, defaults)
