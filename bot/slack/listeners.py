"""Bolt listeners: thin. Validate, do the durable step, ack; what Slack should show is sent after the ack.

Every payload field used is checked first: a malformed request is logged and dropped (acked), never a 5xx
that Slack would retry three times.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_bolt.error import BoltUnhandledRequestError
from slack_bolt.response import BoltResponse

from bot.blocks import ACTION, MODAL_CALLBACK, parse_action_value
from bot.flow.decisions import Decisions
from bot.flow.projection import Projector
from bot.flow.turns import RETRY_ACTION, Turns
from bot.jobs import claiming
from bot.records.wake import wake
from bot.slack import home
from bot.slack.files import shared_files
from bot.slack.gateway import Gateway
from bot.slack.web import SlackRefused, SlackUnavailable
from bot.store import Store
from bot.text import from_slack
from bot.types import Accepted, Deferrer, OpenModal, Refused, Where

if TYPE_CHECKING:
    from bot.jobs import Claims

log = logging.getLogger(__name__)

# Message subtypes that are a person writing; every other subtype (edits, joins, bots) is ignored.
PERSON_SUBTYPES = (None, "file_share", "thread_broadcast")
_TS = re.compile(r"[0-9]{1,12}\.[0-9]{1,9}")
_ID = re.compile(r"[A-Z0-9]{2,40}")
RECENT = 10_000
"""How many messages a process remembers having recorded, so that the second event Slack sends for a mention (an
`app_mention` and a `message`), or a retry, is acked without a statement that would find it recorded."""
QUIET = 0.05
"""Seconds without a message taken in before the intake may run a job itself (`Door.claims_now`)."""


class MessageEvent(TypedDict, total=False):
    type: str
    subtype: str
    channel: str
    channel_type: str
    user: str
    bot_id: str
    text: str
    ts: str
    thread_ts: str
    team: str
    blocks: list[dict[str, Any]]
    files: list[dict[str, Any]]


def clean(text: Any) -> str:
    """Text as PostgreSQL can store it (no NUL, no lone surrogate), whatever came in."""
    return str(text or "").replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def _escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_STYLES = (("code", "`"), ("bold", "*"), ("italic", "_"), ("strike", "~"))
_REFS = {"user": ("@", "user_id"), "channel": ("#", "channel_id"), "usergroup": ("!subteam^", "usergroup_id")}


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _inline(element: dict[str, Any]) -> str:
    """One rich-text element as it reads in a message's `text` (escaped as Slack escapes it)."""
    kind = element.get("type")
    if kind == "text":
        text = _escaped(str(element.get("text") or ""))
        style = element.get("style")
        for name, mark in _STYLES:
            if isinstance(style, dict) and style.get(name) and text.strip():
                text = f"{mark}{text}{mark}"
        return text
    if kind == "link":
        url, label = _escaped(str(element.get("url") or "")), element.get("text")
        return f"<{url}|{_escaped(str(label))}>" if label else f"<{url}>"
    if isinstance(kind, str) and kind in _REFS:
        sigil, key = _REFS[kind]
        return f"<{sigil}{element.get(key) or ''}>"
    if kind == "emoji":
        return f":{element.get('name') or ''}:"
    if kind == "broadcast":
        return f"<!{element.get('range') or 'here'}>"
    if kind in ("date", "color", "team"):
        value = element.get("fallback") or element.get("value") or element.get("team_id") or ""
        return _escaped(str(value))
    return ""


def _inlines(part: dict[str, Any]) -> str:
    return "".join(_inline(e) for e in _dicts(part.get("elements")))


def _rich_part(part: dict[str, Any]) -> str:
    """A section, list, quote or preformatted part of a rich_text block."""
    kind = part.get("type")
    if kind == "rich_text_list":
        indent, start = "    " * _int(part.get("indent")), _int(part.get("offset"))
        ordered = part.get("style") == "ordered"
        items = enumerate(_dicts(part.get("elements")), start + 1)
        return "\n".join(f"{indent}{f'{n}.' if ordered else '•'} {_inlines(item)}" for n, item in items)
    if kind == "rich_text_quote":
        return "\n".join(f"&gt; {line}" for line in _inlines(part).split("\n"))
    if kind == "rich_text_preformatted":
        return f"```{_inlines(part)}```"
    return _inlines(part)


