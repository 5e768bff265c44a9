"""The approvals inbox: what waits for a person, read from the store and shown with the requests' own renderers.

Used for the App Home tab (the projector publishes it), `/agent pending` and `/agent cancel` (bot.slack.home).
Nothing here writes to Slack; it only reads (the store, user groups and permalinks through the gateway).

Who sees what, for one person and one open request:
- DECIDE — they may decide it here, with the same buttons as in its thread: they are named as an approver of one
  of its tools (directly or through a user group), or it is theirs (they asked, or started its conversation) and
  the approval policy lets them decide at least one of its tools (a plain question: always);
- WAITING — it is theirs and only others may decide it: shown read-only, with a link to its thread;
- nothing — everything else (a question in someone else's conversation, an approval they are not named for).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot import blocks as b
from bot import text as t
from bot.interrupts import escalation as esc
from bot.interrupts.base import Renderer, when
from bot.interrupts.registry import Registry
from bot.records.conversations import Conversation
from bot.records.interrupts import InterruptRecord
from bot.rules.policy import Policy
from bot.slack.gateway import Gateway
from bot.slack.web import SlackRefused, SlackUnavailable
from bot.store import Store
from bot.types import SlackMessage

log = logging.getLogger(__name__)

DECIDE, WAITING = "decide", "waiting"
HOME_ACTION = "lgslack.home"
"""The prefix of the buttons in App Home (`lgslack.home:<action>`): the same buttons as in the thread, told apart
so that a click is checked against the viewer's inbox instead of the request's message."""
WITHDRAW_ACTION = "lgslack.withdraw"
"""The Cancel button of `/agent cancel`'s list."""
VIEW_BLOCKS = 100
"""Slack's limit on the blocks of a view."""
HOME_DECIDE_LIMIT = 20
LIST_LIMIT = 30
GROUP_SECONDS = 5.0
LINK_CACHE = 2000
PENDING_HINT = "Type `/agent pending` in any channel to list them all."

Item = tuple[InterruptRecord, Conversation]
Members = Callable[[str], Awaitable[set[str]]]


def is_person(user_id: str | None) -> bool:
    return bool(user_id) and str(user_id)[:1] in ("U", "W")


def owns(record: InterruptRecord, conversation: Conversation, user_id: str) -> bool:
    """Whether the request is this person's to withdraw: they asked for it (their message started the run), or,
    when nobody is recorded as asking, they started its conversation."""
    if record.requested_by:
        return record.requested_by == user_id
    return conversation.started_by == user_id


def tools_of(renderer: Renderer, record: InterruptRecord) -> list[str]:
    try:
        return list(renderer.tools(record.request, ""))
    except Exception:
        return []


async def standing(
    policy: Policy,
    renderer: Renderer,
    record: InterruptRecord,
    conversation: Conversation,
    user_id: str,
    members: Members,
) -> str | None:
    """DECIDE, WAITING or None (see the module's docstring). Raises what `members` raises when a user group
    can't be read."""
    tools = tools_of(renderer, record)
    graph = conversation.graph
    mine = user_id in (record.requested_by, conversation.started_by)
    named = False
    for tool in tools:
        rule = policy.rule_for(graph, tool)
        # Without a requester the refusal only says whether the person is listed among the rule's approvers.
        if rule.approvers and not await policy.refusal(
            user_id=user_id, graph=graph, tools=[tool], requester=None, members=members
        ):
            named = True
            break
    if not (named or mine):
        return None
    if not tools:
        return DECIDE
    for tool in tools:
        refusal = await policy.refusal(
            user_id=user_id, graph=graph, tools=[tool], requester=record.requested_by, members=members
        )
        if refusal is None:
            return DECIDE
    return WAITING if mine else None


