"""The error type sandbox operations raise to produce Slack-style `{"ok": false, "error": ...}` answers."""

from __future__ import annotations

from typing import Any


class SlackError(Exception):
    """A Slack API error code (e.g. ``channel_not_found``) plus optional extra response fields."""

    def __init__(self, code: str, **extra: Any) -> None:
        super().__init__(code)
        self.code = code
        self.extra = extra

    def to_response(self) -> dict[str, Any]:
        """The JSON body Slack would answer with."""
        return {"ok": False, "error": self.code, **self.extra}
