"""Tool calls under review, and editing their arguments: one field per argument (long text over several), or a
JSON editor; and how the arguments read in the request's message."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot import blocks as b
from bot import text as t
from bot.interrupts import long
from bot.types import Errors

JSON_BLOCK = "lgslack_args_json"
ARG_PREFIX = "arg:"
SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class Item:
    key: str
    name: str
    args: dict[str, Any]
    description: str | None
    allowed: tuple[str, ...]


ARGS_LIMIT = 2898
"""The arguments' share of a section: with a last line of "…" they stay within 2,900 characters."""


def _describe(args: Mapping[str, Any]) -> tuple[str, int]:
    """The arguments for the request's message, within a section, and about how many characters that leaves out
    (the whole request is under Show all)."""
    if not args:
        return "_no arguments_", 0
    lines = []
    hidden = 0
    for name, value in args.items():
        label = f"*{t.escape(name)}*"
        if isinstance(value, str) and "\n" not in value:
            hidden += max(len(value) - 499, 0) if len(value) > 500 else 0
            lines.append(f"{label}: {t.escape(t.shorten(value, 500))}")
        elif isinstance(value, str):
            hidden += max(len(value) - 1499, 0) if len(value) > 1500 else 0
            quoted = "\n".join("&gt; " + t.escape(line) for line in t.shorten(value, 1500).splitlines())
            lines.append(f"{label}:\n{quoted}")
        elif isinstance(value, SCALARS):
            lines.append(f"{label}: `{t.escape(json.dumps(value))}`")
        else:
            code, cut = long.code_glance(value, 800)
            hidden += cut
            lines.append(f"{label}:\n{code}")
    kept: list[str] = []
    for index, line in enumerate(lines):
        if len("\n".join([*kept, line])) <= ARGS_LIMIT:
            kept.append(line)
            continue
        # What doesn't fit is left out whole, from an argument's line on; a first line too long is cut.
        head = "" if kept else t.split(line, ARGS_LIMIT - 1)[0]
        kept.append(head + "…")
        hidden += sum(len(html.unescape(rest)) for rest in [line[len(head) :], *lines[index + 1 :]])
        break
    return "\n".join(kept), hidden


def _describe_args(args: Mapping[str, Any]) -> str:
    return _describe(args)[0]


def args_hidden(args: Mapping[str, Any]) -> int:
    """About how many characters of the arguments the request's message leaves out."""
    return _describe(args)[1]


def _own_words(description: str) -> str:
    """The description without the `Tool: …` / `Args: …` lines the middleware adds: the message shows those."""
    kept = [line for line in description.splitlines() if not line.startswith(("Tool: ", "Args: "))]
    return "\n".join(kept).strip()


def _coerce(original: Any, raw: str | None) -> Any:
    """Turn an edited field back into the original argument's type; ValueError says what is wrong."""
    raw = "" if raw is None else raw
    if isinstance(original, bool):
        lowered = raw.strip().lower()
        if lowered not in ("true", "false"):
            raise ValueError("Write true or false.")
        return lowered == "true"
    if isinstance(original, int):
        try:
            return int(raw.strip())
        except ValueError:
            raise ValueError("Write a whole number.") from None
    if isinstance(original, float):
        try:
            return float(raw.strip())
        except ValueError:
            raise ValueError("Write a number.") from None
    if original is None:
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _field_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


KEPT = "It can't be edited here, so it runs as it is: close this form and reject the call if it must change."


def _as_fields(item: Item) -> bool:
    """Whether the arguments are edited one field each (all scalars), else as one JSON object."""
    return bool(item.args) and len(item.args) <= 20 and all(isinstance(v, SCALARS) for v in item.args.values())


def _args_json(item: Item) -> str:
    return json.dumps(item.args, indent=2, ensure_ascii=False, default=str)


def edit_fields(item: Item) -> list[dict[str, Any]]:
    """One field per argument when they are all scalars, else a JSON editor. A text longer than a Slack field
    holds is split over several fields; one too long for the whole form is kept as it is, and the form says so."""
    if not _as_fields(item):
        hint = "A JSON object of the arguments."
        return b.text_fields(
            JSON_BLOCK, "Arguments (JSON)", _args_json(item), room=b.MODAL_BLOCKS, too_long=KEPT, hint=hint
        )
    blocks: list[dict[str, Any]] = []
    for index, (name, value) in enumerate(item.args.items()):
        blocks += b.text_fields(
            ARG_PREFIX + name,
            name,
            _field_text(value),
            room=b.MODAL_BLOCKS - len(blocks) - (len(item.args) - index - 1),
            too_long=KEPT,
            multiline=isinstance(value, str) and (len(value) > 60 or "\n" in value),
            optional=value in ("", None),
            hint={bool: "true or false", int: "a whole number", float: "a number"}.get(type(value)),
        )
    return blocks


def _kept(item: Item) -> set[str]:
    """The block ids of the arguments too long for the form: they run as they are."""
    shown = {
        str(block.get("block_id")).partition("#part")[0] for block in edit_fields(item) if block["type"] == "input"
    }
    names = [JSON_BLOCK] if not _as_fields(item) else [ARG_PREFIX + name for name in item.args]
    return {name for name in names if name not in shown}


def parse_edit(item: Item, values: dict[str, Any]) -> tuple[dict[str, Any], Errors]:
    """The edited arguments, or the errors to show next to the fields."""
    kept = _kept(item)
    if b.has_field(values, JSON_BLOCK) or JSON_BLOCK in kept:
        if JSON_BLOCK in kept:
            return dict(item.args), {}
        raw = b.submitted_whole(values, JSON_BLOCK, _args_json(item)) or ""
        where = b.field_id(values, JSON_BLOCK)
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError as exc:
            return {}, {where: f"This is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."}
        if not isinstance(parsed, dict):
            return {}, {where: 'The arguments must be a JSON object, like {"name": "value"}.'}
        return parsed, {}
    edited: dict[str, Any] = {}
    errors: Errors = {}
    for name, original in item.args.items():
        block_id = ARG_PREFIX + name
        if block_id in kept:
            edited[name] = original
            continue
        where = b.field_id(values, block_id)
        value = b.submitted_whole(values, block_id, _field_text(original))
        if not isinstance(values.get(where), dict) or (value is None and original not in (None, "")):
            errors[where] = "This field is empty: write a value, or reject the call instead."
            continue
        try:
            edited[name] = _coerce(original, value)
        except ValueError as exc:
            errors[where] = str(exc)
    return edited, errors
