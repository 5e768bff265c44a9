"""The sandbox's in-memory Slack workspace: people, channels, messages and their ids."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

TEAM_ID = "T0SANDBOX"
TEAM_DOMAIN = "sandbox"
TEAM_NAME = "Sandbox"
APP_ID = "A0SANDBOX"
BOT_USER_ID = "U0BOT"
BOT_ID = "B0BOT"
BOT_NAME = "agent"
TEAM_OF: dict[str, str] = {}
"""The team of a person or channel of another workspace than TEAM_ID (bot/dev/sandbox/oauth.py); ids are unique."""


@dataclass(frozen=True)
class User:
    """A workspace member (a person or the bot user)."""

    id: str
    name: str
    real_name: str
    display_name: str = ""
    is_bot: bool = False
    bot_id: str | None = None
    email: str | None = None
    tz: str = "Europe/London"

    def to_api(self) -> dict[str, Any]:
        """The user as `users.info` returns it."""
        profile: dict[str, Any] = {
            "real_name": self.real_name,
            "real_name_normalized": self.real_name,
            "display_name": self.display_name,
            "display_name_normalized": self.display_name,
            "team": TEAM_ID,
            "image_48": f"https://sandbox.invalid/avatars/{self.id}_48.png",
        }
        if self.email:
            profile["email"] = self.email
        if self.bot_id:
            profile["bot_id"] = self.bot_id
            profile["api_app_id"] = APP_ID
        return {
            "id": self.id,
            "team_id": TEAM_OF.get(self.id, TEAM_ID),
            "name": self.name,
            "deleted": False,
            "real_name": self.real_name,
            "tz": self.tz,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "is_admin": False,
            "profile": profile,
        }


@dataclass
class Channel:
    """A conversation: public/private channel or a direct message (`is_im`)."""

    id: str
    name: str
    members: set[str] = field(default_factory=set)
    is_private: bool = False
    is_im: bool = False
    im_user: str | None = None
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def channel_type(self) -> str:
        """The `channel_type` Slack puts on message events: channel, group or im."""
        if self.is_im:
            return "im"
        return "group" if self.is_private else "channel"

    def to_api(self, viewer: str = BOT_USER_ID) -> dict[str, Any]:
        """The conversation as `conversations.info` returns it."""
        if self.is_im:
            return {
                "id": self.id,
                "created": self.created,
                "is_im": True,
                "is_org_shared": False,
                "user": self.im_user,
                "is_user_deleted": False,
                "priority": 0,
            }
        return {
            "id": self.id,
            "name": self.name,
            "name_normalized": self.name,
            "is_channel": not self.is_private,
            "is_group": self.is_private,
            "is_im": False,
            "is_mpim": False,
            "is_private": self.is_private,
            "is_archived": False,
            "is_general": self.name == "general",
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "is_member": viewer in self.members,
            "created": self.created,
            "creator": BOT_USER_ID,
            "context_team_id": TEAM_ID,
            "num_members": len(self.members),
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
        }


@dataclass(frozen=True)
class UserGroup:
    """A user group (`subteam`) such as @experts."""

    id: str
    handle: str
    name: str
    users: tuple[str, ...] = ()

    def to_api(self) -> dict[str, Any]:
        """The group as `usergroups.list` returns it."""
        return {
            "id": self.id,
            "team_id": TEAM_ID,
            "is_usergroup": True,
            "name": self.name,
            "handle": self.handle,
            "description": "",
            "user_count": len(self.users),
            "users": list(self.users),
        }


@dataclass
class Message:
    """One stored message; replies point at their parent through `thread_ts`."""

    ts: str
    channel: str
    text: str = ""
    user: str | None = None
    bot_id: str | None = None
    blocks: list[dict[str, Any]] | None = None
    attachments: list[dict[str, Any]] | None = None
    files: list[dict[str, Any]] | None = None
    thread_ts: str | None = None
    parent_user_id: str | None = None
    subtype: str | None = None
    metadata: dict[str, Any] | None = None
    edited: dict[str, str] | None = None
    client_msg_id: str | None = None
    reply_count: int = 0
    reply_users: list[str] = field(default_factory=list)
    latest_reply: str | None = None
    reactions: list[dict[str, Any]] = field(default_factory=list)
    streaming: bool = False
    chunks: list[dict[str, Any]] | None = None
    is_ephemeral: bool = False

    @property
    def is_reply(self) -> bool:
        """True for a message inside a thread that is not the thread's parent."""
        return self.thread_ts is not None and self.thread_ts != self.ts

    def to_api(self) -> dict[str, Any]:
        """The message as the Web API (history/replies) returns it."""
        data: dict[str, Any] = {"type": "message", "ts": self.ts, "text": self.text}
        if self.subtype:
            data["subtype"] = self.subtype
        if self.user:
            data["user"] = self.user
        if self.bot_id:
            data["bot_id"] = self.bot_id
            data["app_id"] = APP_ID
            data["bot_profile"] = bot_profile()
        data["team"] = TEAM_ID
        if self.client_msg_id:
            data["client_msg_id"] = self.client_msg_id
        if self.blocks is not None:
            data["blocks"] = self.blocks
        if self.attachments is not None:
            data["attachments"] = self.attachments
        if self.files is not None:
            data["files"] = self.files
            data["upload"] = False
        if self.metadata is not None:
            data["metadata"] = self.metadata
        if self.edited is not None:
            data["edited"] = dict(self.edited)
        if self.thread_ts is not None:
            data["thread_ts"] = self.thread_ts
        if self.is_reply and self.parent_user_id:
            data["parent_user_id"] = self.parent_user_id
        if self.reply_count:
            data["thread_ts"] = self.ts
            data["reply_count"] = self.reply_count
            data["reply_users_count"] = len(self.reply_users)
            data["reply_users"] = list(self.reply_users[:5])
            data["latest_reply"] = self.latest_reply
            data["is_locked"] = False
            data["subscribed"] = False
        if self.reactions:
            data["reactions"] = [
                {"name": r["name"], "users": list(r["users"]), "count": len(r["users"])} for r in self.reactions
            ]
        if self.streaming:
            data["is_streaming"] = True
        if self.chunks:
            data["chunks"] = list(self.chunks)
        if self.is_ephemeral:
            data["is_ephemeral"] = True
        return data


