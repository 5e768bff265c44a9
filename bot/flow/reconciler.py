"""The reconciler: a periodic job, run once per cluster, that re-drives what a crash or an outage left behind.

- jobs of workers that stopped (killed, cut off from the database) go back in the queue;
- messages recorded whose turn has not finished get their turn job again;
- requests decided but not resumed get their resume job again;
- outbox rows nobody is sending are sent.

Every job it queues is idempotent, so queueing one that already exists costs a no-op, never a duplicate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from bot.flow.projection import Projector
from bot.records.outbox import Outbox
from bot.records.runs import Runs
from bot.slack.web import SlackUnavailable
from bot.store import Store

log = logging.getLogger(__name__)


class Requeuer(Protocol):
    async def requeue_stalled(self) -> int: ...

    async def requeue_turn(self, conversation_id: str, *, team_id: str, channel_id: str, ts: str) -> bool: ...

    async def requeue_resume(self, conversation_id: str, *, record_id: str) -> bool: ...


@dataclass
class Reconciler:
    store: Store
    runs: Runs
    outbox: Outbox
    projector: Projector
    jobs: Requeuer
    older_than: float = 30.0

    async def reconcile(self) -> dict[str, int]:
        """One pass; returns what it re-drove, by kind."""
        counts = {"stalled": await self.jobs.requeue_stalled(), "turns": 0, "resumes": 0, "projected": 0}
        for inbound in await self.store.unqueued_inbound(older_than=self.older_than):
            if await self.jobs.requeue_turn(
                inbound.conversation_id, team_id=inbound.team_id, channel_id=inbound.channel_id, ts=inbound.ts
            ):
                counts["turns"] += 1
        for record in await self.store.unresumed(older_than=self.older_than):
            if await self.jobs.requeue_resume(record.conversation_id, record_id=record.id):
                counts["resumes"] += 1
        for run in await self.runs.stale(kind="resume", older_than=self.older_than):
            record_id = run.key.removeprefix("resume:")
            if await self.jobs.requeue_resume(run.conversation_id, record_id=record_id):
                counts["resumes"] += 1
        for conversation_id in await self.outbox.stale_conversations(older_than=self.older_than):
            try:
                await self.projector.project(conversation_id=conversation_id)
            except SlackUnavailable:
                break
            counts["projected"] += 1
        if any(counts.values()):
            log.warning("reconciled: %s", counts)
        return counts
