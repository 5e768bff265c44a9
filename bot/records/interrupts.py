"""Interrupt records: the requests a graph made, where each is shown, and how it was decided and resumed."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg.types.json import Json, Jsonb

from bot.records.base import Conn, Records, generic_plan
from bot.records.claims import Claimed
from bot.records.conversations import (
    C_COLUMNS,
    K_COLUMNS,
    UNREAD,
    Conversation,
    Unread,
    checkpoint_join,
    checkpoint_row,
    prefixed_conversation,
)
from bot.records.runs import R_COLUMNS, Run, prefixed_run, run_columns, run_from
from bot.types import Request


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


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


FirstResumeRead = tuple[InterruptRecord, Conversation, Run | None, str | None, Run | None, dict[str, Any] | None]
"""What a resume job's first read found (`InterruptRecords.resume_in`)."""


def _first_resume_read(
    record_id: str, run_key: str, begin_for: Sequence[str], claim: Claimed | None = None
) -> tuple[str, dict[str, Any]]:
    """The statement of `resume_in` (with `claim`: only for the job it claimed, `claimed_resume_in`)."""
    params: dict[str, Any] = {"key": run_key, "id": record_id, "graphs": list(begin_for)}
    held = ""
    if claim is not None:
        held = f"AND {claim.held('c.id', record_id='i.id::text')}"
        params.update(claim.params())
    sql = f"""
        WITH found AS (
            SELECT i.*, {C_COLUMNS}, {R_COLUMNS}, {K_COLUMNS}
            FROM lgslack_interrupts i JOIN lgslack_conversations c ON c.id = i.conversation_id
            LEFT JOIN lgslack_runs r ON r.key = %(key)s {checkpoint_join("c.thread_id")}
            WHERE i.id = %(id)s {held}
        ),
        begun AS (
            INSERT INTO lgslack_runs (key, conversation_id, kind, before, requester)
            SELECT %(key)s, f.c_id, 'resume', f.c_checkpoint, f.requested_by FROM found f
            WHERE f.state = 'decided' AND f.r_key IS NULL AND f.c_graph = ANY(%(graphs)s)
            ON CONFLICT (key) DO NOTHING
            RETURNING *
        ),
        resumed AS (
            -- The statement's own time, not its transaction's start: in a decision's transaction (`claim`), a
            -- reply that came while the decision was being taken still counts as racing it (see `open_interrupts`).
            UPDATE lgslack_interrupts SET resumed_at = clock_timestamp()
            WHERE id = %(id)s AND resumed_at IS NULL AND EXISTS (SELECT 1 FROM begun)
        )
        SELECT f.*, {run_columns("b")} FROM found f LEFT JOIN begun b ON true
    """
    return sql, params


def _first_resume_row(row: dict[str, Any] | None) -> FirstResumeRead | None:
    if row is None:
        return None
    conversation = prefixed_conversation(row)
    return (
        _interrupt(row),
        conversation,
        prefixed_run(row),
        row["c_checkpoint"],
        run_from(row, "b_"),
        checkpoint_row(row, conversation.thread_id),
    )


class InterruptRecords(Records):
    """Requests: recorded, routed, claimed, resumed, superseded."""

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

    async def interrupt_in(
        self, record_id: str, *, run_key: str | None = None
    ) -> tuple[InterruptRecord, Conversation, Run | None, Unread] | None:
        """A request with its conversation and (a resume job's first read on a LangGraph Server) the run `run_key`,
        in one statement. The thread's checkpoint is not read (`UNREAD`): see `resume_in` for that."""
        if not _is_uuid(record_id):
            return None
        row = await self._one(
            f"SELECT i.*, {C_COLUMNS}, {R_COLUMNS} FROM lgslack_interrupts i"
            " JOIN lgslack_conversations c ON c.id = i.conversation_id"
            " LEFT JOIN lgslack_runs r ON r.key = %s WHERE i.id = %s",
            (run_key, record_id),
        )
        if row is None:
            return None
        return _interrupt(row), prefixed_conversation(row), prefixed_run(row), UNREAD

    async def resume_in(self, record_id: str, *, run_key: str, begin_for: Sequence[str]) -> FirstResumeRead | None:
        """A resume job's first read (the request, its conversation, the run `run_key` and the thread's latest
        checkpoint) that also begins the run, in the same statement, where `Turns._begin` would: the request
        decided, no run `run_key` yet and its conversation's graph among `begin_for`. The request is marked resumed
        with it. Then: the checkpoint's id, the run begun (None: the caller decides, as after `interrupt_in`) and
        the checkpoint as the saver reads it (`checkpoint_row`: the graph's first load)."""
        if not _is_uuid(record_id):
            return None
        sql, params = _first_resume_read(record_id, run_key, begin_for)
        # Binary, as the checkpointer reads its own rows: its blobs come as they are.
        return _first_resume_row(await self._one(sql, params, binary=True))

    async def claimed_resume_in(
        self, conn: Conn, record_id: str, *, run_key: str, begin_for: Sequence[str], claim: Claimed
    ) -> Callable[[], Awaitable[FirstResumeRead | None]]:
        """`resume_in` in the caller's transaction, right after the statement that claimed the resume's job
        (`claim`): it reads, and begins, only if that job is held for the claiming worker, so under the
        conversation's lock. Returns what reads it, to await once the transaction has committed."""
        sql, params = _first_resume_read(record_id, run_key, begin_for, claim)
        async with generic_plan(conn):
            cur = await conn.execute(sql, params, binary=True)

        async def read() -> FirstResumeRead | None:
            return _first_resume_row(await cur.fetchone())

        return read

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

    async def mark_resumed(self, record_id: str, conn: Conn) -> None:
        """In the caller's transaction (reads no result: pipelined, it goes out with the statements after it)."""
        await conn.execute(
            "UPDATE lgslack_interrupts SET resumed_at = now() WHERE id = %s AND resumed_at IS NULL", (record_id,)
        )

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
