"""Turns and resumes: run the graph for a message or a decision, record what it left, then show it.

Each run is a row that remembers the checkpoint it started from. A job that is retried (its worker died, the
database went away) reads that row and the thread's checkpoint to tell what happened: the run never began
(start it), was cut short (carry it on), or finished (show what it left). The outcome — replies, requests and
the jobs they need — is recorded in one transaction before anything is posted.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

from bot import render
from bot.checkpoints import known_thread
from bot.flow.decisions import Decisions
from bot.flow.inbox import who_may_see
from bot.flow.projection import Projector
from bot.flow.replies import Handled, Replies
from bot.flow.status import STATUS_DELAY, Activity, LiveStatus, waiting_activity
from bot.flow.streamed import queue_final, queue_removal
from bot.flow.streams import Streamer
from bot.flow.threads import mark_inbound, post_in_thread, turn_key
from bot.interrupts.registry import Registry
from bot.logs import TurnLog, set_ids
from bot.records.claims import Claimed
from bot.records.conversations import UNREAD, Conversation, Inbound, Unread
from bot.records.interrupts import FirstResumeRead, InterruptRecord
from bot.records.outbox import Intent, Outbox, home_key
from bot.records.runs import Run, Runs
from bot.records.streams import Streams
from bot.rules.routing import Router
from bot.runner import NO_RESULT, Outcome, Runners, Sink, Trace
from bot.slack.gateway import Gateway
from bot.store import Store
from bot.text import escape
from bot.types import DATABASE_ERRORS, Accepted, Conn, Deferrer, Refused, Request, SlackMessage, Where

log = logging.getLogger(__name__)

RETRY_ACTION = "lgslack.retry"
WORKING_REACTION = "hourglass_flowing_sand"


def resume_key(record_id: str) -> str:
    return f"resume:{record_id}"


def known(conversation: Conversation, latest: dict[str, Any] | None, read: bool) -> AbstractContextManager[None]:
    """The thread's latest checkpoint as the job's first read found it (`read`), under the conversation's lock: the
    graph's first load is served from it (`bot.checkpoints.known_thread`)."""
    return known_thread(conversation.thread_id, latest) if read else nullcontext()


def render_run_failed(error: BaseException, run_key: str) -> SlackMessage:
    failure = render.render_failure(error)
    blocks = [
        *failure.blocks[:1],
        {
            "type": "actions",
            "block_id": "lgslack_retry",
            "elements": [
                {
                    "type": "button",
                    "action_id": RETRY_ACTION,
                    "text": {"type": "plain_text", "text": "Retry"},
                    "value": run_key,
                }
            ],
        },
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "The details are in the bot's log."}]},
    ]
    return SlackMessage(text=failure.text, blocks=blocks)


@dataclass
class Left:
    """What a run's outcome left in its thread: whether a message is queued there (it clears Slack's status when
    posted), and the first request the thread now waits on."""

    posted: bool = False
    waiting: InterruptRecord | None = None
    quiet: Callable[[], bool] = lambda: False
    """Whether the thread shows no sign of work (ending it would make no Slack call): set by `_working`."""
    taken: list[Intent] | None = None
    """The thread's rows to send, leased as the outcome committed: whoever sends next sends these."""

    def take(self) -> list[Intent] | None:
        taken, self.taken = self.taken, None
        return taken


