"""Our records: conversations (Slack thread ↔ graph thread), inbound messages, and interrupts."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Json, Jsonb
from psycopg_pool import AsyncConnectionPool

from bot.types import Request, Verdict

Conn = psycopg.AsyncConnection[Any]
_THREAD_NAMESPACE = uuid.UUID("0f6d9a52-3c1e-4b8e-9a57-5a1c2d7e8b10")


def conversation_key(team_id: str, channel_id: str, thread_ts: str) -> str:
    return f"{team_id}:{channel_id}:{thread_ts}"


def derive_thread_id(team_id: str, channel_id: str, thread_ts: str) -> str:
    """The graph thread_id of a Slack thread: the same thread always maps to the same id."""
    return str(uuid.uuid5(_THREAD_NAMESPACE, conversation_key(team_id, channel_id, thread_ts)))


@dataclass(frozen=True)
class Conversation:
    id: str
    team_id: str
    channel_id: str
    thread_ts: str
    thread_id: str
    graph: str
    started_by: str | None


@dataclass(frozen=True)
class Inbound:
    team_id: str
    channel_id: str
    ts: str
    conversation_id: str
    user_id: str
    text: str
    status: str
    record_id: str | None = None
    received_at: datetime | None = None
    files: list[dict[str, Any]] = field(default_factory=list)
    """The files shared with the message (see bot.slack.files): described at intake, their content read and
    saved by the turn job before its run."""


@dataclass(frozen=True)
class InterruptRecord:
    id: str
    conversation_id: str
    interrupt_id: str
    payload: Any
    kind: str
    channel_id: str | None
    message_ts: str | None
    state: str
    decided_by: str | None
    decided_at: datetime | None
    answer_text: str | None
    resume_value: Any
    resumed_at: datetime | None
    created_at: datetime
    response_schema: dict[str, Any] | None = None
    progress: dict[str, Any] = field(default_factory=dict)
    requested_by: str | None = None
    source: str | None = None
    route: dict[str, Any] | None = None
    notice_ts: str | None = None
    timer_jobs: list[int] = field(default_factory=list)

    @property
    def pending(self) -> bool:
        return self.state == "pending"

    @property
    def request(self) -> Request:
        return Request(self.payload, self.response_schema)


def _conversation(row: dict[str, Any]) -> Conversation:
    return Conversation(
        id=row["id"],
        team_id=row["team_id"],
        channel_id=row["channel_id"],
        thread_ts=row["thread_ts"],
        thread_id=row["thread_id"],
        graph=row["graph"],
        started_by=row["started_by"],
    )


def _interrupt(row: dict[str, Any]) -> InterruptRecord:
    return InterruptRecord(
        id=str(row["id"]),
        conversation_id=row["conversation_id"],
        interrupt_id=row["interrupt_id"],
        payload=row["payload"],
        kind=row["kind"],
        channel_id=row["channel_id"],
        message_ts=row["message_ts"],
        state=row["state"],
        decided_by=row["decided_by"],
        decided_at=row["decided_at"],
        answer_text=row["answer_text"],
        resume_value=row["resume_value"],
        resumed_at=row["resumed_at"],
        created_at=row["created_at"],
        response_schema=row["response_schema"],
        progress=row["progress"] or {},
        requested_by=row["requested_by"],
        source=row["source"],
        route=row["route"],
        notice_ts=row["notice_ts"],
        timer_jobs=list(row["timer_jobs"] or []),
    )


def _inbound(row: dict[str, Any]) -> Inbound:
    fields = {k: row[k] for k in Inbound.__dataclass_fields__}
    fields["record_id"] = str(row["record_id"]) if row["record_id"] else None
    fields["files"] = list(row["files"] or [])
    return Inbound(**fields)


_C_COLUMNS = (
    "c.id AS c_id, c.team_id AS c_team_id, c.channel_id AS c_channel_id, c.thread_ts AS c_thread_ts,"
    " c.thread_id AS c_thread_id, c.graph AS c_graph, c.started_by AS c_started_by"
)
"""A conversation's columns beside another table's, prefixed (read back by `_prefixed_conversation`)."""


def _prefixed_conversation(row: dict[str, Any]) -> Conversation:
    return Conversation(
        id=row["c_id"],
        team_id=row["c_team_id"],
        channel_id=row["c_channel_id"],
        thread_ts=row["c_thread_ts"],
        thread_id=row["c_thread_id"],
        graph=row["c_graph"],
        started_by=row["c_started_by"],
    )


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


_TAKE_IN = """
WITH found AS (
    SELECT c.*, NULL::uuid AS record_id FROM lgslack_conversations c WHERE c.id = %(key)s
), escalated AS (
    SELECT c.*, i.id AS record_id
    FROM lgslack_interrupts i JOIN lgslack_conversations c ON c.id = i.conversation_id
    WHERE %(reply)s AND i.channel_id = %(channel)s AND i.message_ts = %(thread_ts)s AND i.route IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM found)
), made AS (
    INSERT INTO lgslack_conversations (id, team_id, channel_id, thread_ts, thread_id, graph, started_by)
    SELECT %(key)s, %(team)s, %(channel)s, %(thread_ts)s, %(thread_id)s,
        coalesce(
            (SELECT graph FROM lgslack_channel_graphs WHERE team_id = %(team)s AND channel_id = %(channel)s),
            %(graph)s
        ),
        %(user)s
    WHERE %(start)s AND NOT EXISTS (SELECT 1 FROM found) AND NOT EXISTS (SELECT 1 FROM escalated)
    ON CONFLICT DO NOTHING
    RETURNING *, NULL::uuid AS record_id
), chosen AS (
    SELECT * FROM found UNION ALL SELECT * FROM escalated UNION ALL SELECT * FROM made LIMIT 1
), recorded AS (
    INSERT INTO lgslack_inbound (team_id, channel_id, ts, conversation_id, user_id, text, record_id, files)
    SELECT team_id, %(channel)s, %(ts)s, id, %(user)s, %(text)s, record_id, %(files)s FROM chosen
    ON CONFLICT DO NOTHING
    RETURNING ts
)
SELECT chosen.*, EXISTS (SELECT 1 FROM recorded) AS recorded FROM chosen
"""


class Store:
    """SQL over the shared pool. Every state change that races is one atomic statement."""

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self.pool = pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Conn]:
        """One connection in one transaction: pass it to the methods that must commit together."""
        async with self.pool.connection() as conn, conn.transaction():
            yield conn

    async def _one(
        self, sql: str, params: tuple[Any, ...] | dict[str, Any], conn: Conn | None = None
    ) -> dict[str, Any] | None:
        if conn is not None:
            cur = await conn.execute(sql, params)
            return await cur.fetchone()
        async with self.pool.connection() as own:
            cur = await own.execute(sql, params)
            return await cur.fetchone()

    async def _all(
        self, sql: str, params: tuple[Any, ...] | dict[str, Any], conn: Conn | None = None
    ) -> list[dict[str, Any]]:
        if conn is not None:
            cur = await conn.execute(sql, params)
            return await cur.fetchall()
        async with self.pool.connection() as own:
            cur = await own.execute(sql, params)
            return await cur.fetchall()

    # conversations

    async def find_conversation(self, *, team_id: str, channel_id: str, thread_ts: str) -> Conversation | None:
        row = await self._one(
            "SELECT * FROM lgslack_conversations WHERE id = %s",
            (conversation_key(team_id, channel_id, thread_ts),),
        )
        return _conversation(row) if row else None

    async def get_conversation(self, conversation_id: str, conn: Conn | None = None) -> Conversation:
        row = await self._one("SELECT * FROM lgslack_conversations WHERE id = %s", (conversation_id,), conn)
        if row is None:
            raise LookupError(f"no conversation {conversation_id}")
        return _conversation(row)

    async def save_conversation(
        self,
        *,
        team_id: str,
        channel_id: str,
        thread_ts: str,
        graph: str,
        started_by: str | None,
        conn: Conn | None = None,
    ) -> Conversation:
        """Create the conversation of a Slack thread, or return the one that exists."""
        key = conversation_key(team_id, channel_id, thread_ts)
        await self._one(
            """
            INSERT INTO lgslack_conversations (id, team_id, channel_id, thread_ts, thread_id, graph, started_by)
            VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id
            """,
            (key, team_id, channel_id, thread_ts, derive_thread_id(team_id, channel_id, thread_ts), graph, started_by),
            conn,
        )
        return await self.get_conversation(key, conn)

    async def take_in(
        self,
        conn: Conn,
        *,
        team_id: str,
        channel_id: str,
        thread_ts: str,
        ts: str,
        user_id: str,
        text: str,
        files: list[dict[str, Any]] | None,
        start: bool,
        default_graph: str,
    ) -> tuple[Conversation | None, bool]:
        """A person's message at intake, in one statement: the conversation of its thread — the one there is, else
        the escalated request's whose message it replies to (in the experts' channel), else a new one when `start`
        (the bot was mentioned, or in a DM), with the channel's graph or `default_graph` — and the message recorded
        in it once. Returns the conversation (None: not ours) and whether the message is new (False: delivered
        before). Run it in the transaction that queues the message's turn."""
        params = {
            "key": conversation_key(team_id, channel_id, thread_ts),
            "team": team_id,
            "channel": channel_id,
            "thread_ts": thread_ts,
            "thread_id": derive_thread_id(team_id, channel_id, thread_ts),
            "reply": thread_ts != ts,
            "start": start,
            "graph": default_graph,
            "ts": ts,
            "user": user_id,
            "text": text,
            "files": Jsonb(files or []),
        }
        for _ in range(2):
            row = await self._one(_TAKE_IN, params, conn)
            if row is not None:
                return _conversation(row), bool(row["recorded"])
            if not start:
                return None, False
            # Another delivery of this thread's first message created the conversation meanwhile (its insert
            # waited for that one's commit): this statement, a new snapshot, sees it.
        raise LookupError(f"no conversation {params['key']} after creating it")

    async def channel_graph(self, *, team_id: str, channel_id: str) -> str | None:
        """The graph new conversations in this channel use, when one was chosen for it."""
        row = await self._one(
            "SELECT graph FROM lgslack_channel_graphs WHERE team_id = %s AND channel_id = %s", (team_id, channel_id)
        )
        return str(row["graph"]) if row else None

    async def set_channel_graph(self, *, team_id: str, channel_id: str, graph: str | None) -> None:
        if graph is None:
            await self._one(
                "DELETE FROM lgslack_channel_graphs WHERE team_id = %s AND channel_id = %s RETURNING graph",
                (team_id, channel_id),
            )
            return
        await self._one(
            """
            INSERT INTO lgslack_channel_graphs (team_id, channel_id, graph) VALUES (%s, %s, %s)
            ON CONFLICT (team_id, channel_id) DO UPDATE SET graph = EXCLUDED.graph RETURNING graph
            """,
            (team_id, channel_id, graph),
        )

    # inbound messages

    async def record_inbound(
        self,
        *,
        conversation: Conversation,
        channel_id: str,
        ts: str,
        user_id: str,
        text: str,
        record_id: str | None = None,
        files: list[dict[str, Any]] | None = None,
        conn: Conn | None = None,
    ) -> bool:
        """Record a delivered message once; False when Slack delivered it before (retry or double delivery).

        `record_id` marks a reply in the thread of an escalated request, in another channel; `files` describes
        the files shared with it.
        """
        row = await self._one(
            """
            INSERT INTO lgslack_inbound (team_id, channel_id, ts, conversation_id, user_id, text, record_id, files)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING ts
            """,
            (conversation.team_id, channel_id, ts, conversation.id, user_id, text, record_id, Jsonb(files or [])),
            conn,
        )
        return row is not None

    async def save_inbound_files(self, inbound: Inbound, files: list[dict[str, Any]]) -> None:
        """Keep the files as the graph got them (contents read), so a retried job gives it the same input."""
        if files == inbound.files:
            return
        await self._one(
            "UPDATE lgslack_inbound SET files = %s WHERE team_id = %s AND channel_id = %s AND ts = %s RETURNING ts",
            (Jsonb(files), inbound.team_id, inbound.channel_id, inbound.ts),
        )

    async def get_inbound(self, *, team_id: str, channel_id: str, ts: str) -> Inbound | None:
        row = await self._one(
            "SELECT * FROM lgslack_inbound WHERE team_id = %s AND channel_id = %s AND ts = %s",
            (team_id, channel_id, ts),
        )
        return _inbound(row) if row else None

    async def inbound_in(self, *, team_id: str, channel_id: str, ts: str) -> tuple[Inbound, Conversation] | None:
        """A recorded message with its conversation, in one read (a turn job's first)."""
        row = await self._one(
            f"SELECT i.*, {_C_COLUMNS} FROM lgslack_inbound i JOIN lgslack_conversations c ON c.id = i.conversation_id"
            " WHERE i.team_id = %s AND i.channel_id = %s AND i.ts = %s",
            (team_id, channel_id, ts),
        )
        return (_inbound(row), _prefixed_conversation(row)) if row else None

    async def set_inbound_status(
        self, *, team_id: str, channel_id: str, ts: str, status: str, conn: Conn | None = None
    ) -> None:
        await self._one(
            "UPDATE lgslack_inbound SET status = %s WHERE team_id = %s AND channel_id = %s AND ts = %s RETURNING ts",
            (status, team_id, channel_id, ts),
            conn,
        )

    async def unqueued_inbound(self, *, older_than: float) -> list[Inbound]:
        """Messages recorded a while ago whose turn has not finished (the reconciler checks they have a job)."""
        rows = await self._all(
            "SELECT * FROM lgslack_inbound WHERE status <> 'done' AND received_at < now() - make_interval(secs => %s)",
            (older_than,),
        )
        return [_inbound(r) for r in rows]

    # interrupts

    async def save_interrupt(
        self,
        *,
        conversation_id: str,
        interrupt_id: str,
        request: Request,
        kind: str,
        requested_by: str | None = None,
        source: str | None = None,
        route: dict[str, Any] | None = None,
        conn: Conn | None = None,
    ) -> tuple[InterruptRecord, bool]:
        """Insert the record of a pending interrupt; return it and whether it is new."""
        schema = Json(request.schema) if request.schema is not None else None
        row = await self._one(
            """
            INSERT INTO lgslack_interrupts
                (conversation_id, interrupt_id, payload, kind, response_schema, requested_by, source, route)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (conversation_id, interrupt_id) DO NOTHING RETURNING *
            """,
            (
                conversation_id,
                interrupt_id,
                Json(request.value),
                kind,
                schema,
                requested_by,
                source,
                Jsonb(route) if route is not None else None,
            ),
            conn,
        )
        if row is not None:
            return _interrupt(row), True
        row = await self._one(
            "SELECT * FROM lgslack_interrupts WHERE conversation_id = %s AND interrupt_id = %s",
            (conversation_id, interrupt_id),
            conn,
        )
        assert row is not None
        return _interrupt(row), False

    async def set_route(self, record_id: str, route: dict[str, Any] | None, conn: Conn | None = None) -> None:
        await self._one(
            "UPDATE lgslack_interrupts SET route = %s, timer_jobs = '{}' WHERE id = %s RETURNING id",
            (Jsonb(route) if route is not None else None, record_id),
            conn,
        )

    async def add_timer_jobs(self, record_id: str, job_ids: list[int], conn: Conn | None = None) -> None:
        await self._one(
            "UPDATE lgslack_interrupts SET timer_jobs = timer_jobs || %s::bigint[] WHERE id = %s RETURNING id",
            (job_ids, record_id),
            conn,
        )

    async def move_interrupt(self, record_id: str, *, route: dict[str, Any], conn: Conn) -> InterruptRecord | None:
        """Send a still-pending request to another channel (a fallback route); its new message is posted later."""
        row = await self._one(
            "UPDATE lgslack_interrupts SET route = %s, channel_id = NULL, message_ts = NULL"
            " WHERE id = %s AND state = 'pending' RETURNING *",
            (Jsonb(route), record_id),
            conn,
        )
        return _interrupt(row) if row else None

    async def find_posted(self, *, channel_id: str, message_ts: str) -> InterruptRecord | None:
        """The request whose message is this one (for replies in an escalated request's thread)."""
        row = await self._one(
            "SELECT * FROM lgslack_interrupts WHERE channel_id = %s AND message_ts = %s AND route IS NOT NULL",
            (channel_id, message_ts),
        )
        return _interrupt(row) if row else None

    async def all_pending(self) -> list[dict[str, Any]]:
        """Every open request with its conversation, oldest first."""
        return await self._all(
            """
            SELECT i.*, c.team_id, c.channel_id AS asked_in, c.thread_ts AS asked_thread, c.graph
            FROM lgslack_interrupts i JOIN lgslack_conversations c ON c.id = i.conversation_id
            WHERE i.state = 'pending' ORDER BY i.created_at
            """,
            (),
        )

    async def pending_requests(self, *, team_id: str) -> list[tuple[InterruptRecord, Conversation]]:
        """Every open request of a workspace with its conversation, oldest first (the App Home inbox and
        `/agent pending` sort them per person)."""
        rows = await self._all(
            """
            SELECT i.*, c.team_id AS c_team_id, c.channel_id AS c_channel_id, c.thread_ts AS c_thread_ts,
                   c.thread_id AS c_thread_id, c.graph AS c_graph, c.started_by AS c_started_by
            FROM lgslack_interrupts i JOIN lgslack_conversations c ON c.id = i.conversation_id
            WHERE i.state = 'pending' AND c.team_id = %s ORDER BY i.created_at, i.id
            """,
            (team_id,),
        )
        return [
            (
                _interrupt(row),
                Conversation(
                    id=row["conversation_id"],
                    team_id=row["c_team_id"],
                    channel_id=row["c_channel_id"],
                    thread_ts=row["c_thread_ts"],
                    thread_id=row["c_thread_id"],
                    graph=row["c_graph"],
                    started_by=row["c_started_by"],
                ),
            )
            for row in rows
        ]

    async def get_interrupt(self, record_id: str, conn: Conn | None = None) -> InterruptRecord | None:
        if not _is_uuid(record_id):
            return None
        row = await self._one("SELECT * FROM lgslack_interrupts WHERE id = %s", (record_id,), conn)
        return _interrupt(row) if row else None

    async def interrupt_in(self, record_id: str) -> tuple[InterruptRecord, Conversation] | None:
        """A request with its conversation, in one read (a resume job's first)."""
        if not _is_uuid(record_id):
            return None
        row = await self._one(
            f"SELECT i.*, {_C_COLUMNS} FROM lgslack_interrupts i"
            " JOIN lgslack_conversations c ON c.id = i.conversation_id WHERE i.id = %s",
            (record_id,),
        )
        return (_interrupt(row), _prefixed_conversation(row)) if row else None

    async def open_interrupts(
        self, conversation_id: str, *, received_at: datetime | None = None
    ) -> list[InterruptRecord]:
        """Requests the graph still waits on: pending, or decided and not yet resumed (a reply must not start a
        new run in between). With `received_at`, a request resumed after that moment still counts: a reply that
        raced its decision is judged by what was open when it arrived, not by when its turn came."""
        rows = await self._all(
            """
            SELECT * FROM lgslack_interrupts WHERE conversation_id = %s
              AND (state = 'pending' OR (state = 'decided'
                   AND (resumed_at IS NULL OR resumed_at > %s::timestamptz))) ORDER BY created_at
            """,
            (conversation_id, received_at),
        )
        return [_interrupt(r) for r in rows]

    async def unresumed(self, *, older_than: float) -> list[InterruptRecord]:
        """Requests decided a while ago and not resumed yet (the reconciler checks each has its resume job)."""
        rows = await self._all(
            "SELECT * FROM lgslack_interrupts WHERE state = 'decided' AND resumed_at IS NULL"
            " AND decided_at < now() - make_interval(secs => %s)",
            (older_than,),
        )
        return [_interrupt(r) for r in rows]

    async def claim_interrupt(
        self, record_id: str, *, user_id: str, answer_text: str, resume_value: Any, conn: Conn | None = None
    ) -> InterruptRecord | None:
        """Decide a pending interrupt in one statement; None when someone else decided it first."""
        row = await self._one(
            """
            UPDATE lgslack_interrupts
            SET state = 'decided', decided_by = %s, decided_at = now(), answer_text = %s, resume_value = %s
            WHERE id = %s AND state = 'pending' RETURNING *
            """,
            (user_id, answer_text, Jsonb(resume_value), record_id),
            conn,
        )
        return _interrupt(row) if row else None

    async def add_step(
        self, record_id: str, *, key: str, entry: dict[str, Any], conn: Conn | None = None
    ) -> InterruptRecord | None:
        """Decide one item of a pending request; None when it or the request was decided first."""
        row = await self._one(
            """
            UPDATE lgslack_interrupts SET progress = progress || jsonb_build_object(%s::text, %s::jsonb)
            WHERE id = %s AND state = 'pending' AND NOT progress ? %s RETURNING *
            """,
            (key, Jsonb(entry), record_id, key),
            conn,
        )
        return _interrupt(row) if row else None

    async def record_decisions(
        self, record: InterruptRecord, conversation: Conversation, *, user_id: str, verdicts: list[Verdict], conn: Conn
    ) -> None:
        """Append the audit rows of decisions on a request."""
        async with conn.cursor() as cur:
            await cur.executemany(
                """
                INSERT INTO lgslack_decisions (record_id, conversation_id, graph, kind, user_id, decision, action,
                    edited_args, reason, request, requested_at, latency_ms)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                        (extract(epoch FROM now() - %s::timestamptz) * 1000)::bigint)
                """,
                [
                    (
                        record.id,
                        conversation.id,
                        conversation.graph,
                        record.kind,
                        user_id,
                        v.decision,
                        v.action,
                        Jsonb(v.edited_args) if v.edited_args is not None else None,
                        v.reason,
                        Jsonb(record.payload),
                        record.created_at,
                        record.created_at,
                    )
                    for v in verdicts
                ],
            )

    async def decisions(
        self, *, conversation_id: str | None = None, since: datetime | None = None, until: datetime | None = None
    ) -> list[dict[str, Any]]:
        """The audit trail, oldest first, filtered by conversation and time."""
        return await self._all(
            """
            SELECT d.decided_at, d.user_id, d.decision, d.action, d.edited_args, d.reason, d.latency_ms,
                   d.kind, d.graph, d.conversation_id, c.channel_id, c.thread_ts, d.record_id, d.requested_at,
                   i.requested_by, d.request
            FROM lgslack_decisions d
            JOIN lgslack_conversations c ON c.id = d.conversation_id
            JOIN lgslack_interrupts i ON i.id = d.record_id
            WHERE (%(conversation)s::text IS NULL OR d.conversation_id = %(conversation)s)
              AND (%(since)s::timestamptz IS NULL OR d.decided_at >= %(since)s)
              AND (%(until)s::timestamptz IS NULL OR d.decided_at < %(until)s)
            ORDER BY d.decided_at, d.id
            """,
            {"conversation": conversation_id, "since": since, "until": until},
        )

    async def mark_resumed(self, record_id: str, conn: Conn) -> bool:
        row = await self._one(
            "UPDATE lgslack_interrupts SET resumed_at = now() WHERE id = %s AND resumed_at IS NULL RETURNING id",
            (record_id,),
            conn,
        )
        return row is not None

    async def supersede_missing(self, conversation_id: str, live_ids: list[str], conn: Conn) -> list[InterruptRecord]:
        """Pending records whose interrupt the graph no longer has become superseded; return them."""
        rows = await self._all(
            """
            UPDATE lgslack_interrupts SET state = 'superseded'
            WHERE conversation_id = %s AND state = 'pending' AND NOT (interrupt_id = ANY(%s)) RETURNING *
            """,
            (conversation_id, live_ids),
            conn,
        )
        return [_interrupt(r) for r in rows]
