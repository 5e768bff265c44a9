"""The gateway's assistant calls (status, title, suggested prompts) and streamed messages."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Literal

from bot.slack.web import METADATA_EVENT, Calls, SlackRefused, SlackUnavailable

log = logging.getLogger(__name__)

StatusOutcome = Literal["shown", "refused", "failed"]


class Streaming(Calls):
    """The assistant features and streamed messages."""

    # the assistant features: status, title, suggested prompts (best effort: what Slack shows, not records)

    def status_refused(self, channel: str) -> bool:
        """Whether Slack refused a status in this channel before (remembered in memory, per channel)."""
        return channel in self._no_status

    async def set_status(
        self, *, channel: str, thread_ts: str, status: str, loading_messages: Sequence[str] = ()
    ) -> StatusOutcome:
        """Show what the agent does on a thread (`status` "" clears it): "shown", "refused" (Slack won't show a
        status in this channel, e.g. `not_allowed` or `missing_scope`: remembered, the caller falls back to a
        reaction) or "failed" (a fault that may pass). One try, no Retry-After sleep: it never holds up a run."""
        if channel in self._no_status:
            return "refused"
        try:
            await self._call(
                lambda: self._poster.assistant_threads_setStatus(
                    channel_id=channel,
                    thread_ts=thread_ts,
                    status=status,
                    loading_messages=list(loading_messages) or None,
                ),
                repeatable=False,
            )
        except SlackRefused as exc:
            log.info("Slack refused a status in %s (%s): a reaction shows the work there", channel, exc.error)
            self._no_status.add(channel)
            return "refused"
        except SlackUnavailable as exc:
            log.debug("could not set the status of %s/%s: %s", channel, thread_ts, exc)
            return "failed"
        return "shown"

    async def set_title(self, *, channel: str, thread_ts: str, title: str) -> None:
        """An assistant thread's title; best effort."""
        try:
            await self._call(
                lambda: self.client.assistant_threads_setTitle(channel_id=channel, thread_ts=thread_ts, title=title),
                repeatable=True,
            )
        except (SlackUnavailable, SlackRefused) as exc:
            log.warning("could not set the title of %s/%s: %s", channel, thread_ts, exc)

    async def set_suggested_prompts(
        self, *, channel: str, thread_ts: str, prompts: Sequence[Mapping[str, str]], title: str | None = None
    ) -> None:
        """The prompts an assistant thread offers; best effort."""
        try:
            await self._call(
                lambda: self.client.assistant_threads_setSuggestedPrompts(
                    channel_id=channel, thread_ts=thread_ts, prompts=[dict(p) for p in prompts], title=title
                ),
                repeatable=True,
            )
        except (SlackUnavailable, SlackRefused) as exc:
            log.warning("could not set the suggested prompts of %s/%s: %s", channel, thread_ts, exc)

    # streamed messages (bot/flow/streams.py): starts and appends are never blindly repeated (an append that
    # reached Slack would show twice); a stop, an update and a delete may be.

    async def start_stream(
        self,
        *,
        channel: str,
        thread_ts: str,
        markdown_text: str,
        recipient_team_id: str | None = None,
        recipient_user_id: str | None = None,
    ) -> str:
        """chat.startStream: a reply in the thread that grows until stopped; its ts. Outside a DM Slack needs the
        person it is for (`recipient_*`). One try; a rate limit raises with its Retry-After."""
        response = await self._call(
            lambda: self._poster.chat_startStream(
                channel=channel,
                thread_ts=thread_ts,
                markdown_text=markdown_text,
                recipient_team_id=recipient_team_id,
                recipient_user_id=recipient_user_id,
            ),
            repeatable=False,
        )
        return str(response["ts"])

    async def append_stream(self, *, channel: str, ts: str, markdown_text: str) -> None:
        """chat.appendStream; one try."""
        await self._call(
            lambda: self._poster.chat_appendStream(channel=channel, ts=ts, markdown_text=markdown_text),
            repeatable=False,
        )

    async def stop_stream(
        self, *, channel: str, ts: str, markdown_text: str | None = None, key: str | None = None
    ) -> None:
        """chat.stopStream, with the last text and our key in the metadata (a stopped message is known as ours). A
        message no longer streaming (stopped before) counts as stopped."""
        metadata = {"event_type": METADATA_EVENT, "event_payload": {"key": key}} if key else None
        try:
            await self._call(
                lambda: self.client.chat_stopStream(
                    channel=channel, ts=ts, markdown_text=markdown_text or None, metadata=metadata
                ),
                repeatable=True,
            )
        except SlackRefused as exc:
            if exc.error not in ("message_not_in_streaming_state", "message_not_found"):
                raise
