"""How a decided tool call reads: the arguments it ran with, and what an edit changed, readably and bounded.

Values are shown as a person would write them: short ones inline, long or multi-line text as a quote, nested
data laid out line by line (never JSON with escaped newlines). Everything from the payload is escaped, and each
long value is cut with a count of what was left out, so an item always fits one section.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot import text as t

INLINE = 80
"""The longest value shown on its argument's line."""
BRIEF = 40
"""The longest value shown in a one-line list of arguments."""
QUOTE_CHARS = 700
QUOTE_LINES = 15
ITEM_LIMIT = 2900
"""An item's text stays under one section's 3,000 characters."""


@dataclass(frozen=True)
class Outcome:
    """A decision as a person reads it: its verb, the arguments an edit ran with, the reason or response."""

    verb: str
    args: dict[str, Any] | None = None
    message: str | None = None


def read_hitl(decision: Any) -> Outcome | None:
    """A LangChain `Decision` (approve, edit, reject, respond)."""
    if not isinstance(decision, Mapping) or decision.get("type") not in ("approve", "edit", "reject", "respond"):
        return None
    if decision["type"] == "edit":
        edited = decision.get("edited_action")
        args = edited.get("args") if isinstance(edited, Mapping) else None
        return Outcome("edit", args=dict(args) if isinstance(args, Mapping) else {})
    message = decision.get("message")
    return Outcome(decision["type"], message=message if isinstance(message, str) else None)


def read_inbox(decision: Any) -> Outcome | None:
    """An Agent Inbox `HumanResponse` (accept, edit, response, ignore)."""
    if not isinstance(decision, Mapping):
        return None
    kind, args = decision.get("type"), decision.get("args")
    if kind == "edit":
        edited = args.get("args") if isinstance(args, Mapping) else None
        return Outcome("edit", args=dict(edited) if isinstance(edited, Mapping) else {})
    if kind == "response":
        return Outcome("respond", message=args if isinstance(args, str) else None)
    return Outcome(kind) if kind in ("accept", "ignore") else None


def clip(text: str, limit: int = QUOTE_CHARS, lines: int = QUOTE_LINES) -> str:
    """`text` cut to `limit` characters and `lines` lines, ending with how many characters were left out."""
    kept = "\n".join(text.splitlines()[:lines]) if text.count("\n") >= lines else text
    kept = kept[:limit]
    left = len(text) - len(kept)
    return text if left <= 0 else f"{kept.rstrip()} … ({left:,} more characters)"


