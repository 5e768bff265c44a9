"""Modals: trigger ids, per-user view stacks, view objects as Slack returns them."""

from __future__ import annotations

import copy
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.dev.sandbox.blocks import assign_ids, validate_view
from bot.dev.sandbox.errors import SlackError
from bot.dev.sandbox.workspace import APP_ID, BOT_ID, TEAM_ID

PUSH_LIMIT = 3


@dataclass
class Trigger:
    """A trigger id minted for one person's interaction."""

    user: str
    minted_at: float
    used: bool = False


class ModalStore:
    """Every view ever opened, each person's stack of open modals, and the trigger ids."""

    def __init__(
        self,
        trigger_ttl: float = 3.0,
        now: Callable[[], float] = time.monotonic,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self.trigger_ttl = trigger_ttl
        self._now = now
        self.on_change = on_change
        self._ids = itertools.count(1)
        self._triggers = itertools.count(1)
        self.views: dict[str, dict[str, Any]] = {}
        self.owners: dict[str, str] = {}
        self.stacks: dict[str, list[str]] = {}
        self.errors: dict[str, dict[str, str]] = {}
        self.triggers: dict[str, Trigger] = {}

    def _changed(self, user: str | None) -> None:
        if user is not None and self.on_change is not None:
            self.on_change(user)

    def reset(self) -> None:
        """Close and forget all views and triggers."""
        self.views.clear()
        self.owners.clear()
        self.stacks.clear()
        self.errors.clear()
        self.triggers.clear()

    def mint_trigger(self, user: str) -> str:
        """A fresh trigger id for an interaction by `user`, valid once for `trigger_ttl` seconds."""
        n = next(self._triggers)
        trigger_id = f"{int(time.time())}.{n:09d}.{n * 2654435761 % 16**32:032x}"
        self.triggers[trigger_id] = Trigger(user=user, minted_at=self._now())
        return trigger_id

    def use_trigger(self, trigger_id: str | None) -> str:
        """Consume a trigger id and return the person it belongs to."""
        if not trigger_id:
            raise SlackError("invalid_arguments", response_metadata={"messages": ["missing trigger_id"]})
        trigger = self.triggers.get(trigger_id)
        if trigger is None or trigger.used:
            raise SlackError("invalid_trigger_id")
        if self._now() - trigger.minted_at > self.trigger_ttl:
            raise SlackError("expired_trigger_id")
        trigger.used = True
        return trigger.user

    def _build(
        self,
        payload: Any,
        *,
        view_id: str | None = None,
        previous_view_id: str | None = None,
        root_view_id: str | None = None,
    ) -> dict[str, Any]:
        errors = validate_view(payload)
        if errors:
            raise SlackError("invalid_blocks", errors=errors, response_metadata={"messages": errors})
        view_id = view_id or f"V0SBX{next(self._ids):06d}"
        n = next(self._ids)
        view: dict[str, Any] = copy.deepcopy(payload)
        view["blocks"] = assign_ids(payload.get("blocks") or [], seed=f"{view_id}:{n}")
        view.setdefault("private_metadata", "")
        view.setdefault("callback_id", "")
        view.setdefault("external_id", "")
        view.setdefault("clear_on_close", False)
        view.setdefault("notify_on_close", False)
        view.setdefault("close", None)
        view.setdefault("submit", None)
        view.update(
            {
                "id": view_id,
                "team_id": TEAM_ID,
                "state": {"values": {}},
                "hash": f"{int(time.time())}.{n:08x}",
                "previous_view_id": previous_view_id,
                "root_view_id": root_view_id or view_id,
                "app_id": APP_ID,
                "app_installed_team_id": TEAM_ID,
                "bot_id": BOT_ID,
            }
        )
        return view

    def _check_external_id(self, view: dict[str, Any], replacing: str | None = None) -> None:
        external_id = view.get("external_id")
        if not external_id:
            return
        for other in self.views.values():
            if other["id"] != replacing and other.get("external_id") == external_id:
                raise SlackError("duplicate_external_id")

    def open(self, user: str, payload: Any) -> dict[str, Any]:
        """Open a modal as the root of `user`'s stack (replacing any open stack)."""
        view = self._build(payload)
        self._check_external_id(view)
        for old in self.stacks.get(user, []):
            self.owners.pop(old, None)
        self.views[view["id"]] = view
        self.owners[view["id"]] = user
        self.stacks[user] = [view["id"]]
        self._changed(user)
        return copy.deepcopy(view)

    def push(self, user: str, payload: Any) -> dict[str, Any]:
        """Push a modal on top of `user`'s stack (at most three deep)."""
        stack = self.stacks.setdefault(user, [])
        if len(stack) >= PUSH_LIMIT:
            raise SlackError("push_limit_reached")
        previous = stack[-1] if stack else None
        root = stack[0] if stack else None
        view = self._build(payload, previous_view_id=previous, root_view_id=root)
        self._check_external_id(view)
        self.views[view["id"]] = view
        self.owners[view["id"]] = user
        stack.append(view["id"])
        self._changed(user)
        return copy.deepcopy(view)

    def find(self, view_id: str | None = None, external_id: str | None = None) -> dict[str, Any] | None:
        """An open view by id or external id."""
        for vid, view in self.views.items():
            if vid not in self.owners:
                continue
            if (view_id and vid == view_id) or (external_id and view.get("external_id") == external_id):
                return view
        return None

    def update(
        self,
        payload: Any,
        *,
        view_id: str | None = None,
        external_id: str | None = None,
        hash: str | None = None,
    ) -> dict[str, Any]:
        """Replace an open view's content in place (same id, new hash); checks `hash` when given."""
        if not view_id and not external_id:
            raise SlackError("invalid_arguments", response_metadata={"messages": ["view_id or external_id"]})
        current = self.find(view_id, external_id)
        if current is None:
            raise SlackError("not_found")
        if hash and hash != current["hash"]:
            raise SlackError("hash_conflict")
        return self.replace(current["id"], payload)

    def replace(self, view_id: str, payload: Any) -> dict[str, Any]:
        """Swap the content of view `view_id`, keeping its place in the stack."""
        current = self.views[view_id]
        view = self._build(
            payload,
            view_id=view_id,
            previous_view_id=current["previous_view_id"],
            root_view_id=current["root_view_id"],
        )
        self._check_external_id(view, replacing=view_id)
        self.views[view_id] = view
        self.errors.pop(view_id, None)
        self._changed(self.owners.get(view_id))
        return copy.deepcopy(view)

    def stack(self, user: str) -> list[dict[str, Any]]:
        """`user`'s open modals, root first, top last."""
        return [self.view_with_errors(vid) for vid in self.stacks.get(user, [])]

    def view_with_errors(self, view_id: str) -> dict[str, Any]:
        """A copy of the view, plus the `errors` the app last reported for it, if any."""
        view = copy.deepcopy(self.views[view_id])
        if view_id in self.errors:
            view["errors"] = dict(self.errors[view_id])
        return view

    def top(self, user: str) -> str | None:
        """The id of `user`'s topmost open modal."""
        stack = self.stacks.get(user) or []
        return stack[-1] if stack else None

    def close(self, user: str, view_id: str) -> list[str]:
        """Close `view_id` and anything pushed above it; returns the closed ids."""
        stack = self.stacks.get(user) or []
        if view_id not in stack:
            return []
        index = stack.index(view_id)
        closed = stack[index:]
        del stack[index:]
        for vid in closed:
            self.owners.pop(vid, None)
            self.errors.pop(vid, None)
        self._changed(user)
        return closed

    def clear(self, user: str) -> list[str]:
        """Close every modal `user` has open."""
        stack = self.stacks.get(user) or []
        return self.close(user, stack[0]) if stack else []
