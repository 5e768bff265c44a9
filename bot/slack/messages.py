"""The gateway's message calls: posting once (the outbox key in the message metadata), updates, deletes,
notes to one person, views, reactions."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.slack.web import METADATA_EVENT, TRANSPORT_ERRORS, Calls, SlackRefused, SlackUnavailable, describe
from bot.types import SlackMessage

log = logging.getLogger(__name__)


class Messages(Calls):
    """Messages: posted once, updated, deleted; notes to one person, views, reactions."""

    # posting, idempotently

    async def post(self, key: str, *, channel: str, thread_ts: str | None, message: SlackMessage) -> str:
        """Post once; the key goes into the message metadata so `find_posted` can tell it was stored."""
        response = await self._call(
            lambda: self._poster.chat_postMessage(
                channel=channel,
                thread_ts=thread_ts,
                text=message.text,
                blocks=message.blocks or None,
                unfurl_links=False,
                unfurl_media=False,
                metadata={"event_type": METADATA_EVENT, "event_payload": {"key": key}},
            ),
            repeatable=False,
        )
        return str(response["ts"])

    async def find_posted(self, key: str, *, channel: str, thread_ts: str | None, since: float) -> str | None:
        """The ts of the message posted with this key, if Slack has it."""
        oldest = f"{since - 60:.6f}"
        if thread_ts:
            response = await self._call(
                lambda: self.client.conversations_replies(
                    channel=channel, ts=thread_ts, oldest=oldest, include_all_metadata=True, limit=1000
                ),
                repeatable=True,
            )
        else:
            response = await self._call(
                lambda: self.client.conversations_history(
                    channel=channel, oldest=oldest, include_all_metadata=True, limit=1000
                ),
                repeatable=True,
            )
        for found in response.get("messages") or []:
            metadata = found.get("metadata") or {}
            if metadata.get("event_type") == METADATA_EVENT and (metadata.get("event_payload") or {}).get("key") == key:
                return str(found["ts"])
        return None

    # calls that may be repeated

    async def update(self, *, channel: str, ts: str, message: SlackMessage) -> None:
        await self._call(
            lambda: self.client.chat_update(channel=channel, ts=ts, text=message.text, blocks=message.blocks),
            repeatable=True,
        )

    async def ephemeral(self, *, channel: str, user: str, text: str, thread_ts: str | None = None) -> None:
        """A note for one person; best effort (it is an answer to them, not a record)."""
        try:
            await self._call(
                lambda: self.client.chat_postEphemeral(channel=channel, user=user, text=text, thread_ts=thread_ts),
                repeatable=False,
            )
        except (SlackUnavailable, SlackRefused) as exc:
            log.warning("could not tell %s: %s", user, exc)

    async def open_view(self, *, trigger_id: str, view: dict[str, Any]) -> None:
        await self._call(lambda: self.client.views_open(trigger_id=trigger_id, view=view), repeatable=False)

    async def publish_home(self, *, user: str, view: dict[str, Any]) -> None:
        """Publish a person's App Home tab (views.publish): safe to repeat, the last one published is shown."""
        await self._call(lambda: self.client.views_publish(user_id=user, view=view), repeatable=True)

    async def respond(self, url: str, message: SlackMessage, *, replace: bool = False) -> bool:
        """Answer a slash command or a click to the person alone, through its response_url; best effort."""
        hook = AsyncWebhookClient(
            url, timeout=max(1, round(self.timeout)), proxy=self._client.proxy or None, session=self._client.session
        )
        try:
            response = await hook.send(
                text=message.text,
                blocks=message.blocks or None,
                response_type="ephemeral",
                replace_original=True if replace else None,
            )
        except TRANSPORT_ERRORS as exc:
            log.warning("could not answer through a response_url: %s", describe(exc))
            return False
        if response.status_code != 200:
            log.warning("a response_url answered HTTP %s", response.status_code)
            return False
        return True

    async def react(self, *, channel: str, ts: str, name: str, add: bool) -> None:
        """A reaction as a progress sign: best effort, never in the way of the work."""
        try:
            if add:
                await self._call(
                    lambda: self.client.reactions_add(channel=channel, timestamp=ts, name=name), repeatable=False
                )
            else:
                await self._call(
                    lambda: self.client.reactions_remove(channel=channel, timestamp=ts, name=name), repeatable=False
                )
        except (SlackUnavailable, SlackRefused) as exc:
            log.debug("could not change the %s reaction: %s", name, exc)

    async def delete(self, *, channel: str, ts: str) -> None:
        """chat.delete; a message already gone counts as deleted."""
        try:
            await self._call(lambda: self.client.chat_delete(channel=channel, ts=ts), repeatable=True)
        except SlackRefused as exc:
            if exc.error != "message_not_found":
                raise