@dataclass
class Turns:
    store: Store
    runs: Runs
    outbox: Outbox
    runners: Runners
    registry: Registry
    router: Router
    jobs: Deferrer
    projector: Projector
    gateway: Gateway
    decisions: Decisions
    replies: Replies
    status_delay: float = STATUS_DELAY
    """How long a run goes on before its thread shows a status (BOT_STATUS_DELAY_MS)."""

    @property
    def streams(self) -> Streams:
        """The messages streamed while runs were going (in the same database as the outbox)."""
        return Streams(self.outbox.pool)

    # jobs

    def _checkpoints_in_db(self) -> bool:
        """Whether the default graph's checkpoints can be read beside our rows (a conversation on another graph of
        another runtime reads them from its runner: see `_begin`)."""
        try:
            return self.runners.get().checkpoints_in_db
        except Exception:
            return False

    async def resume_read(
        self, conn: Conn, claim: Claimed, record_id: str
    ) -> Callable[[], Awaitable[FirstResumeRead | None]] | None:
        """A claimed resume's first read, sent in the decision's transaction that claims its job (bot/jobs.py
        `Claims`), in its round trip; returns what reads it once that has committed, and the job starts from it
        (`handle_resume`'s `first`). None where the job reads it itself (checkpoints outside our database). A turn's
        job reads for itself: its intake's ack would wait for the read, and, measured, the turn gained nothing."""
        if not self._checkpoints_in_db():
            return None
        return await self.store.claimed_resume_in(
            conn, record_id, run_key=resume_key(record_id), begin_for=self.runners.allowed, claim=claim
        )

    async def handle_turn(self, *, team_id: str, channel_id: str, ts: str) -> None:
        key = turn_key(team_id, channel_id, ts)
        in_db = self._checkpoints_in_db()
        found = await self.store.inbound_in(
            team_id=team_id, channel_id=channel_id, ts=ts, run_key=key, checkpoint=in_db, begin_for=self.runners.allowed
        )
        if found is None:
            return
        inbound, conversation, run, was_open, before, begun, latest = found
        answered: Handled | None = None
        with known(conversation, latest, in_db):
            taken: list[Intent] | None = None
            if begun is not None:
                # The first read began it: a new message, nothing open to answer, an allowed graph (see `inbound_in`).
                taken = await self._drive(conversation, begun, fresh=True, inbound=inbound, none_pending=True)
            elif run is None:
                handled = None
                if inbound.status != "done":
                    handled = await self.replies.handle(conversation, inbound, was_open=was_open)
                    if handled is None:
                        # Not an answer: nothing was open in the conversation (and nothing opens while its job runs).
                        run = await self._begin(
                            conversation, key, "turn", inbound.user_id, inbound=inbound, before=before
                        )
                        if run is not None:
                            taken = await self._drive(conversation, run, fresh=True, inbound=inbound, none_pending=True)
                answered = handled if handled is not None and handled.decided is not None else None
            elif run.state in ("running", "retrying"):
                taken = await self._drive(conversation, run, fresh=False, inbound=inbound)
            if answered is None:
                await self.projector.project(conversation_id=conversation.id, taken=taken)
        if answered is not None:
            await self._resume_answered(answered)

    async def _resume_answered(self, answered: Handled) -> None:
        """A message that answered a request: its resume runs on in this job, which holds the conversation, with no
        hand-over to the resume's own job (queued with the decision: it then finds the run done, or carries on what
        a crash here cut short). Its projection sends the thread's rows, the answer before the question's rewrite;
        a slow one's question shows the decision after the status delay (`Projector.project_after`)."""
        assert answered.decided is not None
        ended = asyncio.Event()
        views = asyncio.create_task(self._views_after(ended, answered.views))
        try:
            await self.handle_resume(record_id=answered.decided)
        finally:
            ended.set()
            await views

    async def _views_after(self, ended: asyncio.Event, keys: tuple[str, ...]) -> None:
        try:
            await self.projector.project_after(ended, keys, self.status_delay)
        except Exception as exc:
            log.warning("could not show a decision now (%s); its outbox rows are sent again later", exc)

    async def handle_resume(self, *, record_id: str, first: FirstResumeRead | None = None) -> None:
        """A decision's resume. `first`: the job's first read, made by the statement that claimed it."""
        key = resume_key(record_id)
        found: tuple[InterruptRecord, Conversation, Run | None, str | Unread | None, Run | None, Any] | None
        in_db = self._checkpoints_in_db()
        if first is not None:
            found = first
        elif in_db:
            # One statement: the request read, and its run begun from the thread's checkpoint (see `resume_in`).
            found = await self.store.resume_in(record_id, run_key=key, begin_for=self.runners.allowed)
        else:
            read = await self.store.interrupt_in(record_id, run_key=key)
            found = None if read is None else (*read, None, None)
        if found is None or found[0].state != "decided":
            return
        record, conversation, run, before, begun, latest = found
        with known(conversation, latest, in_db):
            taken: list[Intent] | None = None
            if begun is not None:
                taken = await self._drive(conversation, begun, fresh=True, record=record)
            elif run is None:
                run = await self._begin(conversation, key, "resume", record.requested_by, record=record, before=before)
                if run is not None:
                    taken = await self._drive(conversation, run, fresh=True, record=record)
            elif run.state in ("running", "retrying"):
                taken = await self._drive(conversation, run, fresh=False, record=record)
            await self.projector.project(conversation_id=conversation.id, taken=taken)

    async def _begin(
        self,
        conversation: Conversation,
        key: str,
        kind: str,
        requester: str | None,
        *,
        inbound: Inbound | None = None,
        record: InterruptRecord | None = None,
        before: str | Unread | None = UNREAD,
    ) -> Run | None:
        """Record the run and the checkpoint it starts from (and, for a resume, its request resumed). `before`:
        the thread's latest checkpoint, when the job's first read found it."""
        if not self.runners.allows(conversation.graph):
            await self._refuse(conversation, key, inbound)
            return None
        if isinstance(before, Unread) or not self.runners.get(conversation.graph).checkpoints_in_db:
            before = await self.runners.get(conversation.graph).checkpoint(conversation.thread_id)
        if record is None:
            # One statement: the message stays `queued` until its outcome marks it done (the run row says it runs).
            async with self.store.pool.connection() as conn:
                return await self.runs.begin(
                    conn, key, conversation_id=conversation.id, kind=kind, before=before, requester=requester
                )
        async with self.store.transaction(pipelined=True) as conn:
            await self.store.mark_resumed(record.id, conn)
            run = await self.runs.begin(
                conn, key, conversation_id=conversation.id, kind=kind, before=before, requester=requester
            )
        return run

    async def retry(self, run_key: str, *, user_id: str, where: Where) -> Accepted | Refused:
        """The Retry button under a failed run: queue it again."""
        kind, _, rest = run_key.partition(":")
        async with self.store.transaction() as conn:
            run = await self.runs.retry(conn, run_key)
            if run is None:
                return Refused("That run is already going again (or done).", "Already retried.")
            if kind == "turn":
                team_id, channel_id, ts = rest.split(":", 2)
                await self.jobs.defer_turn(conn, run.conversation_id, team_id=team_id, channel_id=channel_id, ts=ts)
            else:
                await self.jobs.defer_resume(conn, run.conversation_id, record_id=rest)
            note = render.render_notice(f":repeat: <@{user_id}> asked me to try again…")
            keys: tuple[str, ...] = ()
            if where.channel_id and where.message_ts:
                keys = (f"retrying:{run_key}:{where.message_ts}:{uuid.uuid4().hex[:8]}",)
                await self.outbox.add(
                    conn,
                    keys[0],
                    op="update",
                    conversation_id=run.conversation_id,
                    channel_id=where.channel_id,
                    target_ts=where.message_ts,
                    message=note.as_dict(),
                )
        return Accepted(keys=keys)

    async def _refuse(self, conversation: Conversation, key: str, inbound: Inbound | None) -> None:
        """A conversation on a graph the bot is not configured to run (a channel-graph row outside BOT_GRAPH and
        BOT_GRAPHS) is told so, once. Its message is kept (marked done); a decision stays decided and is resumed
        by the reconciler once the graph is allowed."""
        allowed = ",".join(self.runners.allowed)
        log.error("conversation %s: graph %r not allowed (%s), refused", conversation.id, conversation.graph, allowed)
        note = render.render_notice(
            f":no_entry: This conversation's graph `{escape(conversation.graph or '')}` is not one this bot is set up "
            "to run, so I can't answer here. An admin can add it to BOT_GRAPHS."
        )
        async with self.store.transaction() as conn:
            await post_in_thread(self.outbox, conn, conversation, f"{key}:refused", note)
            if inbound is not None:
                await mark_inbound(self.store, conn, inbound, "done")

    # the run

    async def _drive(
        self,
        conversation: Conversation,
        run: Run,
        *,
        fresh: bool,
        inbound: Inbound | None = None,
        record: InterruptRecord | None = None,
        none_pending: bool = False,
    ) -> list[Intent] | None:
        """Run, record the outcome; returns the thread's rows it leased to send (None: take what is due)."""
        thread = conversation.thread_id
        set_ids(conversation_id=conversation.id)
        summary = TurnLog(run.key, run.kind, conversation.graph)
        trace = Trace(
            team_id=conversation.team_id,
            channel_id=conversation.channel_id,
            thread_ts=conversation.thread_ts,
            user_id=inbound.user_id if inbound else record.decided_by if record else None,
            kind=run.kind,
        )

        # The answer is shown while it is written (best effort); the outcome settles what was shown.
        streamer = Streamer(
            gateway=self.gateway,
            streams=self.streams,
            conversation=conversation,
            run_key=run.key,
            recipient=trace.user_id or run.requester,
        )
        sink = streamer.sink

        async def start() -> Any:
            runner = self.runners.get(conversation.graph)
            if record is not None:
                return await runner.resume(thread, record.interrupt_id, record.resume_value, trace=trace, sink=sink)
            if inbound is None:
                return await runner.start(thread, "", trace=trace, sink=sink)
            # The files' contents are read here, not in the ack path, and kept: a retry gives the same input.
            files = await self.gateway.read_files(inbound.files)
            await self.store.save_inbound_files(inbound, files)
            return await runner.start(thread, inbound.text, files, trace=trace, sink=sink)

        where = (
            (inbound.channel_id, inbound.ts) if inbound else (record.channel_id, record.message_ts) if record else None
        )
        async with self._working(where, conversation) as left:
            try:
                try:
                    result = await self._execute(conversation, run, fresh=fresh, start=start, trace=trace, sink=sink)
                finally:
                    await streamer.close()
                outcome = await self.runners.get(conversation.graph).outcome(thread, since=run.before, result=result)
                # Only this attempt can have streamed in a run it began (a retried one may find an earlier one's).
                may_have_streamed = not fresh or streamer.began
                # Pipelined: the writes go in one round trip, not one each.
                async with self.store.transaction(pipelined=True) as conn:
                    recorded = await self.record_outcome(
                        conn, conversation, run, outcome, superseding=not none_pending, streamed=may_have_streamed
                    )
                    if inbound is not None:
                        await mark_inbound(self.store, conn, inbound, "done")
                    taken = None
                    if left.quiet():
                        # Nothing to take off the thread before its messages go: they are leased as they commit,
                        # in this round trip, and sent next (after a status or reaction, taken as usual).
                        taken = await self.outbox.take_due_in(
                            conn, self.projector.lease_seconds, conversation_id=conversation.id
                        )
                left.posted, left.waiting = recorded.posted, recorded.waiting
                left.taken = await taken() if taken is not None else None
                summary.done(log, outcome)
            except DATABASE_ERRORS:
                summary.failed(log, "interrupted: the database went away (the job is retried)")
                raise
            except Exception as exc:
                # The graph raised, or what it left can't be recorded: say so, with a Retry button, rather than
                # fail the job again and again.
                log.exception("run %s failed in conversation %s", run.key, conversation.id)
                async with self.store.transaction() as conn:
                    await self.runs.finish(conn, run.key, state="failed", error=f"{type(exc).__name__}: {exc}"[:2000])
                    # What was streamed goes, as a failed run shows nothing but its failure; a retry shows it again.
                    streamed = await self.streams.unsettled(conn, run.key)
                    for cut in streamed:
                        await queue_removal(self.outbox, conn, cut)
                    await self.streams.settle(conn, [cut.key for cut in streamed])
                    key = f"{run.key}:failed:{uuid.uuid4().hex[:8]}"
                    await post_in_thread(self.outbox, conn, conversation, key, render_run_failed(exc, run.key))
                    if inbound is not None:
                        await mark_inbound(self.store, conn, inbound, "done")
                left.posted = True
                summary.failed(log, exc)
        return left.take()

    async def _execute(
        self,
        conversation: Conversation,
        run: Run,
        *,
        fresh: bool,
        start: Callable[[], Awaitable[Any]],
        trace: Trace | None = None,
        sink: Sink | None = None,
    ) -> Any:
        """Run the graph, or, for a retried job, do what is left of the run."""
        if fresh:
            return await start()
        runner = self.runners.get(conversation.graph)
        thread = conversation.thread_id
        await runner.settle(thread)
        if await runner.checkpoint(thread) == run.before:
            log.warning("run %s never began: starting it", run.key)
            return await start()
        if await runner.unfinished(thread):
            log.warning("carrying on run %s, cut short", run.key)
            if run.state == "retrying":
                return await runner.proceed(thread, trace=trace, sink=sink)
            async with self.store.transaction() as conn:
                note = render.render_notice(
                    ":arrows_counterclockwise: I was restarted in the middle of this: carrying on."
                )
                await post_in_thread(
                    self.outbox, conn, conversation, f"{run.key}:restarted:{uuid.uuid4().hex[:8]}", note
                )
            await self.projector.project(conversation_id=conversation.id)
            return await runner.proceed(thread, trace=trace, sink=sink)
        return NO_RESULT

    async def record_outcome(
        self,
        conn: Conn,
        conversation: Conversation,
        run: Run,
        outcome: Outcome,
        *,
        superseding: bool = True,
        streamed: bool = True,
    ) -> Left:
        """In one transaction: the replies to post, a record per request (with its route's timers), the requests
        the graph no longer has, and the run marked done. A reply that was streamed while it was written is that
        message, rewritten; any other message the run streamed is removed (bot/flow/streams.py). Without
        `superseding`, the caller knows no request was pending before the run, so none can have gone; without
        `streamed`, that the run streamed nothing."""
        left = Left()
        cuts = await self.streams.unsettled(conn, run.key) if streamed else []
        shown = {row.message_id: row for row in cuts if row.ts is not None}
        ids = [outcome.reply_ids[i] if i < len(outcome.reply_ids) else None for i in range(len(outcome.replies))]
        answers = {shown[i].key for i in ids if i in shown}
        for cut in cuts:
            if cut.key not in answers:
                await queue_removal(self.outbox, conn, cut)
        if cuts:
            await self.streams.settle(conn, [row.key for row in cuts])
        n = 0
        for reply, message_id in zip(outcome.replies, ids, strict=True):
            row = shown.get(message_id) if message_id is not None else None
            for i, message in enumerate(render.render_reply(reply)):
                if i == 0 and row is not None:
                    await queue_final(self.outbox, conn, row, f"{run.key}:reply:{n}", message)
                else:
                    await post_in_thread(self.outbox, conn, conversation, f"{run.key}:reply:{n}", message)
                    left.posted = True
                n += 1
        rule = self.runners.get(conversation.graph).rule
        if outcome.finished and outcome.show_result and not rule.conversational:
            for message in render.render_result(outcome.result):
                await post_in_thread(self.outbox, conn, conversation, f"{run.key}:reply:{n}", message)
                left.posted = True
                n += 1
        for pending in outcome.interrupts:
            request = Request(pending.value, pending.schema)
            renderer = self.registry.for_request(request)
            route = self.router.route_for(
                graph=conversation.graph,
                kind=renderer.kind,
                tools=renderer.tools(request, ""),
                payload=request.value,
                from_tool="tool" in (pending.source or ""),
            )
            record, new = await self.store.save_interrupt(
                conversation_id=conversation.id,
                interrupt_id=pending.interrupt_id,
                request=request,
                kind=renderer.kind,
                requested_by=run.requester,
                source=pending.source,
                route=route.as_dict() if route else None,
                conn=conn,
            )
            if new and record.pending:
                await self.refresh_homes(conn, conversation, record, renderer.tools(request, ""))
            if record.pending and left.waiting is None:
                left.waiting = record
            if not record.pending or record.message_ts is not None:
                continue
            if record.route is None:
                await self.outbox.add(
                    conn, f"request:{record.id}", role="request", conversation_id=conversation.id, record_id=record.id
                )
                left.posted = True
            elif new:
                await self.escalate(conn, record)
                left.posted = True
        if superseding:
            live = [p.interrupt_id for p in outcome.interrupts]
            for gone in await self.store.supersede_missing(conversation.id, live, conn):
                await self.decisions.show(conn, gone)
        await self.runs.finish(conn, run.key, state="ran")
        return left

    async def refresh_homes(
        self, conn: Conn, conversation: Conversation, record: InterruptRecord, tools: list[str]
    ) -> None:
        """A new request: the App Homes it may appear in (of those who ever opened theirs) are published again."""
        users, groups = who_may_see(
            self.decisions.policy, conversation.graph, tools, (record.requested_by, conversation.started_by)
        )
        if groups:
            await self.outbox.rearm_team_homes(conn, conversation.team_id, conversation_id=conversation.id)
        elif users:
            keys = [home_key(conversation.team_id, user) for user in sorted(users)]
            await self.outbox.rearm_homes(conn, keys, conversation_id=conversation.id)

    async def escalate(self, conn: Conn, record: InterruptRecord) -> None:
        """Queue the experts' copy, the notice in the asking thread, and the route's timers."""
        route = record.route or {}
        await self.outbox.escalate(
            conn, record_id=record.id, conversation_id=record.conversation_id, channel=str(route.get("channel"))
        )
        await self.outbox.add(
            conn, f"notice:{record.id}", role="notice", conversation_id=record.conversation_id, record_id=record.id
        )
        stages = [(stage, route.get(f"{stage}_after")) for stage in ("remind", "fallback", "timeout")]
        jobs = [
            await self.jobs.defer_timer(conn, record_id=record.id, stage=stage, delay=float(delay))
            for stage, delay in stages
            if delay
        ]
        if jobs:
            await self.store.add_timer_jobs(record.id, jobs, conn)

    # small helpers

    @asynccontextmanager
    async def _working(
        self, where: tuple[str | None, str | None] | None, conversation: Conversation | None = None
    ) -> AsyncIterator[Left]:
        """While the run lasts, the conversation's thread says what the agent does (Slack's status: "Thinking…",
        the tool it calls) once it takes longer than a moment; after it, the run's message clears the status, or it
        says who the thread now waits for (the run fills in the `Left` it is given). Where Slack refuses a status, a
        reaction on the message that started the work (`where`). Best effort: never fails the run."""
        thread = (conversation.channel_id, conversation.thread_ts) if conversation else None
        live = await LiveStatus.begin(self.gateway, thread, where, reaction=WORKING_REACTION, delay=self.status_delay)
        left = Left(quiet=lambda: live.quiet)
        try:
            with live.watching():
                yield left
        except BaseException:
            await live.end()
            raise
        live.posted = left.posted
        waiting = left.waiting
        final = None
        if conversation is not None and waiting is not None and live.may_show_status:
            final = await self._waiting(conversation, waiting, left.take())
        await live.end(final)

    async def _waiting(
        self, conversation: Conversation, pending: InterruptRecord, taken: list[Intent] | None = None
    ) -> Activity | None:
        """What the thread waits for after the run, with a request pending. Its messages are sent first: Slack
        clears a status when the app posts in the thread."""
        try:
            await self.projector.project(conversation_id=conversation.id, taken=taken)
            return await waiting_activity(
                pending,
                graph=conversation.graph,
                registry=self.registry,
                policy=self.decisions.policy,
                gateway=self.gateway,
            )
        except Exception:
            log.exception("could not tell what conversation %s waits for", conversation.id)
            return None
