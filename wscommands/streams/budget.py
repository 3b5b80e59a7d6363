"""How much replay (resumes and gap fills) one connection may still be sent.

Two token buckets per connection, refilled continuously: ``RESUME_PUSHES`` pushes and
``RESUME_BYTES`` bytes per ``RESUME_INTERVAL`` seconds, each starting full (so a reconnect gets
its whole history at once: the start-up checks keep ``RESUME_PUSHES`` at least one full
history). A stream whose replay does not fit is refused whole (``rate_limited`` with
``retry_after``), never sent in part (docs/protocol.md, "Resumable delivery").
"""

from __future__ import annotations

import time

from ..conf import wscommands_settings


class ReplayBudget:
    """One connection's replay allowance (pushes and bytes)."""

    __slots__ = ("_at", "bytes", "pushes")

    def __init__(self) -> None:
        s = wscommands_settings
        self.pushes = float(s.RESUME_PUSHES)
        self.bytes = float(s.RESUME_BYTES)
        self._at = time.monotonic()

    def _refill(self) -> None:
        s = wscommands_settings
        now = time.monotonic()
        share = (now - self._at) / s.RESUME_INTERVAL
        self._at = now
        self.pushes = min(float(s.RESUME_PUSHES), self.pushes + share * s.RESUME_PUSHES)
        self.bytes = min(float(s.RESUME_BYTES), self.bytes + share * s.RESUME_BYTES)

    def exhausted(self) -> float:
        """0.0 while at least one push fits, else the seconds until one does."""
        self._refill()
        if self.pushes >= 1 and self.bytes >= 1:
            return 0.0
        return self._wait(1, 1)

    def take(self, pushes: int, size: int) -> float:
        """Spend ``pushes`` and ``size`` bytes: 0.0 if they fit (taken), else the seconds
        until they would (nothing taken)."""
        self._refill()
        if pushes <= self.pushes and size <= self.bytes:
            self.pushes -= pushes
            self.bytes -= size
            return 0.0
        return self._wait(pushes, size)

    def _wait(self, pushes: int, size: int) -> float:
        s = wscommands_settings
        wait = max((pushes - self.pushes) / s.RESUME_PUSHES, (size - self.bytes) / s.RESUME_BYTES)
        return max(round(wait * s.RESUME_INTERVAL, 3), 0.001)
