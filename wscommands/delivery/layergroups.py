"""The hub's channel-layer groups: joined and left in the background, and kept alive.

A hub's channel is in the channel-layer groups its local connections need (see
:mod:`.messaging`). :class:`LayerGroups` makes those calls in order per group, without holding
up a handshake (a stalled Redis must not hold up new connections), and re-asserts every
membership every ``GROUP_REFRESH_INTERVAL`` and as soon as one may be lost: after a failed
layer call, or when its canary, a message to a group only this hub is in, sent every
``HEALTH_CHECK_INTERVAL``, does not come back. See docs/scaling.md.

What was sent to those groups while a membership was missing never reached the process:
once the canary comes back after such a loss, or after the layer reconnected to Redis (a
Pub/Sub layer's subscriptions are renewed only by redis-py's reconnection, and what was
published before it is gone), the hub is asked to catch up from history.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from channels.layers import BaseChannelLayer

from .._internal.compat import channel_suffix, layer_receivers
from .._internal.ordered import OrderedCalls
from .._internal.resilience import best_effort
from ..conf import wscommands_settings
from ..observability import metrics

#: Sent by a hub to a group only it is in, to check the layer still delivers to it.
CANARY_TYPE = "wscommands.canary"


class LayerGroups:
    """One hub's memberships in the channel layer's groups."""

    def __init__(self, layer: BaseChannelLayer, catch_up: Callable[[], Awaitable[None]]):
        self.layer = layer
        # Delivers what the process may have missed (from history); raises if it could not.
        self._catch_up = catch_up
        #: The group only this hub is in (set while :meth:`keep_alive` runs).
        self.canary_group: str | None = None
        # Set when a membership may be missing in the layer: the refresh loop re-asserts.
        self._rejoin_needed = asyncio.Event()
        self._canary_seen = asyncio.Event()
        # Layer membership calls, in order per channel-layer group; a handshake never waits
        # for them (a stalled Redis must not hold up new connections).
        self._calls = OrderedCalls()

    def change(self, add: bool, channel_group: str, channel: str) -> asyncio.Task[bool]:
        """Add ``channel`` to a layer group (or discard it) in the background."""

        async def call() -> bool:
            if add:
                if await best_effort(self.layer.group_add(channel_group, channel), "join"):
                    return True
                self._rejoin_needed.set()
                return False
            return await best_effort(self.layer.group_discard(channel_group, channel), "leave")

        return self._calls.run(channel_group, call)

    def layer_failed(self) -> None:
        """A layer call failed (Redis down): memberships may be lost with its data."""
        self._rejoin_needed.set()

    def canary_returned(self) -> None:
        """The hub received its canary."""
        self._canary_seen.set()

    async def keep_alive(self, channel: str, memberships: Callable[[], list[str]]) -> None:
        """Re-assert ``memberships()`` when due or when they may be lost, and catch up once
        the layer delivers again after a possible loss (again if that failed); until
        cancelled."""
        # Every GROUP_REFRESH_INTERVAL, and as soon as they may be lost: after a failed layer
        # call (_rejoin_needed), or when the canary, a message to a group only this hub is
        # in, does not come back. The canary is what notices a Redis that restarted empty
        # while nothing failed here (redis-py reconnects by itself).
        loop = asyncio.get_running_loop()
        refreshed = loop.time()
        canary_group = f"{wscommands_settings.PREFIX}.canary.{channel_suffix(channel)}"
        self.canary_group = canary_group
        # Join the canary's group before its first probe: a probe sent to a group this hub
        # is not in yet never comes back, and counted as a lost layer at every hub start.
        if not await best_effort(self.layer.group_add(canary_group, channel), "join"):
            self._rejoin_needed.set()
        receivers, missed = layer_receivers(self.layer), False
        while True:
            # Read before the canary: one that comes back was published after these
            # connections subscribed, so history then holds whatever they did not get.
            now = layer_receivers(self.layer)
            healthy = await self._canary(canary_group)
            missed = missed or not healthy or now != receivers or self._rejoin_needed.is_set()
            due = loop.time() - refreshed >= wscommands_settings.GROUP_REFRESH_INTERVAL
            if not healthy or due or self._rejoin_needed.is_set():
                if await self._reassert(channel, memberships()):
                    self._rejoin_needed.clear()
                    refreshed = loop.time()
                else:
                    self._rejoin_needed.set()
            elif missed and await best_effort(self._catch_up(), "catch-up"):
                receivers, missed = now, False
            await asyncio.sleep(wscommands_settings.HEALTH_CHECK_INTERVAL)

    async def _reassert(self, channel: str, groups: list[str]) -> bool:
        # Re-adding is idempotent: it renews the layer's group expiry and restores
        # memberships a restarted Redis has lost.
        for group in groups:
            if not await best_effort(self.layer.group_add(group, channel), "re-join"):
                return False
        return True

    async def _canary(self, group: str) -> bool:
        self._canary_seen.clear()
        started = time.perf_counter()
        if not await best_effort(self.layer.group_send(group, {"type": CANARY_TYPE}), "canary"):
            metrics.canary(None)
            return False
        try:
            async with asyncio.timeout(wscommands_settings.CHANNEL_LAYER_TIMEOUT):
                await self._canary_seen.wait()
        except TimeoutError:
            metrics.canary(None)
            return False
        metrics.canary(time.perf_counter() - started)
        return True

    async def stopped(self, channel: str) -> None:
        """The hub stopped: ``channel`` leaves its canary group."""
        if self.canary_group is not None:
            group, self.canary_group = self.canary_group, None
            await best_effort(self.layer.group_discard(group, channel), "stop")