def who_may_see(
    policy: Policy, graph: str, tools: Iterable[str], people: Iterable[str | None]
) -> tuple[set[str], bool]:
    """Whose App Home a new request may appear in: its owners (`people`: who asked, who started the conversation)
    and the approvers its tools' rules name. True as well when a rule names a user group, whose members only Slack
    knows: then every Home of the team is refreshed."""
    users = {p for p in people if p and is_person(p)}
    groups = False
    for tool in tools:
        for approver in policy.rule_for(graph, tool).approvers:
            if is_person(approver):
                users.add(approver)
            else:
                groups = True
    return users, groups


@dataclass
class Sorted:
    """One person's inbox: what they may decide and what of theirs waits on others, oldest first."""

    decide: list[Item] = field(default_factory=list)
    waiting: list[Item] = field(default_factory=list)
    unsure: bool = False
    """A user group couldn't be read from Slack: some requests may be missing."""


def _rewrite(node: Any, prefix: str) -> Any:
    """The request's blocks for App Home: block ids made unique in the view, buttons renamed to HOME_ACTION."""
    if isinstance(node, list):
        return [_rewrite(item, prefix) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _rewrite(value, prefix) for key, value in node.items()}
    action_id = out.get("action_id")
    if isinstance(action_id, str) and action_id.startswith(b.ACTION + ":"):
        out["action_id"] = HOME_ACTION + action_id[len(b.ACTION) :]
    block_id = out.get("block_id")
    if isinstance(block_id, str) and "type" in out:
        out["block_id"] = f"{prefix}{block_id}"[:255]
    return out


def _lines_to_sections(lines: Iterable[str]) -> list[dict[str, Any]]:
    """Lines of mrkdwn packed into as few sections as fit."""
    sections: list[str] = []
    for line in lines:
        line = t.shorten(line, t.SECTION_LIMIT)
        if sections and len(sections[-1]) + 1 + len(line) <= t.SECTION_LIMIT:
            sections[-1] += "\n" + line
        else:
            sections.append(line)
    return [b.section(text) for text in sections]


def _people(ids: Iterable[str]) -> str:
    return ", ".join(f"<@{i}>" if i[:1] in ("U", "W") else f"<!subteam^{i}>" for i in ids)


