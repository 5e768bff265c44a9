"""Conversations (Slack thread ↔ graph thread), the graph chosen per channel, and the inbound messages taken in."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from langgraph.checkpoint.postgres.base import BasePostgresSaver
from psycopg.pq import TransactionStatus
from psycopg.types.json import Jsonb

from bot.records.base import Conn, Records
from bot.records.claims import claim_insert
from bot.records.runs import R_COLUMNS, Run, prefixed_run, run_columns, run_from
from bot.records.wake import QUIET

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


def _inbound(row: dict[str, Any]) -> Inbound:
    fields = {k: row[k] for k in Inbound.__dataclass_fields__}
    fields["record_id"] = str(row["record_id"]) if row["record_id"] else None
    fields["files"] = list(row["files"] or [])
    return Inbound(**fields)


class Unread:
    """A value the read did not ask for."""

    def __repr__(self) -> str:
        return "UNREAD"


UNREAD = Unread()


def checkpoint_join(thread_id: str) -> str:
    """SQL for a LEFT JOIN LATERAL `k` of a graph thread's latest root checkpoint, read with the saver's own SELECT
    (`AsyncPostgresSaver.aget_tuple`'s, with its blobs and pending writes): a job's first read gives the graph its
    first load with it (`bot.checkpoints.known_thread`). `thread_id` is a column name; `K_COLUMNS` selects it."""
    return (
        f" LEFT JOIN LATERAL ({BasePostgresSaver.SELECT_SQL} WHERE thread_id = {thread_id}::text"
        " AND checkpoint_ns = '' ORDER BY checkpoint_id DESC LIMIT 1) k ON true"
    )


K_COLUMNS = (
    "k.checkpoint_id AS c_checkpoint, k.checkpoint AS k_checkpoint, k.parent_checkpoint_id AS k_parent_checkpoint_id,"
    " k.metadata AS k_metadata, k.channel_values AS k_channel_values, k.pending_writes AS k_pending_writes"
)
"""The columns of `checkpoint_join` (`c_checkpoint`: its id, None without one), read back by `checkpoint_row`."""

NO_CHECKPOINT_COLUMNS = "NULL AS c_checkpoint"


def checkpoint_row(row: dict[str, Any], thread_id: str) -> dict[str, Any] | None:
    """The saver's row of the checkpoint `K_COLUMNS` read (None: the thread has none)."""
    if row.get("c_checkpoint") is None:
        return None
    return {
        "thread_id": thread_id,
        "checkpoint_ns": "",
        "checkpoint_id": row["c_checkpoint"],
        "checkpoint": row["k_checkpoint"],
        "parent_checkpoint_id": row["k_parent_checkpoint_id"],
        "metadata": row["k_metadata"],
        "channel_values": row["k_channel_values"],
        "pending_writes": row["k_pending_writes"],
    }


C_COLUMNS = (
    "c.id AS c_id, c.team_id AS c_team_id, c.channel_id AS c_channel_id, c.thread_ts AS c_thread_ts,"
    " c.thread_id AS c_thread_id, c.graph AS c_graph, c.started_by AS c_started_by"
)
"""A conversation's columns beside another table's, prefixed (read back by `prefixed_conversation`)."""


def prefixed_conversation(row: dict[str, Any]) -> Conversation:
    return Conversation(
        id=row["c_id"],
        team_id=row["c_team_id"],
        channel_id=row["c_channel_id"],
        thread_ts=row["c_thread_ts"],
        thread_id=row["c_thread_id"],
        graph=row["c_graph"],
        started_by=row["c_started_by"],
    )


_TURN_ARGS = "jsonb_build_object('team_id', %(team)s::text, 'channel_id', %(channel)s::text, 'ts', %(ts)s::text)"
"""A turn job's arguments, as `bot.jobs` queues them."""
_CLAIM_TURN = claim_insert(
    lock="chosen.id", args=_TURN_ARGS, source="FROM chosen", condition="EXISTS (SELECT 1 FROM recorded)"
)
"""The message's turn job, run by the caller (its worker id, `worker`), when it is new and its conversation free."""

_TAKE_IN = f"""
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
), claimed AS ({_CLAIM_TURN}
), deferred AS (
    SELECT procrastinate_defer_jobs_v1(ARRAY[ROW(
        %(queue)s::text, %(task)s::text, 0, chosen.id, NULL,
        {_TURN_ARGS}, NULL
    )::procrastinate_job_to_defer_v1]) AS ids
    FROM chosen, (SELECT CASE WHEN %(wake_after)s THEN {QUIET} END) AS quiet
    WHERE %(task)s::text IS NOT NULL AND EXISTS (SELECT 1 FROM recorded) AND NOT EXISTS (SELECT 1 FROM claimed)
)
SELECT chosen.*, EXISTS (SELECT 1 FROM recorded) AS recorded, (SELECT ids FROM deferred) AS jobs,
    (SELECT id FROM claimed) AS claimed
FROM chosen
"""
"""The conversation of a message's thread, the message recorded in it once and, when `task` is given, its turn job
queued, locked by the conversation. The job is procrastinate's own row, made by its SQL function as its `defer`
makes it (`procrastinate_defer_jobs_v1`): one statement, one round trip before the ack. With `wake_after`, the
job's insert sends no notification: the caller wakes the workers once it has committed (bot/records/wake.py).
With `worker` (the intake's worker id, `bot.jobs.Claims`), the job is inserted already running for that worker
when no other job of the conversation waits or runs (and the unique index of running locks agrees): the caller
runs it. Checked against the installed procrastinate (3.10) by tests/test_intake_race.py."""


class TakenIn(NamedTuple):
    """What `take_in` did with a message."""

    conversation: Conversation | None
    """Its conversation (None: not a message of ours)."""
    recorded: bool
    """False: delivered before."""
    jobs: tuple[int, ...]
    """The jobs it queued (its turn's, when new)."""
    claimed: int | None = None
    """The turn job it inserted running for the caller's worker (`claim_for`): the caller runs it."""


class ConversationRecords(Records):
    """Conversations, channel graphs and inbound messages."""

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
        turn_job: tuple[str, str] | None = None,
        wake_after: bool = False,
        claim_for: int | None = None,
    ) -> TakenIn:
        """A person's message at intake, in one statement: the conversation of its thread — the one there is, else
        the escalated request's whose message it replies to (in the experts' channel), else a new one when `start`
        (the bot was mentioned, or in a DM), with the channel's graph or `default_graph` — and the message recorded
        in it once. Returns the conversation (None: not ours), whether the message is new (False: delivered
        before) and the jobs queued. With `turn_job` (queue, task name), a new message's turn job is queued by the
        same statement; without it, run it in the transaction that queues the message's turn. With `wake_after`
        too, on a connection outside a transaction, the job is queued without a notification: wake the workers
        with `bot.records.wake.wake` (the statement has committed when this returns). With `claim_for` (a worker
        id), the turn job may be inserted running for that worker instead (`TakenIn.claimed`): the caller runs it."""
        wake_after = bool(wake_after and turn_job and conn.info.transaction_status == TransactionStatus.IDLE)
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
            "queue": turn_job[0] if turn_job else None,
            "task": turn_job[1] if turn_job else None,
            "wake_after": wake_after,
            "worker": claim_for if turn_job else None,
        }
        for _ in range(2):
            row = await self._one(_TAKE_IN, params, conn)
            if row is not None:
                return TakenIn(_conversation(row), bool(row["recorded"]), tuple(row["jobs"] or ()), row["claimed"])
            if not start:
                return TakenIn(None, False, ())
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

    async def inbound_in(
        self,
        *,
        team_id: str,
        channel_id: str,
        ts: str,
        run_key: str,
        checkpoint: bool = False,
        begin_for: Sequence[str] = (),
    ) -> tuple[Inbound, Conversation, Run | None, bool, str | Unread | None, Run | None, dict[str, Any] | None] | None:
        """A turn job's first read, in one statement: the recorded message, its conversation, the run `run_key`
        (None: not begun), whether a request was open in the conversation when the message came (see
        `open_interrupts`) and, with `checkpoint`, the graph thread's latest checkpoint: its id, and (the last value)
        its row as the saver reads it (`checkpoint_join`), for the graph's first load.

        With `checkpoint` and `begin_for` (the graphs a run may use), the same statement begins the run, from that
        checkpoint, when the message is one a run begins from: not done, no run yet, not a reply to an escalated
        request, nothing open to answer, some text or files, and its conversation's graph among `begin_for`. That
        run is the one before last (None: the caller decides, as without `begin_for`)."""
        begin = bool(checkpoint and begin_for)
        found = f"""
            SELECT i.*, {C_COLUMNS}, {R_COLUMNS}, EXISTS (
                SELECT 1 FROM lgslack_interrupts o WHERE o.conversation_id = c.id
                  AND (o.state = 'pending' OR (o.state = 'decided'
                       AND (o.resumed_at IS NULL OR o.resumed_at > i.received_at)))
            ) AS c_open, {K_COLUMNS if checkpoint else NO_CHECKPOINT_COLUMNS}
            FROM lgslack_inbound i JOIN lgslack_conversations c ON c.id = i.conversation_id
            LEFT JOIN lgslack_runs r ON r.key = %(key)s {checkpoint_join("c.thread_id") if checkpoint else ""}
            WHERE i.team_id = %(team)s AND i.channel_id = %(channel)s AND i.ts = %(ts)s
        """
        params: dict[str, Any] = {"key": run_key, "team": team_id, "channel": channel_id, "ts": ts}
        if not begin:
            sql = found
        else:
            # What `Turns._begin` would insert, where `Turns.handle_turn` would call it (`Replies.handle` answers
            # the other messages); ON CONFLICT: begun already, as there.
            sql = f"""
                WITH found AS ({found}),
                begun AS (
                    INSERT INTO lgslack_runs (key, conversation_id, kind, before, requester)
                    SELECT %(key)s, f.c_id, 'turn', f.c_checkpoint, f.user_id FROM found f
                    WHERE f.r_key IS NULL AND f.status <> 'done' AND f.record_id IS NULL AND NOT f.c_open
                      AND (f.text <> '' OR jsonb_array_length(f.files) > 0) AND f.c_graph = ANY(%(graphs)s)
                    ON CONFLICT (key) DO NOTHING
                    RETURNING *
                )
                SELECT f.*, {run_columns("b")} FROM found f LEFT JOIN begun b ON true
            """
            params["graphs"] = list(begin_for)
        # Binary, as the checkpointer reads its own rows: its blobs come as they are.
        row = await self._one(sql, params, binary=checkpoint)
        if row is None:
            return None
        before = row["c_checkpoint"] if checkpoint else UNREAD
        begun = run_from(row, "b_") if begin else None
        conversation = prefixed_conversation(row)
        latest = checkpoint_row(row, conversation.thread_id) if checkpoint else None
        return _inbound(row), conversation, prefixed_run(row), bool(row["c_open"]), before, begun, latest

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
