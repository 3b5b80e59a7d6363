"""Limits that keep one client from hurting the server: size, nesting, rate, backlog, caps.

Each limit is a ``WSCOMMANDS`` setting (defaults in :mod:`.conf`, reasons in
docs/reliability.md). The consumer calls in at a few points:

- :func:`admit_connection` / :func:`release_connection`: caps per user and per client IP;
- :meth:`FrameGuard.admit`: size (close 4413) and rate (``rate_limited``, then close 4429)
  of each frame, before it is parsed (nesting and integers are checked as it is parsed,
  :func:`.protocol.decode`);
- :meth:`FrameGuard.refused` / :meth:`FrameGuard.accepted`: a client that keeps sending
  frames we refuse is closed with 4400;
- :meth:`FrameGuard.over_backlog`: a client that does not read is cut off (4429); its
  backlog also counts against the process's budget (:mod:`.budget`);
- under daphne, a frame over daphne's own size cap gets a close frame (1009) instead of a
  dropped connection;
- under daphne, reading from a client's socket pauses while more than ``MAX_INBOX`` of its
  frames wait for the consumer (TCP backpressure instead of an unbounded queue).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from . import logs, metrics
from .conf import wscommands_settings
from .exceptions import RateLimited
from .protocol import decode, encode, error_reply, is_valid_request_id

if TYPE_CHECKING:
    from .consumer import CommandConsumer

#: Close codes (PROTOCOL.md).
BAD_REQUEST = 4400
TOO_BIG = 4413
TOO_MANY = 4429


def utf8_size_exceeds(text: str, limit: int) -> bool:
    """True if ``text`` takes more than ``limit`` bytes in UTF-8 (encodes only when unsure)."""
    if len(text) > limit:
        return True
    if len(text) * 4 <= limit:
        return False
    return len(text.encode("utf-8", "surrogatepass")) > limit


def _request_id(text: str) -> Any:
    """The request_id of a frame we refuse, when one can be read (so clients can match)."""
    try:
        data = decode(text)
    except (ValueError, RecursionError):
        return None
    if isinstance(data, dict) and is_valid_request_id(data.get("request_id")):
        return data["request_id"]
    return None


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up (a frame, or a byte, each)."""

    def __init__(self, rate: float, burst: int):
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def take(self, count: float = 1) -> float:
        """Take ``count`` tokens: 0.0 if granted, else the seconds until they are available."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= count:
            self.tokens -= count
            return 0.0
        return (count - self.tokens) / self.rate


class FrameGuard:
    """The per-connection limits on incoming frames and the outgoing backlog."""

    def __init__(self, consumer: CommandConsumer):
        s = wscommands_settings
        self.consumer = consumer
        self.bucket = TokenBucket(s.RATE_LIMIT, s.RATE_LIMIT_BURST) if s.RATE_LIMIT else None
        # Parsing costs in proportion to bytes: a byte rate bounds what one client's frames
        # cost the event loop, whatever their count.
        self.byte_bucket = (
            TokenBucket(s.RATE_LIMIT_BYTES, s.RATE_LIMIT_BYTES_BURST)
            if s.RATE_LIMIT_BYTES
            else None
        )
        self.throttled = 0  # frames refused with rate_limited in a row
        self.invalid = 0  # frames refused as invalid in a row
        self.transport, self.inbox = _daphne_internals(consumer)
        self.cut_off = False
        self.paused = False  # the inbox is full
        self.resting = False  # over the rate: waiting for retry_after
        self.not_reading = False  # the socket is not being read (either of those)
        if self.transport is not None:
            consumer.connection.resources.outgoing_probe = self.buffered

    async def admit(self, text: str | None, data: bytes | None) -> bool:
        """Whether a frame may go on to be parsed; refuses (replies or closes) otherwise."""
        s = wscommands_settings
        if self.inbox is not None:
            self._backpressure(self.inbox.qsize(), s.MAX_INBOX)
        size = len(data) if text is None else None
        if (size is not None and size > s.MAX_MESSAGE_SIZE) or (
            text is not None and utf8_size_exceeds(text, s.MAX_MESSAGE_SIZE)
        ):
            metrics.frame_refused("too_big")
            logs.client_event("too_big", "frame over MAX_MESSAGE_SIZE: closing with 4413")
            await self.consumer.close(TOO_BIG)
            return False
        retry_after, limit = 0.0, "RATE_LIMIT"
        if self.bucket is not None:
            retry_after = self.bucket.take()
        if self.byte_bucket is not None and not retry_after:
            retry_after, limit = self.byte_bucket.take(size or len(text)), "RATE_LIMIT_BYTES"
        if retry_after:
            await self._throttle(text, retry_after, limit)
            return False
        self.throttled = 0
        return True

    def _backpressure(self, waiting: int, high: int) -> None:
        # daphne puts every frame it reads into an unbounded asyncio.Queue: a client that
        # sends faster than we handle would grow it without limit. Stop reading its socket
        # (so TCP pushes back on the client) until we have caught up.
        if not self.paused and waiting >= high:
            self.paused = True
        elif self.paused and waiting <= high // 2:
            self.paused = False
        self._set_reading()

    def _rest(self, seconds: float) -> None:
        # A client over its rate: stop reading its socket until it may send again. What it
        # sends meanwhile waits in TCP buffers instead of being read, unmasked and refused
        # here, which costs the server as much as serving it (daphne only).
        if self.transport is None or self.resting:
            return
        self.resting = True
        self._set_reading()
        asyncio.get_running_loop().call_later(seconds, self._wake)

    def _wake(self) -> None:
        self.resting = False
        self._set_reading()

    def _set_reading(self) -> None:
        stop = self.paused or self.resting
        if stop != self.not_reading and not self.cut_off:
            self.not_reading = stop
            if stop:
                self.transport.pauseProducing()
            else:
                self.transport.resumeProducing()

    async def _throttle(self, text: str | None, retry_after: float, limit: str) -> None:
        self.throttled += 1
        metrics.frame_refused("rate_limited")
        if self.throttled > wscommands_settings.RATE_LIMIT_CLOSE_AFTER:
            logs.client_event("rate_close", "still over the rate limit: closing with 4429")
            await self.consumer.close(TOO_MANY)
            return
        logs.client_event("rate_limited", "frames over the rate limit: refused")
        self._rest(retry_after)
        error = RateLimited(details={"retry_after": round(retry_after, 3), "limit": limit})
        request_id = None if text is None else _request_id(text)
        await self.consumer.push_text(encode(error_reply(error, request_id)))

    async def refused(self) -> None:
        """Count a refused frame; too many in a row close the connection with 4400."""
        self.invalid += 1
        logs.client_event("refused", "invalid frame refused")
        if self.invalid >= wscommands_settings.MAX_INVALID_FRAMES:
            logs.client_event("bad_close", "too many invalid frames: closing with 4400")
            await self.consumer.close(BAD_REQUEST)

    def accepted(self) -> None:
        """A valid request arrived: the client is not (only) sending garbage."""
        self.invalid = 0

    def over_backlog(self) -> bool:
        """True (and the client is cut off) if daphne holds too much unread output for it.

        ASGI has no backpressure: ``send`` returns at once and Twisted buffers without
        bound. Under daphne we read the size of that buffer from its transport; under other
        servers this check does nothing (see docs/reliability.md).
        """
        transport = self.transport
        if transport is None or self.cut_off:
            return self.cut_off
        buffered = self.buffered()
        if not self.consumer.connection.resources.set_outgoing(buffered):
            return True  # over the process's budget: cut_off() aborts it
        if buffered <= wscommands_settings.MAX_OUTGOING_BACKLOG:
            return False
        metrics.frame_refused("backlog")
        logs.client_event("backlog", "client does not read (%d bytes waiting): cut off", buffered)
        self.cut_off = True
        transport.abortConnection()
        return True

    def buffered(self) -> int:
        """Bytes daphne holds for this client, not yet written to its socket (daphne only)."""
        transport = self.transport
        return len(transport.dataBuffer) - transport.offset + transport._tempDataLen

    def abort_if_backlogged(self) -> bool:
        """Abort the connection if daphne holds output for it (it could not read a close)."""
        if self.transport is None or self.cut_off:
            return self.cut_off
        if self.buffered() == 0:
            return False
        self.cut_off = True
        self.transport.abortConnection()
        return True


def _daphne_internals(consumer: CommandConsumer) -> tuple[Any, Any]:
    """Daphne's Twisted TCP transport and frame queue behind this consumer (None, None else).

    Daphne hands the application ``functools.partial(server.handle_reply, protocol)`` as
    ``send``; the protocol's transport holds the bytes not yet written to the socket, and
    its ``application_queue`` the frames read but not yet handled.
    """
    send = consumer.base_send
    for _ in range(8):  # Channels' session middleware wraps send: follow ``real_send``
        owner = getattr(send, "__self__", None)
        if not hasattr(owner, "real_send"):
            break
        send = owner.real_send
    protocol = next(iter(getattr(send, "args", ())), None)
    if hasattr(protocol, "failByDrop"):
        # Autobahn drops the TCP connection without a close frame when it fails one, e.g.
        # for a frame over daphne's --websocket_max_message_size: the client cannot tell why
        # and may send the same frame again. Send the close frame (1009 for that case).
        protocol.failByDrop = False
    transport = getattr(protocol, "transport", None)
    needed = ("dataBuffer", "offset", "_tempDataLen", "abortConnection", "pauseProducing")
    if transport is None or not all(hasattr(transport, name) for name in needed):
        return None, None
    queue = getattr(protocol, "application_queue", None)
    return transport, queue if hasattr(queue, "qsize") else None


# Connection caps (per process) -------------------------------------------------------------

_per_ip: Counter[str] = Counter()
_per_user: Counter[Any] = Counter()


def _client_ip(consumer: CommandConsumer) -> str | None:
    client = consumer.scope.get("client")
    return client[0] if client else None


async def admit_connection(consumer: CommandConsumer) -> bool:
    """Count a new connection against the caps; over a cap it is closed with 4429."""
    s = wscommands_settings
    user = consumer.scope.get("user")
    user_pk = user.pk if user is not None and user.is_authenticated else None
    ip = _client_ip(consumer)
    over_ip = s.MAX_CONNECTIONS_PER_IP is not None and _per_ip[ip] >= s.MAX_CONNECTIONS_PER_IP
    over_user = (
        s.MAX_CONNECTIONS_PER_USER is not None
        and user_pk is not None
        and _per_user[user_pk] >= s.MAX_CONNECTIONS_PER_USER
    )
    if over_ip or over_user:
        reason = "per_ip" if over_ip else "per_user"
        metrics.connection_refused(reason)
        logs.client_event("cap", "connection over the %s cap: closing with 4429", reason)
        await consumer.accept()  # so the client sees why, instead of a bare HTTP 403
        await consumer.close(TOO_MANY)
        return False
    _per_ip[ip] += 1
    if user_pk is not None:
        _per_user[user_pk] += 1
    consumer._counted = (ip, user_pk)
    return True


def release_connection(consumer: CommandConsumer) -> None:
    """Give back what :func:`admit_connection` counted (safe to call more than once)."""
    counted = consumer.__dict__.pop("_counted", None)
    if counted is None:
        return
    ip, user_pk = counted
    for counter, key in ((_per_ip, ip), (_per_user, user_pk)):
        if key is not None or counter is _per_ip:
            counter[key] -= 1
            if counter[key] <= 0:
                del counter[key]
