"""resilience.cancel_and_wait: the hub's background tasks stop within a bound."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from wscommands._internal.resilience import cancel_and_wait


async def _swallows_one_cancellation(stopped: list[str]) -> None:
    # As a loop does when a library below it turned the cancellation into an error.
    for attempt in range(2):
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            if attempt == 1:
                stopped.append("ended")
                raise


async def test_a_task_that_swallowed_a_cancellation_is_cancelled_again():
    """One cancel was not enough (the hub's stop then waited forever: handshakes after the
    last disconnect hung until daphne dropped them); the task is cancelled until it ends."""
    stopped: list[str] = []
    task = asyncio.create_task(_swallows_one_cancellation(stopped))
    await asyncio.sleep(0)
    await cancel_and_wait([task], timeout=5)
    assert task.cancelled() and stopped == ["ended"]


async def test_a_task_that_never_ends_is_left_behind_after_the_timeout(caplog):
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(3600)

    task = asyncio.create_task(stubborn(), name="stubborn")
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING, logger="wscommands.layer"):
        await cancel_and_wait([task], timeout=0.2)
    assert not task.done()
    assert "did not stop within 0.2 s: stubborn" in caplog.text
    release.set()
    task.cancel()
    await asyncio.wait([task])
