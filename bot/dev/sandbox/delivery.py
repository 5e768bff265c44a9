"""Signing requests and delivering events/interactions to the app's request URL, with Slack's retries."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode

import aiohttp

DEFAULT_RETRY_DELAYS = (0.2, 0.5, 1.0)


def sign(signing_secret: str, timestamp: int | str, body: str | bytes) -> str:
    """Slack's request signature: ``v0=`` + hex HMAC-SHA256 of ``v0:{timestamp}:{body}``."""
    raw = body if isinstance(body, bytes) else body.encode()
    base = b"v0:" + str(timestamp).encode() + b":" + raw
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(
    signing_secret: str, body: str | bytes, content_type: str, timestamp: int | None = None
) -> dict[str, str]:
    """Headers for a signed request from "Slack" to the app."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": sign(signing_secret, ts, body),
        "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
    }


def interaction_body(payload: dict[str, Any]) -> str:
    """The form-encoded ``payload=<json>`` body Slack uses for interactivity requests."""
    return urlencode({"payload": json.dumps(payload, separators=(",", ":"))})


@dataclass
class HttpResult:
    """What came back from one POST to the app."""

    status: int | None
    body: bytes
    headers: dict[str, str]
    elapsed: float
    error: str | None

    def json(self) -> Any:
        """The body parsed as JSON, or None when it is empty or not JSON."""
        try:
            return json.loads(self.body) if self.body.strip() else None
        except ValueError:
            return None

    @property
    def ok(self) -> bool:
        """True for a 2xx answer within the timeout."""
        return self.error is None and self.status is not None and 200 <= self.status < 300


@dataclass
class DeliveryRecord:
    """One HTTP attempt to deliver an event or interaction to the app.

    Recorded as soon as the attempt is queued (`state` "queued"/"scheduled", `status` None) and filled
    in when the app answers (`state` "done"); `status` stays None when it timed out or was unreachable.
    """

    kind: str
    type: str
    event_id: str | None
    retry_num: int = 0
    retry_reason: str | None = None
    status: int | None = None
    elapsed: float = 0.0
    error: str | None = None
    state: str = "queued"
    channel: str | None = None
    ts: str | None = None
    subtype: str | None = None
    user: str | None = None
    action_id: str | None = None
    callback_id: str | None = None
    at: float = field(default_factory=lambda: round(time.time(), 3))

    @property
    def ok(self) -> bool:
        """True when the app answered 2xx in time."""
        return self.status is not None and 200 <= self.status < 300 and self.error is None

    def finish(self, result: HttpResult) -> None:
        """Fill in the outcome of the attempt."""
        self.status, self.elapsed, self.error, self.state = result.status, result.elapsed, result.error, "done"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form for the control API."""
        return {**asdict(self), "elapsed": round(self.elapsed, 4), "ok": self.ok}


def _event_record(envelope: dict[str, Any], retry_num: int, reason: str | None, state: str) -> DeliveryRecord:
    event = envelope.get("event") or {}
    return DeliveryRecord(
        kind="event",
        type=str(event.get("type")),
        event_id=envelope.get("event_id"),
        retry_num=retry_num,
        retry_reason=reason,
        state=state,
        channel=event.get("channel") or (event.get("item") or {}).get("channel"),
        ts=event.get("ts"),
        subtype=event.get("subtype"),
        user=event.get("user"),
    )


class Transport(Protocol):
    """Another way to reach the app (Socket Mode, `bot.dev.sandbox.socket_mode`), used instead of the request URL
    while it is `active`: `send` answers with what the app acknowledged, as an `HttpResult`."""

    def active(self) -> bool: ...

    async def send(self, body: str, headers: dict[str, str], timeout: float) -> HttpResult: ...  # noqa: ASYNC109


@dataclass
class _Job:
    envelope: dict[str, Any]
    record: DeliveryRecord
    done: asyncio.Future[DeliveryRecord] | None = None


