"""Pure rendering for escalated requests: the experts' copy with context, and the notes in both threads."""

from __future__ import annotations

from collections.abc import Sequence

from bot import blocks as b
from bot import text as t
from bot.types import SlackMessage

CANCEL = "cancel"


def describe_duration(seconds: float) -> str:
    whole = round(seconds)
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")):
        if whole >= size:
            count = whole // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return "a moment"


def link(permalink: str | None, label: str) -> str:
    return f"<{permalink}|{label}>" if permalink else label


def render_escalated(
    request: SlackMessage,
    *,
    requester: str | None,
    permalink: str | None,
    recent: Sequence[tuple[str | None, str]],
    graph: str,
) -> SlackMessage:
    """The request as the experts see it: who asked, where, the recent conversation, then the request itself."""
    who = f"<@{requester}>" if requester else "Someone"
    head = f":sos: {who} is waiting for an answer in {link(permalink, 'a thread')} · graph `{t.escape(graph)}`"
    blocks = [b.context(head)]
    if recent:
        lines = [
            f"*{f'<@{user}>' if user else 'agent'}*: {t.escape(t.shorten(' '.join(text.split()), 300))}"
            for user, text in recent
        ]
        blocks.append(b.context(t.shorten("*Recent conversation*\n" + "\n".join(lines), 2900)))
    blocks += [blk for blk in request.blocks if not _thread_hint(blk)]
    blocks.append(b.context("The first answer wins: use the button or reply in this thread."))
    return SlackMessage(text=request.text, blocks=blocks[:50])


def _thread_hint(block: dict[str, object]) -> bool:
    """The request's own header and footer, which the experts' copy replaces with its context."""
    if block.get("type") != "context":
        return False
    text = str(block.get("elements"))
    return ":raising_hand:" in text or "Reply in this thread" in text


def render_asked(record_id: str, channel: str, *, note: str = "") -> SlackMessage:
    """In the asking thread: where the question went, and a way for the asker to cancel it."""
    text = f":mailbox_with_mail: I asked the experts in <#{channel}> — I'll continue when they answer.{note}"
    blocks = [
        b.section(text),
        b.actions("lgslack_escalation", [b.button("Cancel the request", record_id, CANCEL)]),
    ]
    return SlackMessage(text=text, blocks=blocks)


def render_answered_notice(channel: str, who: str, verb: str) -> SlackMessage:
    text = f":white_check_mark: {who} {verb.lower()} in <#{channel}>."
    return SlackMessage(text=text, blocks=[b.section(text)])


def render_returned(who: str, requester: str | None, permalink: str | None) -> SlackMessage:
    asker = f"<@{requester}>" if requester else "the asker"
    where = link(permalink, "their thread")
    text = f":leftwards_arrow_with_hook: Thanks {who} — your answer went back to {asker} in {where}."
    return SlackMessage(text=text, blocks=[b.section(text)])


def render_reminder(age: float, mention: str | None) -> SlackMessage:
    ping = f"<!subteam^{mention}> " if mention else ""
    text = f":alarm_clock: {ping}Still waiting for an answer — asked {describe_duration(age)} ago."
    return SlackMessage(text=text, blocks=[b.section(text)])


def render_moved(channel: str) -> SlackMessage:
    text = f":arrow_right: No answer here in time: this request moved to <#{channel}>."
    return SlackMessage(text=text, blocks=[b.section(text)])


def render_unanswered(channel: str, after: float) -> SlackMessage:
    text = (
        f":hourglass: Nobody in <#{channel}> answered within {describe_duration(after)}. "
        "The request stays open there; you can cancel it."
    )
    return SlackMessage(text=text, blocks=[b.section(text)])
