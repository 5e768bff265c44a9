"""Text going to Slack: escaped so nobody is pinged, converted to mrkdwn, split under Slack's limits."""

from __future__ import annotations

import html
import re

SECTION_LIMIT = 3000

_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*$", re.MULTILINE)
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^\s)|]+)\)")
_MENTION = re.compile(r"<@[UW][A-Z0-9]+>\s*")
_ENTITY_TAIL = re.compile(r"&[a-z]{0,4}$")


def escape(text: str) -> str:
    """Escape &, < and > so that model or payload text can't form <!channel>, <@U…> or links."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_mrkdwn(markdown: str) -> str:
    """Escape, then turn the common Markdown a model writes into Slack mrkdwn."""
    text = escape(markdown)
    text = _HEADING.sub(lambda m: f"*{m.group(1)}*", text)
    text = _BOLD.sub(lambda m: f"*{m.group(1)}*", text)
    return _LINK.sub(lambda m: f"<{m.group(2)}|{m.group(1)}>", text)


def from_slack(text: str, bot_user_id: str | None = None) -> str:
    """A person's message as plain text: the bot's mention removed and Slack's escapes undone."""
    if bot_user_id:
        text = text.replace(f"<@{bot_user_id}>", "")
    return html.unescape(text).strip()


def strip_mentions(text: str) -> str:
    return _MENTION.sub("", text)


def split(text: str, limit: int = SECTION_LIMIT) -> list[str]:
    """Split text into pieces of at most limit characters, at paragraph, line or word breaks when possible.

    Never cuts inside an &entity; and the pieces joined give back the text, so nothing is lost.
    """
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        cut = -1
        for sep in ("\n\n", "\n", " "):
            at = window.rfind(sep)
            if at > limit // 2:
                cut = at + len(sep)
                break
        if cut == -1:
            cut = limit
            tail = _ENTITY_TAIL.search(window)
            if tail:
                cut = tail.start() or limit
        pieces.append(rest[:cut])
        rest = rest[cut:]
    if rest or not pieces:
        pieces.append(rest)
    return pieces


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