def blocks_text(blocks: Any) -> str:
    """A message's text read from its blocks (rich_text, and the text of sections, headers and contexts),
    written as Slack writes a message's `text`: mentions as <@U…>/<#C…>, links as <url|label>, emoji as :name:.
    """
    lines: list[str] = []
    for block in _dicts(blocks):
        if block.get("type") == "rich_text":
            text = ""
            for part in _dicts(block.get("elements")):
                # Lists, quotes and code blocks are lines of their own; sections carry their own line breaks.
                alone = part.get("type") != "rich_text_section"
                if alone and text and not text.endswith("\n"):
                    text += "\n"
                text += _rich_part(part) + ("\n" if alone else "")
            lines.append(text.rstrip("\n"))
            continue
        texts = [block.get("text"), *_dicts(block.get("fields")), *_dicts(block.get("elements"))]
        lines += [str(t["text"]) for t in texts if isinstance(t, dict) and isinstance(t.get("text"), str)]
    return "\n".join(line for line in lines if line)


def clean_values(value: Any) -> Any:
    """Submitted values with every string cleaned, so an answer can be stored and sent to the graph."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {clean(k): clean_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_values(v) for v in value]
    return value


def readable(body: Any) -> bool:
    """Whether Bolt can route this payload: the parts it indexes without checking (in its matchers, its
    authorization and the arguments it builds for listeners and error handlers) have the right types. Anything
    else would fail inside Bolt, before our listeners, as a 500 that Slack retries."""
    if not isinstance(body, dict):
        return False
    if "event" in body:
        event = body["event"]
        if not isinstance(event, dict):
            return False
        if not all(isinstance(event.get(key), dict | None) for key in ("message", "previous_message")):
            return False
    if "actions" in body:
        actions = body["actions"]
        if not (isinstance(actions, list) and actions):
            return False
        if not all(isinstance(a, dict) and isinstance(a.get("action_id"), str) for a in actions):
            return False
    if "view" in body:
        view = body["view"]
        if not (isinstance(view, dict) and "type" in view):
            return False
    return True


def _id(value: Any) -> str | None:
    return value if isinstance(value, str) and _ID.fullmatch(value) else None


def _ts(value: Any) -> str | None:
    return value if isinstance(value, str) and _TS.fullmatch(value) else None


def _part(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    return value if isinstance(value, dict) else {}


def _where(body: dict[str, Any]) -> Where:
    container, channel, message = _part(body, "container"), _part(body, "channel"), _part(body, "message")
    return Where(
        channel_id=_id(container.get("channel_id")) or _id(channel.get("id")),
        message_ts=_ts(container.get("message_ts")) or _ts(message.get("ts")),
    )


def _user(body: dict[str, Any]) -> str | None:
    user = body.get("user")
    return _id(user.get("id")) if isinstance(user, dict) else None


@dataclass
class Door:
    """What the listeners need, and the projections they start after acking."""

    store: Store
    jobs: Deferrer
    decisions: Decisions
    turns: Turns
    projector: Projector
    gateway: Gateway
    default_graph: str
    single_team: bool = True
    """One workspace, one token (no OAuth): what `fast_event` needs."""
    bot_user_id: str | None = None
    background: set[asyncio.Task[None]] = field(default_factory=set)
    recorded: OrderedDict[tuple[str, str, str], None] = field(default_factory=OrderedDict)
    """The messages this process recorded (committed, turn queued), newest last, at most `RECENT`."""
    taking: dict[tuple[str, str, str], asyncio.Future[bool]] = field(default_factory=dict)
    """The messages being taken in now: whether each was recorded, for their other event to wait on."""
    waking: set[str] = field(default_factory=set)
    """The queues a wake-up statement is being sent for now (`_wake`)."""
    owed: dict[str, int] = field(default_factory=dict)
    """Per queue, the newest job committed since the last wake-up statement for it began."""
    claims: Claims | None = None
    """The turns this process runs itself (`BOT_INTAKE_TURNS`, in `serve` and `socket`): see `bot.jobs.Claims`."""
    active_at: float = -QUIET
    """When (monotonic) the last message or decision was taken in."""

    async def take_in(
        self, event: MessageEvent, *, team_id: str | None, bot_user_id: str | None, mentioned: bool
    ) -> None:
        """A person's message (a `message` or `app_mention` event): recorded, with its turn queued, before the ack."""
        if event.get("subtype") not in PERSON_SUBTYPES or event.get("bot_id"):
            return
        user, channel_id, ts = _id(event.get("user")), _id(event.get("channel")), _ts(event.get("ts"))
        if not (user and channel_id and ts):
            log.warning("ignored a message event without a valid user, channel or ts")
            return
        if bot_user_id and user == bot_user_id:
            return
        team = _id(team_id) or _id(event.get("team")) or ""
        key = (team, channel_id, ts)
        if key in self.recorded:
            # Recorded here before, with its turn queued: the statement would find it and do nothing (issue 11).
            log.debug("message %s/%s was recorded before; one turn only", channel_id, ts)
            return
        other = self.taking.get(key)
        if other is not None and await asyncio.shield(other):
            # Slack sends a mention's two events at once: the other one's statement recorded it (and committed).
            log.debug("message %s/%s was recorded by its other event; one turn only", channel_id, ts)
            return
        taking = self.taking.setdefault(key, asyncio.get_running_loop().create_future())
        try:
            await self._take_in(event, key, user, bot_user_id=bot_user_id, mentioned=mentioned)
        finally:
            if self.taking.get(key) is taking:
                del self.taking[key]
            if not taking.done():
                taking.set_result(key in self.recorded)

    async def _take_in(
        self, event: MessageEvent, key: tuple[str, str, str], user: str, *, bot_user_id: str | None, mentioned: bool
    ) -> None:
        team, channel_id, ts = key
        raw = clean(event.get("text"))
        if not raw.strip():
            # Slack may send a message's content only in its blocks.
            raw = clean(blocks_text(event.get("blocks")))
        files = shared_files(event.get("files"))
        mentioned = mentioned or bool(bot_user_id and f"<@{bot_user_id}>" in raw)
        thread_ts = _ts(event.get("thread_ts")) or ts
        is_dm = event.get("channel_type") == "im"
        # One statement before the ack (issue 11): the conversation (found, the escalated request's, or started)
        # with the message recorded in it and its turn job queued. If it fails, Slack gets an error and delivers
        # again; once it is done, Slack's retries are recognised as the same message.
        turn_job = self.jobs.turn_job()
        # Alone, the statement's own commit wakes the workers (no statement after it); while other messages are
        # being taken in here or a wake-up is on its way, it leaves that to one wake-up after the commit, so that
        # the commits do not wait for each other's disk flushes (bot/records/wake.py).
        busy = len(self.taking) > 1 or bool(self.waking)
        # With nothing else to take in, this process runs the turn itself, with no hand-over to a worker: its job is
        # inserted running for this process, if nothing else of the conversation waits or runs (bot/jobs.py Claims).
        claims = self.claims_now(busy=busy)
        worker = claims.reserve() if claims is not None else None
        claims = claims if worker is not None else None
        try:
            async with self.store.pool.connection() as conn:
                conversation, recorded, jobs, claimed = await self.store.take_in(
                    conn,
                    team_id=team,
                    channel_id=channel_id,
                    thread_ts=thread_ts,
                    ts=ts,
                    user_id=user,
                    text=from_slack(raw, bot_user_id),
                    files=files,
                    start=mentioned or is_dm,
                    default_graph=self.default_graph,
                    turn_job=turn_job,
                    wake_after=busy,
                    claim_for=worker,
                )
        except BaseException:
            if claims is not None:
                claims.release()
            raise
        if claims is not None:
            if claimed is not None and conversation is not None:
                kwargs = {"team_id": team, "channel_id": channel_id, "ts": ts}
                claims.start(claimed, turn_job[1], conversation.id, kwargs)
            else:
                claims.release()
        if jobs:
            # This process's own workers (`serve` with BOT_WORKERS) need no notification to start.
            self.jobs.wake_here()
            if busy:
                self._wake(turn_job[0], jobs[-1])
        if conversation is not None:
            if not recorded:
                log.debug("message %s/%s was delivered before; one turn only", channel_id, ts)
            self.recorded[key] = None
            while len(self.recorded) > RECENT:
                self.recorded.popitem(last=False)

    def claims_now(self, *, busy: bool, taking: bool = True) -> Claims | None:
        """Whether this process may run the job it is recording itself (`claims`): only when it is taking nothing
        else in (`busy`) and took no message in for `QUIET` seconds before (`taking`: this is one). A steady stream
        of messages is the workers' to run, so that the intake's acks never wait behind runs."""
        now = time.monotonic()
        quiet = now - self.active_at >= QUIET
        if taking:
            self.active_at = now
        return self.claims if quiet and not busy else None

    def _wake(self, queue: str, job_id: int) -> None:
        """Wake the workers for a job just committed, with one wake-up statement per queue on its way at a time: a
        notification only tells each worker to fetch until nothing is left, so one sent after a burst of commits
        serves them all. Under load that is a statement for many turns instead of one each (issue 11). A job
        committed while one is on its way may have committed after it was sent: one more follows it."""
        self.owed[queue] = job_id
        if queue not in self.waking:
            self.waking.add(queue)
            self.later(self._wake_while_owed(queue))

    async def _wake_while_owed(self, queue: str) -> None:
        try:
            while (job_id := self.owed.pop(queue, None)) is not None:
                await wake(self.store.pool, queue, [job_id])
        finally:
            self.waking.discard(queue)

    def learn(self, context: AsyncBoltContext) -> None:
        """What Bolt found out about the app (one workspace): its bot user, for `fast_event`."""
        if self.single_team and context.bot_user_id:
            self.bot_user_id = context.bot_user_id

    async def fast_event(self, payload: Any) -> bool:
        """A person's message in a channel, taken in without Bolt's dispatch (issue 11: the ack path is most of
        what a busy intake spends). Only once Bolt has told the bot user (`learn`), with one workspace, and only
        for `message` and `app_mention` events outside DMs (assistant threads are DMs: Bolt's middleware takes
        them). Everything else, and anything unexpected, is Bolt's (False). The signature was checked before."""
        if not (self.single_team and self.bot_user_id and isinstance(payload, dict)):
            return False
        event = payload.get("event")
        if payload.get("type") != "event_callback" or not isinstance(event, dict):
            return False
        kind = event.get("type")
        if kind not in ("message", "app_mention") or event.get("channel_type") == "im":
            return False
        if not readable(payload):
            return False
        team = payload.get("team_id")
        await self.take_in(
            event,  # type: ignore[arg-type]
            team_id=team if isinstance(team, str) else None,
            bot_user_id=self.bot_user_id,
            mentioned=kind == "app_mention",
        )
        return True

    def later(self, work: Coroutine[Any, Any, None]) -> None:
        """Run after the ack; a failure here is re-driven from the outbox, so it is only logged."""
        task = asyncio.create_task(self._quietly(work))
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    @staticmethod
    async def _quietly(work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except (SlackUnavailable, SlackRefused) as exc:
            log.warning("a Slack call after the ack failed (%s); outbox rows are sent again later", exc)
        except Exception:
            log.exception("a projection after the ack failed; the reconciler will send it")

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109
        if self.background:
            await asyncio.wait(set(self.background), timeout=timeout)

    def show(
        self, where: Where, user: str, result: Accepted | Refused, *, resume: asyncio.Task[None] | None = None
    ) -> None:
        """What a click or a modal did, shown after the ack. `resume`: the decision's resume, running here (claimed
        by its transaction)."""
        if isinstance(result, Accepted) and result.keys:
            keys = list(result.keys)
            if resume is not None and not resume.done():
                # Once the resume, running here, has shown its answer, or has run for the status delay.
                ended = asyncio.Event()
                resume.add_done_callback(lambda _: ended.set())
                self.later(self.projector.project_after(ended, keys, self.turns.status_delay))
            else:
                self.later(self.projector.project(keys=keys))
        elif isinstance(result, Refused) and where.channel_id:
            self.later(self.gateway.ephemeral(channel=where.channel_id, user=user, text=result.text))


def register(app: AsyncApp, door: Door) -> None:
    """Attach the listeners of the front door to a Bolt app."""
    home.register(app, door)  # App Home and /agent first: they match only their own requests

    @app.event("app_mention")
    async def on_mention(event: MessageEvent, context: AsyncBoltContext) -> None:
        door.learn(context)
        await door.take_in(event, team_id=context.team_id, bot_user_id=context.bot_user_id, mentioned=True)

    @app.event("message")
    async def on_message(event: MessageEvent, context: AsyncBoltContext) -> None:
        door.learn(context)
        await door.take_in(event, team_id=context.team_id, bot_user_id=context.bot_user_id, mentioned=False)

    @app.action(re.compile(rf"^{re.escape(ACTION)}:"))
    async def on_click(ack: AsyncAck, body: dict[str, Any]) -> None:
        user, actions = _user(body), body.get("actions")
        if not user or not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
            log.warning("ignored a click without a user or an action")
            await ack()
            return
        record_id, action = parse_action_value(clean(actions[0].get("value")))
        where = _where(body)
        # Its resume may run here (bot/jobs.py Claims).
        async with claiming(door.claims_now(busy=bool(door.taking), taking=False)) as claimed:
            result = await door.decisions.click(record_id, action, user_id=user, where=where)
        await ack()
        trigger_id = body.get("trigger_id")
        if isinstance(result, OpenModal):
            if isinstance(trigger_id, str):
                view = {**result.view, "private_metadata": _metadata(result.view, where)}
                door.later(door.gateway.open_view(trigger_id=trigger_id, view=view))
        else:
            door.show(where, user, result, resume=claimed.running)

    @app.action(RETRY_ACTION)
    async def on_retry(ack: AsyncAck, body: dict[str, Any]) -> None:
        user, actions = _user(body), body.get("actions")
        if not user or not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
            await ack()
            return
        where = _where(body)
        result = await door.turns.retry(clean(actions[0].get("value")), user_id=user, where=where)
        await ack()
        door.show(where, user, result)

    @app.view(MODAL_CALLBACK)
    async def on_submit(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        user = _user(body)
        state = view.get("state") if isinstance(view, dict) else None
        values = state.get("values") if isinstance(state, dict) else None
        if not user or not isinstance(values, dict):
            log.warning("ignored a modal submission without a user or values")
            await ack()
            return
        record_id, action, where = _parse_metadata(clean(view.get("private_metadata")))
        # Its resume may run here (bot/jobs.py Claims).
        async with claiming(door.claims_now(busy=bool(door.taking), taking=False)) as claimed:
            result = await door.decisions.submit(record_id, action, clean_values(values), user_id=user, where=where)
        if isinstance(result, dict):
            await ack(response_action="errors", errors=result)
            return
        if isinstance(result, OpenModal):
            view = {**result.view, "private_metadata": _metadata(result.view, where or Where(None, None))}
            await ack(response_action="update", view=view)
            return
        if isinstance(result, Refused):
            blocks = view.get("blocks")
            blocks = blocks if isinstance(blocks, list) else []
            first_input = next(
                (b.get("block_id") for b in blocks if isinstance(b, dict) and b.get("type") == "input"), None
            )
            if first_input:
                await ack(response_action="errors", errors={first_input: result.plain})
                return
        await ack()
        door.show(where or Where(None, None), user, result, resume=claimed.running)

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> BoltResponse | None:
        kind = body.get("type") if isinstance(body, dict) else None
        if isinstance(error, BoltUnhandledRequestError):
            # Nothing here takes it (an event type without a listener, say): acknowledged, and logged. A 404 would
            # be retried by Slack, and too many of them disable the app's event subscription.
            event = body.get("event") if isinstance(body, dict) else None
            log.info("acknowledged a %s that nothing handles", event.get("type") if isinstance(event, dict) else kind)
            return BoltResponse(status=200, body="")
        log.error("listener failed on a %s request", kind or "Slack", exc_info=error)
        return None


def _metadata(view: dict[str, Any], where: Where) -> str:
    """The modal remembers the message it was opened from, so its submission is checked like the click."""
    base = str(view.get("private_metadata") or "")
    return f"{base}|{where.channel_id or ''}|{where.message_ts or ''}"


def _parse_metadata(raw: str) -> tuple[str, str, Where | None]:
    record_id, action = parse_action_value(raw)
    action, _, rest = action.partition("|")
    if not rest:
        return record_id, action, None
    channel, _, ts = rest.partition("|")
    return record_id, action, Where(_id(channel), _ts(ts))
