"""The gateway: every Slack Web API call the bot makes goes through here, so retries and idempotency live in
one place.

Calls that are safe to repeat (updates, reads, reactions) are retried on transient faults. `chat.postMessage`
is not: after an uncertain outcome (a timeout, a reset connection, a 5xx) the message may be in Slack already,
so `post` carries an idempotency key in the message metadata and `find_posted` looks for it before the caller
posts again. A 429 is retried by slack_sdk itself, honouring Retry-After (Slack did nothing with the call), except
for a post: the outbox holds a row for one post at a time (a lease as long as one call), and a post asleep in a
Retry-After longer than that would go out after another attempt took the row and posted it. A rate-limited post
raises, with the Retry-After for the caller to wait out.
"""

from __future__ import annotations

from bot.slack.messages import Messages
from bot.slack.reads import Reads
from bot.slack.streaming import Streaming


class Gateway(Messages, Reads, Streaming):
    """`client` is the single-token client, or (with `teams`) a token-less one that only carries the base URL,
    timeout and session; then each call uses the current team's clients.

    Its calls live in bot/slack/web.py (clients, faults, the current team), messages.py, reads.py and
    streaming.py."""