class Deliverer:
    """Posts signed requests to the app. Events go through one in-order queue and are retried like Slack.

    A failed event attempt (non-2xx, slower than `timeout`, or unreachable) is retried after
    ``retry_delays[n]`` with ``X-Slack-Retry-Num``/``X-Slack-Retry-Reason`` headers, at most
    ``len(retry_delays)`` times, unless the app answered with ``X-Slack-No-Retry: 1``.
    """

    def __init__(
        self,
        signing_secret: str,
        request_url: Callable[[], str | None],
        *,
        timeout: float = 3.0,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
    ) -> None:
        self.signing_secret = signing_secret
        self._request_url = request_url
        self.timeout = timeout
        self.retry_delays = tuple(retry_delays)
        self.log: list[DeliveryRecord] = []
        self.sent: dict[str, dict[str, Any]] = {}
        self.last_retry: dict[str, int] = {}
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._session: aiohttp.ClientSession | None = None
        self._worker: asyncio.Task[None] | None = None
        self._timers: set[asyncio.Task[None]] = set()
        self.socket: Transport | None = None

    async def start(self) -> None:
        """Open the HTTP session and start the delivery worker."""
        self._session = aiohttp.ClientSession()
        self._worker = asyncio.create_task(self._run(), name="slack-sandbox-delivery")

    async def stop(self) -> None:
        """Stop delivering (pending events are dropped) and close the session."""
        tasks = [t for t in (self._worker, *self._timers) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._timers.clear()
        self._worker = None
        self._queue = asyncio.Queue()
        self._pending = 0
        self._idle.set()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def reset(self) -> None:
        """Forget the delivery log and the record of sent events."""
        self.log.clear()
        self.sent.clear()
        self.last_retry.clear()

    def _add_pending(self) -> None:
        self._pending += 1
        self._idle.clear()

    def _done_pending(self) -> None:
        self._pending -= 1
        if self._pending <= 0:
            self._pending = 0
            self._idle.set()

    def enqueue(self, envelope: dict[str, Any]) -> None:
        """Queue an event_callback envelope for delivery (first attempt, in order)."""
        self.sent[envelope["event_id"]] = envelope
        self.last_retry[envelope["event_id"]] = 0
        self._put(_Job(envelope, self._record(_event_record(envelope, 0, None, "queued"))))

    def _record(self, record: DeliveryRecord) -> DeliveryRecord:
        self.log.append(record)
        return record

    def _put(self, job: _Job) -> None:
        self._add_pending()
        self._queue.put_nowait(job)

    async def redeliver(self, event_id: str, reason: str = "http_timeout") -> DeliveryRecord:
        """Send an already-delivered event again with the next ``X-Slack-Retry-Num``; returns the attempt."""
        envelope = self.sent.get(event_id)
        if envelope is None:
            raise KeyError(event_id)
        retry_num = self.last_retry.get(event_id, 0) + 1
        self.last_retry[event_id] = retry_num
        done: asyncio.Future[DeliveryRecord] = asyncio.get_running_loop().create_future()
        self._put(_Job(envelope, self._record(_event_record(envelope, retry_num, reason, "queued")), done))
        return await done

    async def wait_idle(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until every queued event (including scheduled retries) has been attempted."""
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def _run(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                record = await self._attempt(job)
                if job.done is not None and not job.done.done():
                    job.done.set_result(record)
            except Exception as exc:  # keep the worker alive whatever happens
                if job.done is not None and not job.done.done():
                    job.done.set_exception(exc)
            finally:
                self._done_pending()

    async def _attempt(self, job: _Job) -> DeliveryRecord:
        record = job.record
        record.state = "sending"
        body = json.dumps(job.envelope, separators=(",", ":"))
        headers = signed_headers(self.signing_secret, body, "application/json")
        if record.retry_num:
            headers["X-Slack-Retry-Num"] = str(record.retry_num)
            headers["X-Slack-Retry-Reason"] = record.retry_reason or "http_error"
        result = await self.post(body, headers)
        record.finish(result)
        no_retry = result.headers.get("x-slack-no-retry") == "1"
        if not result.ok and result.error != "no_request_url" and not no_retry and job.done is None:
            self._schedule_retry(job.envelope, record.retry_num, result)
        return record

    def _schedule_retry(self, envelope: dict[str, Any], retry_num: int, result: HttpResult) -> None:
        if retry_num >= len(self.retry_delays):
            return
        next_num = retry_num + 1
        delay = self.retry_delays[retry_num]
        event_id = envelope["event_id"]
        record = self._record(_event_record(envelope, next_num, result.error or "http_error", "scheduled"))
        self._add_pending()

        async def later() -> None:
            try:
                await asyncio.sleep(delay)
                self.last_retry[event_id] = max(self.last_retry.get(event_id, 0), next_num)
                record.state = "queued"
                self._put(_Job(envelope, record))
            finally:
                self._done_pending()

        task = asyncio.create_task(later())
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    async def post(self, body: str, headers: dict[str, str]) -> HttpResult:
        """POST a signed body to the request URL (or send it over Socket Mode while that is on); never raises for
        HTTP/network failures."""
        if self.socket is not None and self.socket.active():
            return await self.socket.send(body, headers, self.timeout)
        url = self._request_url()
        if not url:
            return HttpResult(None, b"", {}, 0.0, "no_request_url")
        if self._session is None:
            return HttpResult(None, b"", {}, 0.0, "not_started")
        started = time.monotonic()
        try:
            async with self._session.post(
                url,
                data=body.encode(),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                allow_redirects=False,
            ) as resp:
                payload = await resp.read()
                headers = {k.lower(): v for k, v in resp.headers.items()}
                return HttpResult(resp.status, payload, headers, time.monotonic() - started, None)
        except TimeoutError:
            return HttpResult(None, b"", {}, time.monotonic() - started, "http_timeout")
        except aiohttp.ClientError:
            return HttpResult(None, b"", {}, time.monotonic() - started, "connection_failed")

    async def send_interaction(self, payload: dict[str, Any]) -> HttpResult:
        """POST an interactivity payload (form-encoded, signed) and wait for the app's answer. No retries."""
        body = interaction_body(payload)
        headers = signed_headers(self.signing_secret, body, "application/x-www-form-urlencoded")
        actions = payload.get("actions") or [{}]
        record = self._record(
            DeliveryRecord(
                kind="interaction",
                type=str(payload.get("type")),
                event_id=None,
                state="sending",
                channel=(payload.get("channel") or {}).get("id"),
                action_id=actions[0].get("action_id"),
                callback_id=(payload.get("view") or {}).get("callback_id"),
                user=(payload.get("user") or {}).get("id"),
            )
        )
        result = await self.post(body, headers)
        record.finish(result)
        return result