def _scalar(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def layout(value: Any, depth: int = 0) -> list[str]:
    """Nested data as indented lines (`key: value`, `- item`); multi-line text keeps its line breaks."""
    pad = "  " * depth
    entries: list[tuple[str, Any]]
    if isinstance(value, Mapping) and value:
        entries = [(f"{key}:", item) for key, item in value.items()]
    elif isinstance(value, list | tuple) and value:
        entries = [("-", item) for item in value]
    elif isinstance(value, str) and "\n" in value:
        return [pad + line for line in value.splitlines()]
    else:
        return [
            pad + ("{}" if isinstance(value, Mapping) else "[]" if isinstance(value, list | tuple) else _scalar(value))
        ]
    lines: list[str] = []
    for label, item in entries:
        if isinstance(item, Mapping | list | tuple) and item:
            lines += [pad + label, *layout(item, depth + 1)]
        elif isinstance(item, str) and "\n" in item:
            lines += [f"{pad}{label} |", *layout(item, depth + 1)]
        else:
            lines.append(f"{pad}{label} {layout(item)[0]}")
    return lines


def inline(value: Any, limit: int = INLINE) -> str | None:
    """The value on one line (mrkdwn, escaped), or None if it is too long for one."""
    if isinstance(value, str):
        if "\n" in value or len(value) > limit:
            return None
        return t.escape(value) if value.strip() else "_(empty)_"
    if value is None or isinstance(value, bool | int | float):
        return f"`{json.dumps(value)}`"
    compact = json.dumps(value, ensure_ascii=False, default=str)
    if len(compact) > limit or "\\n" in compact or "`" in compact:
        return None
    return f"`{t.escape(compact)}`"


def block(value: Any) -> str:
    """A value too long for one line: text as a quote, other data laid out in a code block; both cut."""
    if isinstance(value, str):
        return "\n".join("&gt; " + t.escape(line) for line in clip(value).splitlines()) or "&gt; "
    laid_out = clip("\n".join(layout(value)))
    return "```" + t.escape(laid_out).replace("```", "ˋˋˋ") + "```"


def arg_line(name: str, value: Any) -> str:
    shown = inline(value)
    return f"*{t.escape(name)}*: {shown}" if shown is not None else f"*{t.escape(name)}*:\n{block(value)}"


def args_lines(args: Mapping[str, Any]) -> list[str]:
    """Every argument, with its value."""
    return [arg_line(name, value) for name, value in args.items()] or ["_No arguments._"]


def brief(args: Mapping[str, Any]) -> str:
    """The arguments on one line: short values shown, long ones by their size."""
    parts = []
    for name, value in args.items():
        shown = inline(value, BRIEF)
        if shown is None:
            size = len(value) if isinstance(value, str) else len(json.dumps(value, ensure_ascii=False, default=str))
            shown = f"_({size:,} characters)_"
        parts.append(f"*{t.escape(name)}*: {shown}")
    return " · ".join(parts)


def changed_names(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    return [
        name for name in {**before, **after} if name not in before or name not in after or before[name] != after[name]
    ]


def change_lines(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """What an edit changed, argument by argument (old → new), then the arguments it left as they were."""
    lines = []
    for name in changed_names(before, after):
        label = f"*{t.escape(name)}*"
        if name not in before:
            lines.append(arg_line(name, after[name]).replace(label, label + " (added)", 1))
            continue
        if name not in after:
            lines.append(arg_line(name, before[name]).replace(label, label + " (removed), was", 1))
            continue
        old, new = inline(before[name], 40), inline(after[name], 40)
        if old is not None and new is not None:
            lines.append(f"{label}: {old} → {new}")
        else:
            lines.append(f"{label}, before:\n{block(before[name])}\n{label}, now:\n{block(after[name])}")
    kept = {name: value for name, value in after.items() if name in before and before[name] == value}
    if not lines:
        lines.append("_No argument changed._")
    if kept:
        lines.append("_Unchanged:_ " + brief(kept))
    return lines


def said(label: str, text: str | None) -> str:
    """A reason or a response: inline when short, else quoted."""
    if not text or not text.strip():
        return f"_No {label.lower()} given._"
    if "\n" not in text and len(text) <= INLINE:
        return f"{label}: {t.escape(text)}"
    return f"{label}:\n{block(text)}"


def fit(header: str, lines: list[str], limit: int = ITEM_LIMIT) -> str:
    """The header and as many whole lines as fit in `limit`, then how many were left out."""
    shown = header
    for index, line in enumerate(lines):
        if len(shown) + len(line) + 1 > limit - 60:
            return shown + f"\n_… and {len(lines) - index} more not shown._"
        shown += "\n" + line
    return shown


def item_view(
    name: str, args: Mapping[str, Any], outcome: Outcome | None, user: Any, *, emoji: str, label: str, full: bool
) -> str:
    """One decided call: who decided what and, when `full`, the arguments it ran with (or would have). An edit
    always shows what it changed; a rejection or a response its text."""
    header = f"{emoji} *{label}* " + ("for " if outcome and outcome.verb == "respond" else "") + f"`{t.escape(name)}`"
    if isinstance(user, str) and user[:1] in ("U", "W"):
        header += f" — <@{user}>"
    lines: list[str] = []
    verb = outcome.verb if outcome else None
    if outcome and verb == "edit":
        lines = change_lines(args, outcome.args or {})
    elif outcome and verb in ("reject", "respond"):
        lines = [said("Reason" if verb == "reject" else "Response", outcome.message)]
    if full and verb in (None, "approve", "accept"):
        lines += args_lines(args)
    elif full and verb != "edit" and args:
        lines.append("_Proposed:_ " + brief(args))
    return fit(header, lines)
