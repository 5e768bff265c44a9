"""The sandbox's behaviour, independent of HTTP: messages, events, interactions, modals, logs."""

from __future__ import annotations

import copy
import itertools
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bot.dev.sandbox import assistant, events, interactions
from bot.dev.sandbox.blocks import MESSAGE_BLOCK_LIMIT, assign_ids, find_action, iter_elements, validate_blocks
from bot.dev.sandbox.commands import Surfaces
from bot.dev.sandbox.delivery import DEFAULT_RETRY_DELAYS, Deliverer, HttpResult
from bot.dev.sandbox.errors import SlackError
from bot.dev.sandbox.faults import Faults
from bot.dev.sandbox.feed import Feed
from bot.dev.sandbox.files import FileStore
from bot.dev.sandbox.oauth import OAuth
from bot.dev.sandbox.views import ModalStore
from bot.dev.sandbox.workspace import (
    BOT_ID,
    BOT_USER_ID,
    TEAM_ID,
    TEAM_NAME,
    TEAM_OF,
    Channel,
    Message,
    User,
    Workspace,
)

MAX_TEXT = 40_000
RESPONSE_URL_USES = 5
RESPONSE_URL_TTL = 30 * 60


@dataclass
class ApiCall:
    """One Web API call the app made: method, params (token removed), response and HTTP status.

    `fault` names the injected fault the call suffered (None for a normal call); `status` is None
    when the connection was dropped without an HTTP answer.
    """

    method: str
    params: dict[str, Any]
    response: dict[str, Any]
    status: int | None = 200
    fault: str | None = None
    at: float = field(default_factory=time.time)
    team: str | None = None
    """The team of the token the call was made with (bot/dev/sandbox/oauth.py)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form for the control API."""
        return asdict(self)


@dataclass
class ResponseUrl:
    """What a `response_url` acts on: the message an interaction came from, and who clicked."""

    channel: str
    message_ts: str
    user: str
    is_ephemeral: bool
    uses: int = 0
    created: float = field(default_factory=time.monotonic)