def bot_profile() -> dict[str, Any]:
    """The `bot_profile` object Slack attaches to the bot's messages."""
    return {
        "id": BOT_ID,
        "app_id": APP_ID,
        "name": BOT_NAME,
        "deleted": False,
        "team_id": TEAM_ID,
        "icons": {"image_48": "https://sandbox.invalid/avatars/bot_48.png"},
    }


def format_ts(seconds: int, micros: int) -> str:
    """Slack's message timestamp format: epoch seconds, a dot, six digits."""
    return f"{seconds}.{micros:06d}"


class TsClock:
    """Mints realistic, strictly increasing, never repeating message timestamps."""

    def __init__(self, now: Callable[[], float] = time.time, step: int = 100) -> None:
        self._now = now
        self._step = step
        self._seconds = 0
        self._micros = 0

    def next(self) -> str:
        """Return the next timestamp, e.g. ``"1763764000.000100"``."""
        seconds = max(int(self._now()), self._seconds)
        micros = self._micros + self._step
        if micros >= 1_000_000:
            micros = self._step
            seconds = max(seconds, self._seconds + 1)
        self._seconds, self._micros = seconds, micros
        return format_ts(seconds, micros)

    def advance_past(self, ts: str) -> None:
        """Make sure every later timestamp is greater than `ts` (after loading saved messages)."""
        seconds, _, micros = ts.partition(".")
        later = (int(seconds), int(micros or 0))
        if later > (self._seconds, self._micros):
            self._seconds, self._micros = later


def dm_id_for(user_id: str) -> str:
    """The sandbox's deterministic DM channel id for a person: U0ALICE -> D0ALICE."""
    return "D" + user_id[1:]


