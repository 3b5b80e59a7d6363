"""Limits on incoming frames: size, rate and nesting, checked before a frame is parsed.

Each limit is a ``WSCOMMANDS`` setting (defaults in :mod:`.conf`, reasons in
docs/reliability.md). :class:`FrameGuard` only decides (a :class:`~.protocol.Decision`); the
consumer sends the reply and closes:

- :meth:`FrameGuard.check`: size (close 4413) and rate (frames and bytes: ``rate_limited``,
  then close 4429) of each frame (nesting and integers are checked as it is parsed,
  :func:`.protocol.decode`);
- :meth:`FrameGuard.refused` / :meth:`FrameGuard.accepted`: a client that keeps sending
  frames we refuse is closed with 4400.

Connection caps are in :mod:`.caps`, socket backpressure and the outgoing backlog in
:mod:`.flow`.
"""

from __future__ import annotations

import time
from typing import Any

from ..conf import wscommands_settings
from ..observability import logs, metrics
from ..wire.codes import CloseCode
from ..wire.exceptions import ProtocolError, RateLimited
from ..wire.jsoncodec import decode
from ..wire.protocol import ADMIT, Decision, error_reply, is_valid_request_id, refuse


def frame_size(text: str | None, data: bytes | None) -> int:
    """A frame's size in bytes, as it came over the wire (UTF-8 for text).

    Measured once per frame: the metrics, the size limit, the byte rate and the pending
    requests' bytes all take this figure. ASCII text (most frames) is not encoded; other text
    is, once, but only up to a length that cannot be within the size limit.
    """
    if text is None:
        return len(data or b"")
    if text.isascii():
        return len(text)
    if len(text) > wscommands_settings.MAX_MESSAGE_SIZE:
        return len(text)  # over the limit whatever its encoding: not worth encoding
    return len(text.encode("utf-8", "surrogatepass"))


def request_id_of(text: str) -> Any:
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

    def take(self, count: float = 1, now: float | None = None) -> float:
        """Take ``count`` tokens: 0.0 if granted, else the seconds until they are available.

        ``now``: ``time.monotonic()``, when the caller has read it already.
        """
        if now is None:
            now = time.monotonic()
        tokens = self.tokens + (now - self.stamp) * self.rate
        # (Not min(): in CPython 3.11 it parses its arguments as keywords, which costs more
        # than the rest of this method; this runs for every frame.)
        self.tokens = tokens if tokens < self.burst else self.burst
        self.stamp = now
        if self.tokens >= count:
            self.tokens -= count
            return 0.0
        return (count - self.tokens) / self.rate


class FrameGuard:
    """One connection's limits on incoming frames; every method returns a decision."""

    def __init__(self) -> None:
        s = wscommands_settings
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

    def check(self, text: str | None, data: bytes | None, size: int | None = None) -> Decision:
        """Whether a frame may go on to be parsed, and if not, what to send and close.

        ``size``: the frame's :func:`frame_size`, when the caller has measured it already.
        """
        s = wscommands_settings
        if size is None:
            size = frame_size(text, data)
        if size > s.MAX_MESSAGE_SIZE:
            metrics.frame_refused("too_big")
            logs.client_event("too_big", "frame over MAX_MESSAGE_SIZE: closing with 4413")
            return refuse(close=CloseCode.TOO_BIG)
        retry_after, limit, now = 0.0, "RATE_LIMIT", time.monotonic()
        if self.bucket is not None:
            retry_after = self.bucket.take(1, now)
        if self.byte_bucket is not None and not retry_after:
            retry_after, limit = self.byte_bucket.take(size, now), "RATE_LIMIT_BYTES"
        if retry_after:
            return self._throttle(text, retry_after, limit)
        self.throttled = 0
        return ADMIT

    def _throttle(self, text: str | None, retry_after: float, limit: str) -> Decision:
        self.throttled += 1
        metrics.frame_refused("rate_limited")
        if self.throttled > wscommands_settings.RATE_LIMIT_CLOSE_AFTER:
            logs.client_event("rate_close", "still over the rate limit: closing with 4429")
            return refuse(close=CloseCode.TOO_MANY_REQUESTS)
        logs.client_event("rate_limited", "frames over the rate limit: refused")
        error = RateLimited(details={"retry_after": round(retry_after, 3), "limit": limit})
        request_id = None if text is None else request_id_of(text)
        # What it sends meanwhile waits in TCP buffers instead of being read, unmasked and
        # refused here, which costs the server as much as serving it.
        return refuse(error_reply(error, request_id), rest=retry_after)

    def refused(self, error: ProtocolError) -> Decision:
        """Refuse a frame with ``error``; too many in a row also close with 4400."""
        self.invalid += 1
        logs.client_event("refused", "invalid frame refused")
        if self.invalid < wscommands_settings.MAX_INVALID_FRAMES:
            return refuse(error_reply(error))
        logs.client_event("bad_close", "too many invalid frames: closing with 4400")
        return refuse(error_reply(error), CloseCode.BAD_REQUEST)

    def accepted(self) -> None:
        """A valid request arrived: the client is not (only) sending garbage."""
        self.invalid = 0
