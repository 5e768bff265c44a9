"""Fault injection: make Web API calls fail the way real Slack sometimes does.

A fault is one of `KINDS` or ``error:<code>``. The Web API (`bot.dev.sandbox.webapi`) asks `Faults.take`
before dispatching each call; a refusing fault is answered with `refusal` instead of processing the
call, an ``*_after_store`` fault acts after it (a held answer, or `drop_connection`).
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.dev.sandbox.errors import SlackError

REFUSALS = ("ratelimited", "server_error", "html_error")
AFTER_STORE = ("timeout_after_store", "reset_after_store")
KINDS = (*REFUSALS, *AFTER_STORE)
ERROR_PREFIX = "error:"
CHAOS_EXEMPT = frozenset({"auth.test"})
BAD_GATEWAY = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n"
    "<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
)


def check_kind(kind: str) -> str:
    """Return `kind` if it names a fault, else raise ``invalid_arguments``."""
    if kind in KINDS or (kind.startswith(ERROR_PREFIX) and len(kind) > len(ERROR_PREFIX)):
        return kind
    raise SlackError("invalid_arguments", detail=f"unknown fault kind {kind!r}; use one of {KINDS} or error:<code>")


@dataclass
class Fault:
    """A fault waiting to hit the next `remaining` calls of one method."""

    kind: str
    remaining: int = 1
    retry_after: int = 1
    delay: float = 30.0

    @property
    def after_store(self) -> bool:
        """True when the call is processed before the fault hits (timeout/reset)."""
        return self.kind in AFTER_STORE

    @property
    def error_code(self) -> str | None:
        """The Slack error code of an ``error:<code>`` fault."""
        return self.kind.removeprefix(ERROR_PREFIX) if self.kind.startswith(ERROR_PREFIX) else None


@dataclass
class Chaos:
    """Random faults: each matching call fails with probability `rate`."""

    rate: float
    rng: random.Random
    methods: frozenset[str] | None
    kinds: tuple[str, ...]
    delay: float
    retry_after: int

    def applies_to(self, method: str) -> bool:
        """Whether calls of `method` are subject to chaos."""
        return method in self.methods if self.methods is not None else method not in CHAOS_EXEMPT


def _non_negative(name: str, value: float) -> None:
    if value < 0:
        raise SlackError("invalid_arguments", detail=f"{name} must not be negative")


class Faults:
    """Pending per-method faults, optional chaos, and the responses currently held back."""

    def __init__(self) -> None:
        self.pending: dict[str, deque[Fault]] = {}
        self.chaos: Chaos | None = None
        self._held: set[asyncio.Future[None]] = set()

    def inject(self, method: str, kind: str, *, times: int = 1, retry_after: int = 1, delay: float = 30.0) -> None:
        """Queue a fault for the next `times` calls of `method` (after faults already queued for it)."""
        if times < 1:
            raise SlackError("invalid_arguments", detail="times must be at least 1")
        _non_negative("retry_after", retry_after)
        _non_negative("delay", delay)
        fault = Fault(check_kind(kind), remaining=times, retry_after=retry_after, delay=delay)
        self.pending.setdefault(method, deque()).append(fault)

    def set_chaos(
        self,
        rate: float,
        *,
        seed: int | None = None,
        methods: Iterable[str] | None = None,
        kinds: Iterable[str] | None = None,
        delay: float = 30.0,
        retry_after: int = 1,
    ) -> None:
        """Fault each call of `methods` with probability `rate` (0 turns chaos off)."""
        if not 0 <= rate <= 1:
            raise SlackError("invalid_arguments", detail="rate must be between 0 and 1")
        _non_negative("retry_after", retry_after)
        _non_negative("delay", delay)
        chosen = tuple(check_kind(k) for k in kinds) if kinds is not None else KINDS
        if not chosen:
            raise SlackError("invalid_arguments", detail="kinds must not be empty")
        self.chaos = None
        if rate > 0:
            wanted = frozenset(methods) if methods is not None else None
            self.chaos = Chaos(rate, random.Random(seed), wanted, chosen, delay, retry_after)

    def clear(self) -> None:
        """Drop pending faults and turn chaos off (held responses stay held)."""
        self.pending.clear()
        self.chaos = None

    def take(self, method: str) -> Fault | None:
        """The fault the current call of `method` suffers, if any: queued faults first, then chaos."""
        queue = self.pending.get(method)
        if queue:
            fault = queue[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                queue.popleft()
            if not queue:
                del self.pending[method]
            return fault
        chaos = self.chaos
        if chaos is None or not chaos.applies_to(method) or chaos.rng.random() >= chaos.rate:
            return None
        return Fault(chaos.rng.choice(chaos.kinds), retry_after=chaos.retry_after, delay=chaos.delay)

    async def hold(self, delay: float) -> bool:
        """Wait `delay` seconds without blocking the loop; False if `release` cut the wait short."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._held.add(waiter)
        try:
            await asyncio.wait_for(waiter, delay)
        except TimeoutError:
            return True
        finally:
            self._held.discard(waiter)
        return False

    @property
    def held(self) -> int:
        """How many responses are being held back right now."""
        return len(self._held)

    def release(self) -> None:
        """End every hold now (on stop or reset); the held calls are then dropped."""
        for waiter in self._held:
            if not waiter.done():
                waiter.set_result(None)


def refusal(fault: Fault) -> tuple[web.Response, dict[str, Any]]:
    """The HTTP answer to a call that `fault` keeps from being processed, and the body to log."""
    if fault.kind == "html_error":
        return web.Response(status=502, text=BAD_GATEWAY, content_type="text/html"), {"ok": False, "html": BAD_GATEWAY}
    status, headers = 200, {}
    body: dict[str, Any] = {"ok": False, "error": fault.error_code}
    if fault.kind == "ratelimited":
        status, headers, body["error"] = 429, {"Retry-After": str(fault.retry_after)}, "ratelimited"
    elif fault.kind == "server_error":
        status, body["error"] = 500, "internal_error"
    return web.json_response(body, status=status, headers=headers), body


def drop_connection(request: web.Request) -> None:
    """Close the client's connection at once with a TCP reset, so no HTTP answer reaches it."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