class Workspace:
    """Users, channels, user groups, messages, ephemerals and assistant statuses."""

    def __init__(self, clock: TsClock | None = None) -> None:
        self.clock = clock or TsClock()
        self.users: dict[str, User] = {}
        self.channels: dict[str, Channel] = {}
        self.usergroups: dict[str, UserGroup] = {}
        self.messages: dict[str, dict[str, Message]] = {}
        self._threads: dict[tuple[str, str], dict[str, Message]] = {}
        """(channel, thread_ts) → the messages that carry that thread_ts: so a thread is found without reading the
        whole channel (a benchmark's channel holds thousands of threads)."""
        self.ephemerals: dict[tuple[str, str], list[Message]] = {}
        self.statuses: dict[tuple[str, str], str] = {}
        self.thread_titles: dict[tuple[str, str], str] = {}
        self.suggested_prompts: dict[tuple[str, str], list[dict[str, Any]]] = {}

    @classmethod
    def seeded(cls, clock: TsClock | None = None) -> Workspace:
        """The default sandbox workspace: the bot, alice, bob, carol, #general, #experts, DMs."""
        ws = cls(clock)
        ws.add_user(
            BOT_USER_ID, BOT_NAME, real_name="Agent", display_name="agent", is_bot=True, bot_id=BOT_ID, dm=False
        )
        ws.add_user("U0ALICE", "alice", real_name="Alice Adams", display_name="alice")
        ws.add_user("U0BOB", "bob", real_name="Bob Brown", display_name="bob")
        ws.add_user("U0CAROL", "carol", real_name="Carol Clark", display_name="carol")
        ws.add_usergroup("S0EXPERTS", "experts", ["U0BOB", "U0CAROL"], name="Experts")
        ws.add_channel("C0GENERAL", "general", ["U0ALICE", "U0BOB", "U0CAROL"])
        ws.add_channel("C0EXPERTS", "experts", ["U0BOB", "U0CAROL"])
        return ws

    def add_user(
        self,
        id: str,
        name: str,
        *,
        real_name: str | None = None,
        display_name: str | None = None,
        is_bot: bool = False,
        bot_id: str | None = None,
        email: str | None = None,
        dm: bool = True,
    ) -> User:
        """Add a user; with `dm` also open a DM channel (`dm_id_for(id)`) between them and the bot."""
        user = User(
            id=id,
            name=name,
            real_name=real_name or name.title(),
            display_name=name if display_name is None else display_name,
            is_bot=is_bot,
            bot_id=bot_id,
            email=email or f"{name}@sandbox.invalid",
        )
        self.users[id] = user
        if dm:
            self.open_dm(id)
        return user

    def open_dm(self, user_id: str) -> Channel:
        """Return the DM channel between the bot and `user_id`, creating it if needed."""
        for channel in self.channels.values():
            if channel.is_im and channel.im_user == user_id:
                return channel
        channel = Channel(
            id=dm_id_for(user_id), name=user_id, members={BOT_USER_ID, user_id}, is_im=True, im_user=user_id
        )
        self.channels[channel.id] = channel
        self.messages.setdefault(channel.id, {})
        return channel

    def add_channel(
        self,
        id: str,
        name: str,
        members: Iterable[str] = (),
        *,
        is_private: bool = False,
        bot_member: bool = True,
    ) -> Channel:
        """Add a channel with the given members (the bot joins unless `bot_member` is false)."""
        member_set = set(members)
        if bot_member:
            member_set.add(BOT_USER_ID)
        channel = Channel(id=id, name=name, members=member_set, is_private=is_private)
        self.channels[id] = channel
        self.messages.setdefault(id, {})
        return channel

    def add_usergroup(self, id: str, handle: str, users: Iterable[str], *, name: str | None = None) -> UserGroup:
        """Add a user group (mention it as ``<!subteam^ID>``)."""
        group = UserGroup(id=id, handle=handle, name=name or handle.title(), users=tuple(users))
        self.usergroups[id] = group
        return group

    def join(self, channel_id: str, user_id: str) -> None:
        """Make `user_id` a member of `channel_id`."""
        self.channels[channel_id].members.add(user_id)

    def resolve_channel(self, ref: str) -> Channel | None:
        """Find a channel by id, ``#name``/name, or a user id (meaning the DM with that user)."""
        if ref in self.channels:
            return self.channels[ref]
        if ref in self.users and not self.users[ref].is_bot:
            return self.open_dm(ref)
        name = ref.lstrip("#")
        for channel in self.channels.values():
            if not channel.is_im and channel.name == name:
                return channel
        return None

    def add_message(self, message: Message) -> Message:
        """Store a new message, updating its thread parent's reply bookkeeping."""
        self.messages.setdefault(message.channel, {})[message.ts] = message
        self._index(message)
        if message.is_reply:
            parent = self.get_message(message.channel, message.thread_ts or "")
            if parent is not None:
                message.parent_user_id = parent.user
                self._recount_replies(parent)
        return message

    def get_message(self, channel: str, ts: str) -> Message | None:
        """Look up a stored (non-ephemeral) message."""
        return self.messages.get(channel, {}).get(ts)

    def delete_message(self, channel: str, ts: str) -> Message | None:
        """Delete a message; a parent that still has replies becomes a tombstone."""
        message = self.messages.get(channel, {}).get(ts)
        if message is None:
            return None
        if message.reply_count:
            message.subtype = "tombstone"
            message.text = "This message was deleted."
            message.blocks = None
            message.user = "USLACKBOT"
            message.bot_id = None
            return message
        del self.messages[channel][ts]
        if message.thread_ts:
            self._threads.get((channel, message.thread_ts), {}).pop(ts, None)
        if message.is_reply:
            parent = self.get_message(channel, message.thread_ts or "")
            if parent is not None:
                self._recount_replies(parent)
        return message

    def _recount_replies(self, parent: Message) -> None:
        replies = self.thread(parent.channel, parent.ts)[1:]
        parent.reply_count = len(replies)
        parent.latest_reply = replies[-1].ts if replies else None
        users: list[str] = []
        for reply in replies:
            author = reply.user or reply.bot_id or ""
            if author and author not in users:
                users.append(author)
        parent.reply_users = users

    def history(self, channel: str) -> list[Message]:
        """Top-level messages (and thread broadcasts), oldest first."""
        return [m for m in self.messages.get(channel, {}).values() if not m.is_reply or m.subtype == "thread_broadcast"]

    def thread(self, channel: str, ts: str) -> list[Message]:
        """The thread rooted at `ts` (or containing `ts`): parent first when known, then replies, oldest first."""
        stored = self.messages.get(channel, {})
        found = stored.get(ts)
        root = found.thread_ts if found is not None and found.thread_ts else ts
        members = {m.ts: m for m in self._threads.get((channel, root), {}).values() if m.thread_ts == root}
        parent = stored.get(root)
        if parent is not None:
            members[root] = parent
        return sorted(members.values(), key=lambda m: float(m.ts))

    def _index(self, message: Message) -> None:
        if message.thread_ts:
            self._threads.setdefault((message.channel, message.thread_ts), {})[message.ts] = message

    def add_ephemeral(self, message: Message, user: str) -> Message:
        """Store an ephemeral message visible only to `user`."""
        message.is_ephemeral = True
        self.ephemerals.setdefault((message.channel, user), []).append(message)
        return message

    def find_ephemeral(self, channel: str, ts: str) -> tuple[str, Message] | None:
        """Find an ephemeral message by channel and ts; returns (user, message)."""
        for (chan, user), messages in self.ephemerals.items():
            if chan != channel:
                continue
            for message in messages:
                if message.ts == ts:
                    return user, message
        return None

    def delete_ephemeral(self, channel: str, ts: str) -> bool:
        """Remove an ephemeral message; True if it existed."""
        hit = self.find_ephemeral(channel, ts)
        if hit is None:
            return False
        user, message = hit
        self.ephemerals[(channel, user)].remove(message)
        return True

    def dump_messages(self) -> dict[str, Any]:
        """The messages of every channel as JSON-friendly data (see `load_messages`)."""
        return {
            "version": 1,
            "messages": {cid: [asdict(m) for m in stored.values()] for cid, stored in self.messages.items() if stored},
        }

    def load_messages(self, data: dict[str, Any]) -> int:
        """Restore messages saved by `dump_messages` into known channels; returns how many were loaded."""
        names = {f.name for f in fields(Message)}
        loaded = 0
        for channel_id, stored in (data.get("messages") or {}).items():
            if channel_id not in self.channels:
                continue
            for raw in stored:
                message = Message(**{k: v for k, v in raw.items() if k in names})
                message.is_ephemeral = False
                message.streaming = False
                self.messages.setdefault(channel_id, {})[message.ts] = message
                self.clock.advance_past(message.ts)
                loaded += 1
        for channel_id in self.messages:
            self.messages[channel_id] = dict(sorted(self.messages[channel_id].items(), key=lambda kv: float(kv[0])))
        self._threads = {}
        for stored in self.messages.values():
            for message in stored.values():
                self._index(message)
        return loaded

    def clear_messages(self) -> None:
        """Forget all messages, ephemerals and assistant thread state; keep users and channels."""
        self.messages = {channel_id: {} for channel_id in self.channels}
        self._threads = {}
        self.ephemerals.clear()
        self.statuses.clear()
        self.thread_titles.clear()
        self.suggested_prompts.clear()
