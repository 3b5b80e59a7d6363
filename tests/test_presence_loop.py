"""The presence heartbeat and reaper loop (``PresenceTracker.run``) outlives any error."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

from wscommands.backends import get_backend
from wscommands.backends.memory import MemoryBackend
from wscommands.presence.tracker import PresenceTracker
from wscommands.wire.jsoncodec import encode

DEAD = "dead-process"


class FlakyBackend(MemoryBackend):
    """The memory backend whose first heartbeat and first reaping fail with an error that is
    not ``BackendUnavailable`` (as a Redis replica answers READONLY after a failover); the
    reaping after that finds one dead process."""

    def __init__(self) -> None:
        super().__init__()
        self.write_fails = self.reap_fails = 1
        self.rewritten = asyncio.Event()  # the whole view written again after the failure
        self.reaped = asyncio.Event()  # the dead process's entries taken

    async def presence_write(self, process, ttl, entries=None, remove=(), replace=False):
        if self.write_fails:
            self.write_fails -= 1
            raise RuntimeError("READONLY You can't write against a read only replica.")
        if replace:
            self.rewritten.set()
        return await super().presence_write(process, ttl, entries, remove, replace)

    async def presence_reap(self):
        if self.reap_fails:
            self.reap_fails -= 1
            raise RuntimeError("READONLY You can't write against a read only replica.")
        if self.reaped.is_set():
            return {}, None
        self.reaped.set()
        entry = {"connection_id": f"{DEAD}~1", "user_id": 7, "username": "ann", "groups": []}
        return {DEAD: [encode(entry)]}, None


async def test_the_loop_logs_unexpected_errors_and_goes_on_beating_and_reaping(settings, caplog):
    """A failed heartbeat and a failed reaping are logged with their traceback; the loop
    rewrites the view and reaps at its next wakes instead of stopping for good (a stopped
    loop meant this process looked dead to the others, and reaped nobody)."""
    settings.WSCOMMANDS = {
        **settings.WSCOMMANDS,
        "BACKEND": "tests.test_presence_loop.FlakyBackend",
        "PRESENCE_TTL": 0.3,
        "PRESENCE_EVENTS": True,
    }
    backend = get_backend()
    tracker = PresenceTracker(SimpleNamespace(channel="live-process"))
    with caplog.at_level(logging.INFO, logger="wscommands"):
        loop = asyncio.create_task(tracker.run("live-process"))
        try:
            async with asyncio.timeout(10):  # a hang guard
                await backend.reaped.wait()
                await backend.rewritten.wait()
            assert not loop.done()
        finally:
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)
    failures = {r.getMessage(): r.exc_info for r in caplog.records if "failed" in r.getMessage()}
    assert set(failures) == {
        "presence heartbeat failed; will retry",
        "presence reaping failed; will retry",
    }
    assert all(exc_info and exc_info[0] is RuntimeError for exc_info in failures.values())
    died = [r.getMessage() for r in caplog.records if "died" in r.getMessage()]
    assert died == [f"presence: process {DEAD} died; 1 connection(s) left"]
