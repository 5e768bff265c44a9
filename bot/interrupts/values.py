"""Any value a graph passes to `interrupt()`, as JSON: what the renderers read, the records store and Slack shows.

A LangGraph Server sends interrupt values as JSON it encodes itself; a graph run in this process hands over the
Python objects. `as_json` encodes them the way the server does, so a request looks and behaves the same on both
runtimes: a Pydantic model or a dataclass becomes its fields, a `datetime` its ISO text, a `UUID` or a `Path` its
text, a set a list, an `Enum` its value, a `Decimal` a number, bytes base64, a `timedelta` seconds, an exception
`{"error", "message"}`. Nothing here can fail: what has no JSON form is shown as its `str()`.

The graph keeps its own value in its checkpoint; it gets back only the answer, whose type each renderer documents.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import math
import re
from collections import deque
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Interface, IPv6Network
from pathlib import PurePath
from typing import Any
from uuid import UUID

JSON = None | bool | int | float | str | list[Any] | dict[str, Any]

_SURROGATE = re.compile(r"[\ud800-\udfff]")
_AS_TEXT = (UUID, PurePath, IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Interface, IPv6Network)
MAX_DEPTH = 64


def _text(value: str) -> str:
    """Text PostgreSQL and Slack accept: a lone surrogate becomes "?", a NUL byte U+FFFD (as the server does)."""
    if _SURROGATE.search(value):
        value = _SURROGATE.sub("?", value)
    return value.replace("\x00", "\ufffd")


def _number(value: Decimal) -> int | float | None:
    if not value.is_finite():
        return None
    return int(value) if value == value.to_integral_value() else float(value)


def _key(key: Any) -> str:
    if isinstance(key, str):
        return _text(key)
    if isinstance(key, enum.Enum):
        key = key.value
    encoded = as_json(key)
    return encoded if isinstance(encoded, str) else _shown(encoded)


def _fields(value: Any) -> Any:
    """The fields of an object that has them (Pydantic v2 and v1, named tuples, dataclasses), else None."""
    if isinstance(value, type):
        return None
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump()
    if dataclasses.is_dataclass(value):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    as_dict = getattr(value, "_asdict", None)
    if callable(as_dict):
        return as_dict()
    legacy = getattr(value, "dict", None)
    if callable(legacy) and not isinstance(value, Mapping):
        try:
            return legacy()
        except TypeError:
            return None
    return None


def _shown(value: Any) -> str:
    """`str(value)`, or its repr, or its type's name: an object that can't even say what it is still shows."""
    for show in (str, repr):
        try:
            return _text(show(value))
        except Exception:
            continue
    return f"<{type(value).__name__}>"


def as_json(value: Any, _depth: int = 0) -> JSON:
    """`value` as plain JSON data (dicts with text keys, lists, text, numbers, booleans, None)."""
    if _depth > MAX_DEPTH:
        return _shown(value)
    deeper = _depth + 1
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, enum.Enum):
        return as_json(value.value, deeper)
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {_key(k): as_json(v, deeper) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset | deque) and not hasattr(value, "_asdict"):
        return [as_json(v, deeper) for v in value]
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, timezone | tzinfo):
        return _shown(value.tzname(None))
    if isinstance(value, Decimal):
        return _number(value)
    if isinstance(value, _AS_TEXT):
        return _shown(value)
    if isinstance(value, re.Pattern):
        return _shown(value.pattern)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, BaseException):
        return {"error": type(value).__name__, "message": _shown(value)}
    try:
        fields = _fields(value)
    except Exception:
        fields = None
    if fields is not None:
        return as_json(fields, deeper)
    return _shown(value)
