"""Who may decide: approvers per graph and per tool, user groups, and excluding the requester."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.errors import ConfigError

_ID = re.compile(r"^[UWS][A-Z0-9]{2,}$")

Members = Callable[[str], Awaitable[set[str]]]
"""The user ids of a user group (S…)."""


@dataclass(frozen=True)
class ApprovalRule:
    """Who may decide approvals, for a graph and/or a tool (None matches any)."""

    approvers: tuple[str, ...] = ()
    exclude_requester: bool = False
    graph: str | None = None
    tool: str | None = None

    def specificity(self) -> int:
        return (2 if self.tool else 0) + (1 if self.graph else 0)


@dataclass(frozen=True)
class Policy:
    default: ApprovalRule = field(default_factory=ApprovalRule)
    rules: tuple[ApprovalRule, ...] = ()

    def rule_for(self, graph: str, tool: str) -> ApprovalRule:
        """The most specific rule matching the graph and tool (tool beats graph), else the default."""
        matching = [r for r in self.rules if r.graph in (None, graph) and r.tool in (None, tool)]
        return max(matching, key=ApprovalRule.specificity, default=self.default)

    async def refusal(
        self, *, user_id: str, graph: str, tools: Sequence[str], requester: str | None, members: Members
    ) -> str | None:
        """Why this person may not decide on these tools, or None when they may. Questions (no tools): anyone."""
        for tool in tools:
            rule = self.rule_for(graph, tool)
            if rule.exclude_requester and requester and user_id == requester:
                return f"You asked for `{tool}`, so someone else has to approve it."
            if rule.approvers and not await _is_listed(user_id, rule.approvers, members):
                listed = ", ".join(f"<@{a}>" if a[0] in "UW" else f"<!subteam^{a}>" for a in rule.approvers)
                return f"Only {listed} may decide on `{tool}`. The request stays open for them."
        return None


async def _is_listed(user_id: str, approvers: Sequence[str], members: Members) -> bool:
    if user_id in approvers:
        return True
    for group in (a for a in approvers if a.startswith("S")):
        if user_id in await members(group):
            return True
    return False


def parse_ids(raw: str, variable: str) -> tuple[str, ...]:
    ids = tuple(part.strip() for part in raw.split(",") if part.strip())
    for item in ids:
        if not _ID.match(item):
            raise ConfigError(
                variable,
                f"lists {item!r}, not a user id (U…) or user group id (S…)",
                "copy the ids from Slack profiles / user group pages, comma-separated",
            )
    return ids


def _rule(data: Mapping[str, Any], where: str, source: str) -> ApprovalRule:
    known = {"approvers", "exclude_requester", "graph", "tool"}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(
            source,
            f"has unknown key(s) {', '.join(sorted(unknown))} in {where}",
            f"use only {', '.join(sorted(known))}",
        )
    approvers = data.get("approvers", [])
    if not isinstance(approvers, list) or not all(isinstance(a, str) and _ID.match(a) for a in approvers):
        raise ConfigError(
            source,
            f"has a bad {where}.approvers",
            'write a list of user ids (U…) and user group ids (S…), e.g. ["U0123", "S0456"]',
        )
    exclude = data.get("exclude_requester", False)
    if not isinstance(exclude, bool):
        raise ConfigError(source, f"has a bad {where}.exclude_requester", "write true or false")
    for key in ("graph", "tool"):
        if key in data and not isinstance(data[key], str):
            raise ConfigError(source, f"has a bad {where}.{key}", "write a string")
    return ApprovalRule(tuple(approvers), exclude, data.get("graph"), data.get("tool"))


def load_policy(environ: Mapping[str, str], config: Mapping[str, Any] | None) -> Policy:
    """APPROVERS / APPROVERS_EXCLUDE_REQUESTER give the default; BOT_CONFIG's [approvals] adds per graph/tool rules."""
    default = ApprovalRule()
    rules: list[ApprovalRule] = []
    if config is not None:
        data = config
        approvals = data.get("approvals", {})
        if not isinstance(approvals, dict):
            raise ConfigError("BOT_CONFIG", "has a bad [approvals] section", "see the README's example")
        rule_list = approvals.get("rules", [])
        if not isinstance(rule_list, list):
            raise ConfigError("BOT_CONFIG", "has a bad approvals.rules", "write [[approvals.rules]] tables")
        default = _rule({k: v for k, v in approvals.items() if k != "rules"}, "[approvals]", "BOT_CONFIG")
        rules = [_rule(r, f"approvals.rules[{i}]", "BOT_CONFIG") for i, r in enumerate(rule_list)]
    raw = environ.get("APPROVERS", "").strip()
    if raw:
        default = ApprovalRule(parse_ids(raw, "APPROVERS"), default.exclude_requester)
    flag = environ.get("APPROVERS_EXCLUDE_REQUESTER", "").strip().lower()
    if flag:
        if flag not in ("true", "false", "1", "0", "yes", "no"):
            raise ConfigError("APPROVERS_EXCLUDE_REQUESTER", f"is {flag!r}", "write true or false")
        default = ApprovalRule(default.approvers, flag in ("true", "1", "yes"))
    return Policy(default, tuple(rules))


def read_config(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError("BOT_CONFIG", f"names {path}, which does not exist", "fix the path or unset it") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("BOT_CONFIG", f"names {path}, which is not valid TOML", str(exc)) from None
