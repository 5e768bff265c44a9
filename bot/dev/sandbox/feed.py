"""The sandbox's change feed: every change a person would see, published to live subscribers (the web page).

Events are JSON objects with a ``type``; they are serialised when published, so a subscriber sees the
state as it was at that moment even if the message changes again before it reads the event:

- ``message``: ``{channel, message}`` a message was posted or changed (upsert by ``message.ts``);
- ``message_deleted``: ``{channel, ts}``;
- ``ephemeral``: ``{channel, user, message}`` shown to ``user`` only; ``ephemeral_deleted``: ``{channel, user, ts}``;
- ``views``: ``{user, views}`` the person's modal stack changed (open/update/push/close, errors);
- ``status``: ``{channel, thread_ts, status}`` the assistant thread status ('' when cleared);
- ``graph``: ``{channel, graph}`` a channel's graph was chosen; ``labels``: ``{labels}``;
- ``home``: ``{user, view}`` the app published the person's Home tab (views.publish);
- ``assistant``: ``{channel, thread_ts, title, prompts}`` an assistant thread's title or suggested prompts changed;
- ``reset``: everything was forgotten; subscribers should start again from a snapshot.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

QUEUE_LIMIT = 2000


class Feed:
    """Fan-out of change events to subscribers' queues; a subscriber that falls too far behind is dropped."""

    def __init__(self, queue_limit: int = QUEUE_LIMIT) -> None:
        self.queue_limit = queue_limit
        self._subscribers: set[asyncio.Queue[str | None]] = set()
        self.published = 0

    @property
    def subscribers(self) -> int:
        """How many subscribers are listening."""
        return len(self._subscribers)

    def subscribe(self) -> asyncio.Queue[str | None]:
        """A queue receiving every event published from now on, as JSON text; None means the feed closed."""
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[str | None]) -> None:
        """Stop delivering to `queue`."""
        self._subscribers.discard(queue)

    def publish(self, event: dict[str, Any]) -> None:
        """Send `event` to every subscriber."""
        self.published += 1
        if not self._subscribers:
            return
        data = json.dumps(event, separators=(",", ":"), default=str)
        for queue in list(self._subscribers):
            if queue.qsize() >= self.queue_limit:
                self._subscribers.discard(queue)
                queue.put_nowait(None)
            else:
                queue.put_nowait(data)

    def close(self) -> None:
        """End every subscription (each queue receives None)."""
        for queue in list(self._subscribers):
            queue.put_nowait(None)
        self._subscribers.clear()