@dataclass
class Inbox:
    store: Store
    registry: Registry
    policy: Policy
    gateway: Gateway
    _links: dict[tuple[str, str], str] = field(default_factory=dict)

    async def _members(self, group_id: str) -> set[str]:
        return await asyncio.wait_for(self.gateway.group_members(group_id), timeout=GROUP_SECONDS)

    async def sort(self, team_id: str, user_id: str) -> Sorted:
        found = Sorted()
        for record, conversation in await self.store.pending_requests(team_id=team_id):
            renderer = self.registry.by_kind(record.kind)
            try:
                stands = await standing(self.policy, renderer, record, conversation, user_id, self._members)
            except (TimeoutError, SlackUnavailable, SlackRefused) as exc:
                log.warning("App Home of %s: a user group couldn't be read (%s)", user_id, exc)
                found.unsure = True
                continue
            if stands == DECIDE:
                found.decide.append((record, conversation))
            elif stands == WAITING:
                found.waiting.append((record, conversation))
        return found

    async def link(self, record: InterruptRecord, conversation: Conversation) -> str | None:
        """A permalink to the request's message (or its conversation's thread, before it is posted)."""
        if record.channel_id and record.message_ts:
            key = (record.channel_id, record.message_ts)
        else:
            key = (conversation.channel_id, conversation.thread_ts)
        if key not in self._links:
            found = await self.gateway.permalink(*key)
            if found is None:
                return None
            if len(self._links) >= LINK_CACHE:
                self._links.clear()
            self._links[key] = found
        return self._links[key]

    async def links(self, items: list[Item]) -> list[str | None]:
        return list(await asyncio.gather(*(self.link(record, conversation) for record, conversation in items)))

    def summary(self, record: InterruptRecord) -> str:
        try:
            return t.escape(self.registry.by_kind(record.kind).summary(record.request))
        except Exception:
            return f"A {t.escape(record.kind)} request"

    def waits_for(self, record: InterruptRecord, conversation: Conversation) -> str:
        """Who may decide a request, as mrkdwn."""
        approvers: list[str] = []
        for tool in tools_of(self.registry.by_kind(record.kind), record):
            for who in self.policy.rule_for(conversation.graph, tool).approvers:
                if who not in approvers:
                    approvers.append(who)
        return _people(approvers) if approvers else "someone else"

    def _line(self, item: Item, link: str | None, *, waiting: bool) -> str:
        record, conversation = item
        where = f"in <#{conversation.channel_id}>" if conversation.channel_id[:1] in ("C", "G") else "in a DM"
        asked = f"asked {when(record.created_at)} {where}"
        if not waiting and is_person(record.requested_by):
            asked = f"from <@{record.requested_by}>, " + asked
        if waiting:
            asked += f", waiting for {self.waits_for(record, conversation)}"
        opened = f" · <{link}|Open the thread>" if link else ""
        return f"*{self.summary(record)}* — {asked}{opened}"

    def _request_blocks(self, n: int, record: InterruptRecord) -> list[dict[str, Any]]:
        try:
            message = self.registry.by_kind(record.kind).render(record.id, record.request, record.progress)
            shown = message.blocks or [b.section(t.escape(message.text))]
        except Exception:
            log.exception("request %s can't be shown in App Home", record.id)
            shown = [b.section(f"{self.summary(record)}\n_It can't be shown here: open its thread to answer it._")]
        return list(_rewrite(shown, f"h{n}."))

    # App Home

    async def home(self, team_id: str, user_id: str, *, notice: str | None = None) -> dict[str, Any]:
        """The App Home view of one person."""
        found = await self.sort(team_id, user_id)
        top: list[dict[str, Any]] = [{"type": "header", "text": b.plain("Waiting for you")}]
        if notice:
            top.append(b.context(f":warning: {t.shorten(notice, 2900)}"))
        if found.unsure:
            top.append(b.context(":warning: Slack didn't say who is in some user groups: a request may be missing."))
        waiting_shown = found.waiting[:LIST_LIMIT]
        waiting_links = await self.links(waiting_shown)
        bottom: list[dict[str, Any]] = [{"type": "header", "text": b.plain("Your requests waiting on others")}]
        if waiting_shown:
            lines = [
                "• " + self._line(item, link, waiting=True)
                for item, link in zip(waiting_shown, waiting_links, strict=True)
            ]
            bottom += _lines_to_sections(lines)
            if len(found.waiting) > len(waiting_shown):
                bottom.append(b.context(f"… and {len(found.waiting) - len(waiting_shown)} more. {PENDING_HINT}"))
        else:
            bottom.append(b.context("Nothing of yours is waiting on anyone."))
        updated = when(datetime.now(UTC))
        bottom.append(b.context(f"Updated {updated}. `/agent help` lists what else you can do."))
        room = VIEW_BLOCKS - len(top) - len(bottom) - 1  # one for "and K more"
        middle: list[dict[str, Any]] = []
        candidates = found.decide[:HOME_DECIDE_LIMIT]
        links = await self.links(candidates)
        shown = 0
        for n, (item, link) in enumerate(zip(candidates, links, strict=True)):
            record, _ = item
            piece = [b.context(self._line(item, link, waiting=False)), *self._request_blocks(n, record)]
            if piece[-1].get("type") != "divider":
                piece.append({"type": "divider"})
            if len(middle) + len(piece) > room:
                break
            middle += piece
            shown += 1
        if not found.decide:
            middle.append(b.section("Nothing waits for your decision."))
        elif shown < len(found.decide):
            left = len(found.decide) - shown
            middle.append(b.context(f"… and {left} more waiting for you (the oldest are shown). {PENDING_HINT}"))
        return {"type": "home", "blocks": [*top, *middle, *bottom][:VIEW_BLOCKS]}

    # /agent pending and /agent cancel

    async def pending(self, team_id: str, user_id: str) -> SlackMessage:
        """What waits for this person and what of theirs waits on others, as one ephemeral message."""
        found = await self.sort(team_id, user_id)
        blocks: list[dict[str, Any]] = []
        for title, items, waiting in (
            ("Waiting for you", found.decide, False),
            ("Your requests waiting on others", found.waiting, True),
        ):
            shown = items[:LIST_LIMIT]
            links = await self.links(shown)
            lines = [f"*{title}* ({len(items)})"]
            lines += ["• " + self._line(item, link, waiting=waiting) for item, link in zip(shown, links, strict=True)]
            if not items:
                lines.append("_Nothing._")
            elif len(items) > len(shown):
                lines.append(f"… and {len(items) - len(shown)} more (the oldest are shown).")
            blocks += _lines_to_sections(lines)
        if found.unsure:
            blocks.append(b.context(":warning: Slack didn't say who is in some user groups: a request may be missing."))
        blocks.append(b.context("Decide them in their threads, or from the app's *Home* tab."))
        text = f"{len(found.decide)} waiting for you, {len(found.waiting)} of yours waiting on others."
        return SlackMessage(text=text, blocks=blocks[: b.MESSAGE_BLOCKS])

    async def withdrawable(self, team_id: str, user_id: str, channel_id: str) -> list[Item]:
        """This person's open requests asked in this channel (its threads), oldest first."""
        return [
            (record, conversation)
            for record, conversation in await self.store.pending_requests(team_id=team_id)
            if conversation.channel_id == channel_id and owns(record, conversation, user_id)
        ]

    async def withdraw_list(
        self, team_id: str, user_id: str, channel_id: str, *, notice: str | None = None
    ) -> SlackMessage:
        """`/agent cancel`: this person's open requests in this channel, each with a Cancel button."""
        items = await self.withdrawable(team_id, user_id, channel_id)
        top = [b.context(notice)] if notice else []
        if not items:
            text = "You have no open requests in this channel. `/agent pending` lists everything waiting for you."
            return SlackMessage(text=text, blocks=[*top, b.section(text)])
        shown = items[:LIST_LIMIT]
        links = await self.links(shown)
        blocks: list[dict[str, Any]] = [*top, b.section(f"*Your open requests in this channel* ({len(items)})")]
        for (record, _), link in zip(shown, links, strict=True):
            opened = f" · <{link}|Open the thread>" if link else ""
            section = b.section(f"*{self.summary(record)}* — asked {when(record.created_at)}{opened}")
            section["accessory"] = {
                "type": "button",
                "action_id": WITHDRAW_ACTION,
                "text": b.plain("Cancel it"),
                "style": "danger",
                "value": b.action_value(record.id, esc.CANCEL),
            }
            blocks.append(section)
        if len(items) > len(shown):
            blocks.append(b.context(f"… and {len(items) - len(shown)} more (the oldest are shown)."))
        blocks.append(b.context("Cancelling tells the agent you withdrew the request: an approval is declined."))
        return SlackMessage(text=f"Your open requests in this channel: {len(items)}.", blocks=blocks)

    async def in_thread(self, team_id: str, channel_id: str, thread_ts: str) -> list[InterruptRecord]:
        """The open requests of a conversation (for `/agent cancel <link to its thread>`)."""
        return [
            record
            for record, conversation in await self.store.pending_requests(team_id=team_id)
            if conversation.channel_id == channel_id and thread_ts in (conversation.thread_ts, record.message_ts)
        ]


_PERMALINK = re.compile(r"/archives/([A-Z0-9]+)/p([0-9]{10})([0-9]{6})(?:\?(\S*))?")
_THREAD_TS = re.compile(r"(?:^|&)thread_ts=([0-9]{1,12}\.[0-9]{1,9})")


def parse_permalink(text: str) -> tuple[str, str] | None:
    """(channel, thread ts) from a Slack message link, as Slack writes it (`<https://…/archives/C…/p…>`)."""
    found = _PERMALINK.search(text)
    if found is None:
        return None
    channel, seconds, micros, query = found.groups()
    thread = _THREAD_TS.search((query or "").replace("&amp;", "&"))
    return channel, thread.group(1) if thread else f"{seconds}.{micros}"
