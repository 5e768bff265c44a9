"""Our records: conversations (Slack thread ↔ graph thread), inbound messages, and interrupts.

`Store` gathers the record classes of bot/records/ (conversations and inbound messages, interrupts, the audit
trail) over one pool."""

from __future__ import annotations

from bot.records.conversations import ConversationRecords
from bot.records.decisions import DecisionRecords
from bot.records.interrupts import InterruptRecords


class Store(ConversationRecords, InterruptRecords, DecisionRecords):
    """SQL over the shared pool. Every state change that races is one atomic statement."""
