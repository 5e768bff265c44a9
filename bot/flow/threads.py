"""Writing to a conversation's thread, and marking its messages handled: the small steps every flow shares."""

from __future__ import annotations

from bot.records.conversations import Conversation, Inbound
from bot.records.outbox import Outbox
from bot.store import Store
from bot.types import Conn, SlackMessage


def turn_key(team_id: str, channel_id: str, ts: str) -> str:
    return f"turn:{team_id}:{channel_id}:{ts}"


async def post_in_thread(
    outbox: Outbox, conn: Conn, conversation: Conversation, key: str, message: SlackMessage
) -> None:
    """Queue a message in the conversation's thread."""
    await outbox.add(
        conn,
        key,
        conversation_id=conversation.id,
        channel_id=conversation.channel_id,
        thread_ts=conversation.thread_ts,
        message=message.as_dict(),
    )


async def mark_inbound(store: Store, conn: Conn, inbound: Inbound, status: str) -> None:
    await store.set_inbound_status(
        team_id=inbound.team_id, channel_id=inbound.channel_id, ts=inbound.ts, status=status, conn=conn
    )