class SandboxCore:
    """Everything the sandbox knows and does; the HTTP layers (Web API, control API) call into this."""

    def __init__(
        self,
        *,
        signing_secret: str = "sandbox-signing-secret",
        bot_token: str = "xoxb-sandbox",
        request_url: str | None = None,
        delivery_timeout: float = 3.0,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        trigger_ttl: float = 3.0,
        workspace: Workspace | None = None,
    ) -> None:
        self.signing_secret = signing_secret
        self.bot_token = bot_token
        self.request_url = request_url
        self.base_url = "http://127.0.0.1"
        self.workspace = workspace or Workspace.seeded()
        self.modals = ModalStore(trigger_ttl=trigger_ttl, on_change=self._views_changed)
        self.feed = Feed()
        self.labels: dict[str, str] = {}
        self.deliverer = Deliverer(
            signing_secret, lambda: self.request_url, timeout=delivery_timeout, retry_delays=retry_delays
        )
        self.call_log: list[ApiCall] = []
        self.faults = Faults()
        self.response_urls: dict[str, ResponseUrl] = {}
        self.files = FileStore()
        self._event_ids = itertools.count(1)
        self.surfaces = Surfaces(self)  # slash commands and Home tabs (bot.dev.sandbox.commands)
        self.oauth = OAuth(self)  # OAuth installs and a second workspace (bot.dev.sandbox.oauth)

    # ---- logs, faults, reset -------------------------------------------------------------

    def inject_fault(
        self, method: str, kind: str, *, times: int = 1, retry_after: int = 1, delay: float = 30.0
    ) -> None:
        """Make the next `times` calls of Web API `method` suffer fault `kind` (see `bot.dev.sandbox.faults`):
        ``ratelimited`` (429, ``Retry-After: retry_after``), ``server_error`` (500), ``html_error`` (502,
        HTML body) and ``error:<code>`` (200, ``ok: false``) are not processed; ``timeout_after_store``
        (answer held `delay` seconds) and ``reset_after_store`` (connection dropped) are. Faults injected
        for the same method queue up, each after the previous one is used up."""
        self.faults.inject(method, kind, times=times, retry_after=retry_after, delay=delay)

    def rate_limit(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """Make the next `times` calls of Web API `method` answer HTTP 429 ``ratelimited``."""
        self.inject_fault(method, "ratelimited", times=times, retry_after=retry_after)

    def chaos(
        self,
        rate: float,
        *,
        seed: int | None = None,
        methods: list[str] | None = None,
        kinds: list[str] | None = None,
        chaos_delay: float = 30.0,
        retry_after: int = 1,
    ) -> None:
        """From now on fault each call of `methods` (default: all but auth.test) with probability `rate`,
        the kind drawn from `kinds` (default: all but ``error:<code>``) by ``random.Random(seed)``.
        Injected faults go first; ``chaos(0)`` turns chaos off."""
        self.faults.set_chaos(rate, seed=seed, methods=methods, kinds=kinds, delay=chaos_delay, retry_after=retry_after)

    def clear_faults(self) -> None:
        """Drop pending faults and turn chaos off."""
        self.faults.clear()

    def calls(self, method: str | None = None) -> list[dict[str, Any]]:
        """The Web API call log (optionally only `method`), oldest first."""
        return [c.to_dict() for c in self.call_log if method is None or c.method == method]

    def deliveries(self) -> list[dict[str, Any]]:
        """The delivery log: every HTTP attempt to deliver an event or interaction."""
        return [r.to_dict() for r in self.deliverer.log]

    def reset(self) -> None:
        """Forget messages, modals, statuses, logs and faults (held answers are dropped); keep users and channels."""
        self.workspace.clear_messages()
        self.modals.reset()
        self.deliverer.reset()
        self.call_log.clear()
        self.faults.clear()
        self.faults.release()
        self.response_urls.clear()
        self.files.reset()
        self.surfaces.reset()
        self.feed.publish({"type": "reset"})

    async def wait_idle(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until every queued event delivery (and scheduled retry) has been attempted."""
        await self.deliverer.wait_idle(timeout)

    async def redeliver(self, event_id: str, reason: str = "http_timeout") -> dict[str, Any]:
        """Re-send an already delivered event with the next retry number, as Slack's retry would."""
        try:
            record = await self.deliverer.redeliver(event_id, reason)
        except KeyError:
            raise SlackError("event_not_found") from None
        return record.to_dict()

    # ---- the change feed ---------------------------------------------------------------------

    def _changed(self, message: Message, *, parent: bool = False) -> None:
        """Publish a posted or changed message (with `parent`, also its thread parent, whose reply counts changed)."""
        if message.is_ephemeral:
            hit = self.workspace.find_ephemeral(message.channel, message.ts)
            if hit is not None:
                event = {"type": "ephemeral", "channel": message.channel, "user": hit[0], "message": message.to_api()}
                self.feed.publish(event)
            return
        self.feed.publish({"type": "message", "channel": message.channel, "message": message.to_api()})
        if parent and message.is_reply:
            root = self.workspace.get_message(message.channel, message.thread_ts or "")
            if root is not None:
                self.feed.publish({"type": "message", "channel": root.channel, "message": root.to_api()})

    def _views_changed(self, user_id: str) -> None:
        self.feed.publish({"type": "views", "user": user_id, "views": self.modals.stack(user_id)})

    def set_status(self, channel_id: str, thread_ts: str, status: str) -> None:
        """Show (or clear, with '') the assistant status of a thread (assistant.threads.setStatus)."""
        key = (channel_id, thread_ts)
        if status:
            self.workspace.statuses[key] = status
        else:
            self.workspace.statuses.pop(key, None)
        self.feed.publish({"type": "status", "channel": channel_id, "thread_ts": thread_ts, "status": status})

    def set_label(self, name: str, value: str | None) -> None:
        """Set (or remove) a label the web page shows in its top bar, e.g. ``model``."""
        if value is None:
            self.labels.pop(name, None)
        else:
            self.labels[name] = value
        self.feed.publish({"type": "labels", "labels": dict(self.labels)})

    def snapshot(self) -> dict[str, Any]:
        """Everything the web page shows, as JSON-friendly data (the feed's events then keep it current)."""
        ws = self.workspace
        channels = []
        for channel in ws.channels.values():
            info = channel.to_api()
            info.update({"name": channel.name, "members": sorted(channel.members)})
            channels.append(info)
        return {
            "team": {"id": TEAM_ID, "name": TEAM_NAME},
            "bot_user_id": BOT_USER_ID,
            "users": [u.to_api() for u in ws.users.values()],
            "usergroups": [g.to_api() for g in ws.usergroups.values()],
            "channels": channels,
            "messages": {cid: [m.to_api() for m in stored.values()] for cid, stored in ws.messages.items()},
            "ephemerals": [
                {"channel": chan, "user": user, "message": m.to_api()}
                for (chan, user), shown in ws.ephemerals.items()
                for m in shown
            ],
            "views": {user: self.modals.stack(user) for user, stack in self.modals.stacks.items() if stack},
            "statuses": [
                {"channel": chan, "thread_ts": ts, "status": status} for (chan, ts), status in ws.statuses.items()
            ],
            "labels": dict(self.labels),
            "homes": dict(self.surfaces.homes),
            "assistant": [self.assistant_thread(chan, ts) for chan, ts in self._assistant_keys()],
        }

    def _assistant_keys(self) -> list[tuple[str, str]]:
        ws = self.workspace
        return list(dict.fromkeys([*ws.thread_titles, *ws.suggested_prompts]))

    def assistant_thread(self, channel_id: str, thread_ts: str) -> dict[str, Any]:
        """What the page shows of an assistant thread: ``{channel, thread_ts, title, prompts}``."""
        ws = self.workspace
        return {
            "channel": channel_id,
            "thread_ts": thread_ts,
            "title": ws.thread_titles.get((channel_id, thread_ts), ""),
            "prompts": list(ws.suggested_prompts.get((channel_id, thread_ts), [])),
        }

    # ---- lookups -----------------------------------------------------------------------------

    def channel(self, ref: str | None) -> Channel:
        """Resolve a channel reference or raise ``channel_not_found``."""
        channel = self.workspace.resolve_channel(ref) if ref else None
        if channel is None:
            raise SlackError("channel_not_found")
        return channel

    def user(self, user_id: str | None) -> User:
        """Look up a user or raise ``user_not_found``."""
        user = self.workspace.users.get(user_id or "")
        if user is None:
            raise SlackError("user_not_found")
        return user

    def message(self, channel: str, ts: str | None) -> Message:
        """Look up a stored message or raise ``message_not_found``."""
        message = self.workspace.get_message(channel, ts or "")
        if message is None:
            raise SlackError("message_not_found")
        return message

    def permalink(self, message: Message) -> str:
        """A permalink in Slack's format, rooted at the sandbox's URL."""
        link = f"{self.base_url}/archives/{message.channel}/p{message.ts.replace('.', '')}"
        if message.is_reply:
            link += f"?thread_ts={message.thread_ts}&cid={message.channel}"
        return link

    # ---- events ------------------------------------------------------------------------------

    def emit(self, event: dict[str, Any]) -> str:
        """Queue an Events API delivery of `event` (for the team of its channel or person); returns its event_id."""
        return self.emit_for(TEAM_OF.get(str(event.get("channel") or event.get("user") or ""), TEAM_ID), event)

    def emit_for(self, team_id: str, event: dict[str, Any]) -> str:
        """Queue an Events API delivery of `event` for the team `team_id`; returns its event_id."""
        event_id = f"Ev0SBX{next(self._event_ids):06d}"
        self.deliverer.enqueue(events.envelope(event, event_id, int(time.time()), team_id))
        return event_id

    # ---- messages ----------------------------------------------------------------------------

    def _thread_root(self, channel: str, thread_ts: str | None) -> str | None:
        if not thread_ts:
            return None
        found = self.workspace.get_message(channel, thread_ts)
        if found is not None and found.is_reply:
            return found.thread_ts
        return thread_ts

    @staticmethod
    def check_content(
        text: str | None, blocks: Any, attachments: Any = None, *, require: bool = True
    ) -> list[dict[str, Any]] | None:
        """Validate message text/blocks like chat.postMessage does; returns the blocks to store."""
        if require and not text and not blocks and not attachments:
            raise SlackError("no_text")
        if text is not None and len(text) > MAX_TEXT:
            raise SlackError("msg_too_long")
        if blocks is None:
            return None
        errors = validate_blocks(blocks, limit=MESSAGE_BLOCK_LIMIT)
        if errors:
            raise SlackError("invalid_blocks", errors=errors, response_metadata={"messages": errors})
        return list(blocks)

    def post_as_bot(
        self,
        channel: Channel,
        *,
        text: str | None = None,
        blocks: Any = None,
        attachments: Any = None,
        thread_ts: str | None = None,
        reply_broadcast: bool = False,
        metadata: dict[str, Any] | None = None,
        streaming: bool = False,
        require_content: bool = True,
    ) -> Message:
        """Post a message as the bot (chat.postMessage); delivers the resulting `message` event."""
        if BOT_USER_ID not in channel.members:
            raise SlackError("not_in_channel")
        checked = self.check_content(text, blocks, attachments, require=require_content)
        ts = self.workspace.clock.next()
        root = self._thread_root(channel.id, thread_ts)
        message = Message(
            ts=ts,
            channel=channel.id,
            text=text or "",
            user=BOT_USER_ID,
            bot_id=BOT_ID,
            blocks=assign_ids(checked, seed=ts) if checked is not None else None,
            attachments=attachments,
            thread_ts=root,
            subtype="thread_broadcast" if root and reply_broadcast else None,
            metadata=metadata,
            streaming=streaming,
        )
        self.workspace.add_message(message)
        self._changed(message, parent=True)
        if root and self.workspace.statuses.get((channel.id, root)):
            self.set_status(channel.id, root, "")  # Slack clears a thread's status when the app posts in it
        self.emit(events.message_event(message, channel))
        return message

    def post_as_user(
        self,
        user_id: str,
        channel_ref: str,
        text: str,
        thread_ts: str | None = None,
        *,
        blocks: Any = None,
        files: Any = None,
    ) -> Message:
        """A person posts `text` (optionally in a thread). Delivers app_mention (if the bot is
        mentioned) and then `message`, when the bot is a member of the channel.

        `blocks` replaces the rich_text block made from `text` (text may then be empty, as Slack sometimes sends
        it); `files` shares files (specs, see `bot.dev.sandbox.files`): a `file_share` message, like Slack's, with
        no app_mention event even when the text mentions the bot."""
        user = self.user(user_id)
        channel = self.channel(channel_ref)
        if user.id not in channel.members:
            raise SlackError("not_in_channel")
        if files is not None and (not isinstance(files, list) or not files):
            raise SlackError("invalid_arguments", detail="files must be a non-empty list")
        if not text and not blocks and not files:
            raise SlackError("no_text")
        checked = self.check_content(text, blocks, require=False) if blocks is not None else None
        shared = [self.files.add(spec, user=user.id, channel=channel.id) for spec in files or []]
        ts = self.workspace.clock.next()
        message = Message(
            ts=ts,
            channel=channel.id,
            text=text,
            user=user.id,
            blocks=checked
            if checked is not None
            else (events.rich_text_blocks(text, block_id=secrets.token_hex(3)) if text else None),
            files=[self.files.to_api(f, self.base_url, in_event=True) for f in shared] or None,
            subtype="file_share" if shared else None,
            thread_ts=self._thread_root(channel.id, thread_ts),
            client_msg_id=str(uuid.uuid4()),
        )
        self.workspace.add_message(message)
        self._changed(message, parent=True)
        if BOT_USER_ID in channel.members:
            if not shared and (events.mentions_user(text) or events.blocks_mention(message.blocks)):
                self.emit(events.app_mention_event(message))
            self.emit({**events.message_event(message, channel), **assistant.assistant_thread_fields(self, message)})
        return message

    def edit_message(
        self,
        message: Message,
        *,
        text: str | None = None,
        blocks: Any = None,
        attachments: Any = None,
        metadata: dict[str, Any] | None = None,
        emit: bool = True,
    ) -> Message:
        """Change a message's text/blocks (chat.update); delivers `message_changed`."""
        checked = self.check_content(text, blocks, attachments, require=False)
        previous = message.to_api()
        if text is not None:
            message.text = text
        if checked is not None:
            message.blocks = assign_ids(checked, seed=f"{message.ts}:{time.monotonic_ns()}")
        if attachments is not None:
            message.attachments = attachments
        if metadata is not None:
            message.metadata = metadata
        event_ts = self.workspace.clock.next()
        if not message.is_ephemeral:
            message.edited = {"user": BOT_USER_ID, "ts": event_ts}
        self._changed(message)
        channel = self.workspace.channels.get(message.channel)
        if emit and channel is not None and not message.is_ephemeral and BOT_USER_ID in channel.members:
            self.emit(events.message_changed_event(previous, message, channel, event_ts))
        return message

    def delete_message(self, channel: Channel, ts: str) -> None:
        """Delete a message (chat.delete); delivers `message_deleted`."""
        message = self.message(channel.id, ts)
        previous = message.to_api()
        self.workspace.delete_message(channel.id, ts)
        remaining = self.workspace.get_message(channel.id, ts)
        if remaining is not None:
            self._changed(remaining)
        else:
            self.feed.publish({"type": "message_deleted", "channel": channel.id, "ts": ts})
            parent = self.workspace.get_message(channel.id, message.thread_ts or "") if message.is_reply else None
            if parent is not None:
                self._changed(parent)
        if BOT_USER_ID in channel.members:
            self.emit(events.message_deleted_event(previous, channel, self.workspace.clock.next()))

    def post_ephemeral(
        self,
        channel: Channel,
        user_id: str,
        *,
        text: str | None = None,
        blocks: Any = None,
        attachments: Any = None,
        thread_ts: str | None = None,
    ) -> Message:
        """Show a message only to `user_id` (chat.postEphemeral). No events are delivered."""
        user = self.user(user_id)
        if user.id not in channel.members:
            raise SlackError("user_not_in_channel")
        if BOT_USER_ID not in channel.members:
            raise SlackError("not_in_channel")
        checked = self.check_content(text, blocks, attachments)
        ts = self.workspace.clock.next()
        message = Message(
            ts=ts,
            channel=channel.id,
            text=text or "",
            user=BOT_USER_ID,
            bot_id=BOT_ID,
            blocks=assign_ids(checked, seed=ts) if checked is not None else None,
            attachments=attachments,
            thread_ts=self._thread_root(channel.id, thread_ts),
        )
        self.workspace.add_ephemeral(message, user.id)
        self._changed(message)
        return message

    def react(self, user_id: str, channel: Channel, ts: str, name: str, *, add: bool = True) -> None:
        """Add or remove `user_id`'s reaction `name`; delivers reaction_added / reaction_removed."""
        message = self.message(channel.id, ts)
        name = name.strip(":")
        entry = next((r for r in message.reactions if r["name"] == name), None)
        if add:
            if entry is not None and user_id in entry["users"]:
                raise SlackError("already_reacted")
            if entry is None:
                entry = {"name": name, "users": []}
                message.reactions.append(entry)
            entry["users"].append(user_id)
        else:
            if entry is None or user_id not in entry["users"]:
                raise SlackError("no_reaction")
            entry["users"].remove(user_id)
            if not entry["users"]:
                message.reactions.remove(entry)
        self._changed(message)
        if BOT_USER_ID in channel.members:
            kind = "reaction_added" if add else "reaction_removed"
            self.emit(events.reaction_event(kind, user_id, name, message, self.workspace.clock.next()))

    # ---- streaming ---------------------------------------------------------------------------

    def start_stream(
        self,
        channel: Channel,
        thread_ts: str | None,
        markdown_text: str | None = None,
        chunks: list[dict[str, Any]] | None = None,
    ) -> Message:
        """chat.startStream: a bot reply in a thread that grows until stopped."""
        if not thread_ts:
            raise SlackError("invalid_arguments", response_metadata={"messages": ["thread_ts is required"]})
        text, extra_blocks, other = self._split_chunks(markdown_text, chunks)
        message = self.post_as_bot(
            channel,
            text=text,
            blocks=extra_blocks or None,
            thread_ts=thread_ts,
            streaming=True,
            require_content=False,
        )
        message.chunks = other
        return message

    def _streaming(self, channel: Channel, ts: str | None) -> Message:
        message = self.message(channel.id, ts)
        if message.bot_id != BOT_ID:
            raise SlackError("cant_update_message")
        if not message.streaming:
            raise SlackError("message_not_in_streaming_state")
        return message

    def _split_chunks(
        self, markdown_text: str | None, chunks: list[dict[str, Any]] | None
    ) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
        text = markdown_text or ""
        blocks: list[dict[str, Any]] = []
        other: list[dict[str, Any]] = []
        for chunk in chunks or []:
            kind = chunk.get("type")
            if kind == "markdown_text":
                text += str(chunk.get("text") or "")
            elif kind == "blocks":
                blocks.extend(chunk.get("blocks") or [])
            else:
                other.append(chunk)
        self.check_content(text, blocks or None, require=False)
        return text, blocks, other

    def _grow(self, message: Message, markdown_text: str | None, chunks: list[dict[str, Any]] | None) -> list[Any]:
        text, blocks, other = self._split_chunks(markdown_text, chunks)
        if len(message.text) + len(text) > MAX_TEXT:
            raise SlackError("msg_too_long")
        message.text += text
        message.chunks = (message.chunks or []) + other
        return blocks

    def append_stream(
        self,
        channel: Channel,
        ts: str | None,
        markdown_text: str | None = None,
        chunks: list[dict[str, Any]] | None = None,
    ) -> Message:
        """chat.appendStream: add markdown text (and plan/task/blocks chunks) to a streaming message."""
        message = self._streaming(channel, ts)
        blocks = self._grow(message, markdown_text, chunks)
        if blocks:
            message.blocks = (message.blocks or []) + assign_ids(blocks, seed=f"{message.ts}:{len(message.text)}")
        self._changed(message)
        return message

    def stop_stream(
        self,
        channel: Channel,
        ts: str | None,
        markdown_text: str | None = None,
        blocks: Any = None,
        metadata: dict[str, Any] | None = None,
        chunks: list[dict[str, Any]] | None = None,
    ) -> Message:
        """chat.stopStream: finish a streaming message (final text; `blocks` go at the bottom);
        delivers message_changed."""
        message = self._streaming(channel, ts)
        chunk_blocks = self._grow(message, markdown_text, chunks)
        message.streaming = False
        final_blocks = None
        if chunk_blocks or blocks:
            final_blocks = [*(message.blocks or []), *chunk_blocks, *(blocks or [])]
        return self.edit_message(message, text=message.text, blocks=final_blocks, metadata=metadata)

    # ---- interactions ------------------------------------------------------------------------

    def _response_url(self, channel: str, message: Message, user: str) -> str:
        token = secrets.token_urlsafe(12)
        self.response_urls[token] = ResponseUrl(
            channel=channel, message_ts=message.ts, user=user, is_ephemeral=message.is_ephemeral
        )
        return f"{self.base_url}/response/{token}"

    @staticmethod
    def _result(result: HttpResult, **extra: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": result.ok, "status": result.status, **extra}
        if result.error:
            out["error"] = result.error
        elif not result.ok:
            out["error"] = "http_error"
        return out

    async def click(
        self,
        user_id: str,
        channel_ref: str,
        ts: str,
        action_id: str,
        value: Any = None,
        block_id: str | None = None,
    ) -> dict[str, Any]:
        """A person clicks a button (or picks an option) in a message, or in an ephemeral message
        shown to them; delivers block_actions and waits for the app's HTTP answer."""
        user = self.user(user_id)
        channel = self.channel(channel_ref)
        message = self.workspace.get_message(channel.id, ts)
        if message is None:
            shown = self.workspace.ephemerals.get((channel.id, user.id), [])
            message = next((m for m in shown if m.ts == ts), None)
        if message is None:
            raise SlackError("message_not_found")
        found = find_action(message.blocks, action_id, value=value, block_id=block_id)
        if found is None:
            raise SlackError("action_not_found", detail=f"no element with action_id {action_id!r} in {ts}")
        return await self._message_click(user, channel, message, *found, value=value)

    async def deliver_click(
        self, user_id: str, channel_ref: str, message: dict[str, Any], element: dict[str, Any], value: Any = None
    ) -> dict[str, Any]:
        """Deliver a click on `element` in `message` exactly as the person's client shows it, even if
        the stored message has changed since (a stale click). `message` is a message dict as read
        from history/replies; the response_url acts on the stored message with the same ts."""
        user = self.user(user_id)
        channel = self.channel(channel_ref)
        blocks = list(message.get("blocks") or [])
        block = next(
            (b for b, e in iter_elements(blocks) if e.get("action_id") == element.get("action_id")),
            {"block_id": element.get("block_id")},
        )
        shown = Message(
            ts=str(message["ts"]),
            channel=channel.id,
            text=str(message.get("text") or ""),
            user=message.get("user"),
            bot_id=message.get("bot_id"),
            blocks=blocks,
            thread_ts=message.get("thread_ts"),
            is_ephemeral=bool(message.get("is_ephemeral")),
        )
        return await self._message_click(user, channel, shown, block, element, value=value, as_shown=message)

    async def _message_click(
        self,
        user: User,
        channel: Channel,
        message: Message,
        block: dict[str, Any],
        element: dict[str, Any],
        *,
        value: Any = None,
        as_shown: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        try:
            action = interactions.build_action(block, element, value=value)
        except ValueError as exc:
            raise SlackError("invalid_value", detail=str(exc)) from None
        trigger_id = self.modals.mint_trigger(user.id)
        payload = interactions.block_actions_from_message(
            user=user,
            channel=channel,
            message=message,
            action=action,
            trigger_id=trigger_id,
            response_url=self._response_url(channel.id, message, user.id),
        )
        if as_shown is not None and "message" in payload:
            payload["message"] = dict(as_shown)
        result = await self.deliverer.send_interaction(payload)
        return self._result(result, trigger_id=trigger_id, response_url=payload["response_url"])

    def _open_view(self, user_id: str, view_id: str | None) -> dict[str, Any]:
        view_id = view_id or self.modals.top(user_id)
        if view_id is None or view_id not in self.modals.stacks.get(user_id, []):
            raise SlackError("view_not_found")
        return self.modals.views[view_id]

    async def click_in_view(
        self, user_id: str, view_id: str | None, action_id: str, value: Any = None, block_id: str | None = None
    ) -> dict[str, Any]:
        """A person clicks a button (or picks an option) in one of their open modals."""
        user = self.user(user_id)
        view = self._open_view(user.id, view_id)
        found = find_action(view["blocks"], action_id, value=value, block_id=block_id)
        if found is None:
            raise SlackError("action_not_found", detail=f"no element with action_id {action_id!r} in the view")
        try:
            action = interactions.build_action(*found, value=value)
        except ValueError as exc:
            raise SlackError("invalid_value", detail=str(exc)) from None
        trigger_id = self.modals.mint_trigger(user.id)
        payload = interactions.block_actions_from_view(
            user=user, view=copy.deepcopy(view), action=action, trigger_id=trigger_id
        )
        result = await self.deliverer.send_interaction(payload)
        return self._result(result, trigger_id=trigger_id, view_id=view["id"])

    async def submit(
        self, user_id: str, values: dict[str, Any] | None = None, view_id: str | None = None
    ) -> dict[str, Any]:
        """A person fills in and submits a modal; delivers view_submission and applies the app's
        `response_action` (errors / update / push / clear; an empty answer closes the view)."""
        user = self.user(user_id)
        view = self._open_view(user.id, view_id)
        try:
            state, missing = interactions.state_values(view["blocks"], values)
        except ValueError as exc:
            raise SlackError("invalid_values", detail=str(exc)) from None
        if missing:
            return {"ok": False, "error": "required_fields_missing", "errors": missing, "view_id": view["id"]}
        view["state"] = {"values": state}
        self.modals.errors.pop(view["id"], None)
        trigger_id = self.modals.mint_trigger(user.id)
        payload = interactions.view_submission(user=user, view=copy.deepcopy(view), trigger_id=trigger_id)
        result = await self.deliverer.send_interaction(payload)
        out = self._result(result, trigger_id=trigger_id, view_id=view["id"], response_action=None, errors={})
        if not result.ok:
            return out
        answer = interactions.parse_ack_body(result.body) or {}
        action = answer.get("response_action")
        out["response_action"] = action
        try:
            if action == "errors":
                errors = {str(k): str(v) for k, v in (answer.get("errors") or {}).items()}
                self.modals.errors[view["id"]] = errors
                out["errors"] = errors
                self._views_changed(user.id)
            elif action == "update":
                out["view"] = self.modals.replace(view["id"], answer.get("view"))
            elif action == "push":
                out["view"] = self.modals.push(user.id, answer.get("view"))
            elif action == "clear":
                out["closed"] = self.modals.clear(user.id)
            else:
                out["closed"] = self.modals.close(user.id, view["id"])
        except SlackError as exc:
            out.update({"ok": False, "error": exc.code, **exc.extra})
        return out

    async def cancel(self, user_id: str) -> dict[str, Any]:
        """A person closes their top modal; delivers view_closed when the view asked (`notify_on_close`)."""
        user = self.user(user_id)
        view_id = self.modals.top(user.id)
        if view_id is None:
            raise SlackError("view_not_found")
        view = copy.deepcopy(self.modals.views[view_id])
        is_cleared = bool(view.get("clear_on_close"))
        closed = self.modals.clear(user.id) if is_cleared else self.modals.close(user.id, view_id)
        out: dict[str, Any] = {"ok": True, "closed": closed, "status": None}
        if view.get("notify_on_close"):
            payload = interactions.view_closed(user=user, view=view, is_cleared=is_cleared)
            out = self._result(await self.deliverer.send_interaction(payload), closed=closed)
        return out

    def respond(self, token: str, body: dict[str, Any]) -> None:
        """Act on a POST to a response_url: replace/delete the original, or post ephemeral/in_channel."""
        target = self.response_urls.get(token)
        if target is None or time.monotonic() - target.created > RESPONSE_URL_TTL:
            raise SlackError("expired_url")
        if target.uses >= RESPONSE_URL_USES:
            raise SlackError("used_url")
        target.uses += 1
        channel = self.channel(target.channel)
        text, blocks = body.get("text"), body.get("blocks")
        if body.get("delete_original"):
            if target.is_ephemeral:
                hit = self.workspace.find_ephemeral(channel.id, target.message_ts)
                if self.workspace.delete_ephemeral(channel.id, target.message_ts) and hit is not None:
                    event = {
                        "type": "ephemeral_deleted",
                        "channel": channel.id,
                        "user": hit[0],
                        "ts": target.message_ts,
                    }
                    self.feed.publish(event)
            else:
                self.delete_message(channel, target.message_ts)
            return
        if body.get("replace_original"):
            if target.is_ephemeral:
                hit = self.workspace.find_ephemeral(channel.id, target.message_ts)
                if hit is None:
                    raise SlackError("message_not_found")
                self.edit_message(hit[1], text=text, blocks=blocks, attachments=body.get("attachments"))
            else:
                message = self.message(channel.id, target.message_ts)
                self.edit_message(message, text=text, blocks=blocks, attachments=body.get("attachments"))
            return
        thread_ts = body.get("thread_ts")
        if body.get("response_type") == "in_channel":
            self.post_as_bot(
                channel, text=text, blocks=blocks, attachments=body.get("attachments"), thread_ts=thread_ts
            )
        else:
            self.post_ephemeral(
                channel,
                target.user,
                text=text,
                blocks=blocks,
                attachments=body.get("attachments"),
                thread_ts=thread_ts,
            )
