"""What each connection, and the whole process, holds on behalf of clients.

Per connection, an :class:`Account` bounds its waiting requests (count and frame bytes), its
``call_later`` timers (count and bytes of their arguments) and its groups (count), and
records its outgoing backlog (bytes daphne holds for it). Per process, a :class:`Budget`
bounds the bytes of all accounts together (``MAX_CLIENT_MEMORY``): past it, the heaviest
connection is cut off, or the asking one refused when it is itself the heaviest, so the
well-behaved, who hold little, keep working.

Guards decide, callers act: each ``reserve_*`` returns None (granted) or the
:class:`~wscommands.exceptions.RateLimited` error to answer with. Refusals of one kind of
resource in a row past ``RATE_LIMIT_CLOSE_AFTER`` cut the connection off (its ``on_cut``
callback closes it with 4429). Timers may be set from worker threads, so every change takes
the budget's lock.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._internal.runtime import RUNTIME, Part
from ..conf import wscommands_settings
from ..observability import logs
from ..wire.exceptions import RateLimited

logger = logging.getLogger("wscommands.connection")

_OVER_BUDGET = "the server holds too much for its clients"

#: The kinds of things a connection holds: settings bounding their count and bytes, and the
#: messages of the two refusals.
KINDS = {
    "requests": (
        "MAX_PENDING_REQUESTS",
        "MAX_PENDING_BYTES",
        "too many requests waiting",
        "too many bytes of requests waiting",
    ),
    "timers": (
        "MAX_TIMERS",
        "MAX_TIMER_BYTES",
        "too many timers on this connection",
        "timers hold too many bytes",
    ),
}


@dataclass
class Holding:
    """Things of one kind a connection holds: how many, and their bytes."""

    count: int = 0
    bytes: int = 0


def _refusal(what: str, setting: str) -> RateLimited:
    value = getattr(wscommands_settings, setting)
    return RateLimited(f"{what} ({setting} = {value})", details={"limit": setting, "max": value})


class Budget:
    """The bytes all connections of this process hold, bounded by ``MAX_CLIENT_MEMORY``."""

    def __init__(self) -> None:
        self.total = 0
        self.accounts: set[Account] = set()
        self.lock = threading.Lock()

    def _fits(self, account: Account, size: int) -> bool:
        """Whether ``account`` may hold ``size`` more bytes; cuts heavier ones to make room.

        Called with the lock held.
        """
        limit = wscommands_settings.MAX_CLIENT_MEMORY
        if self.total + size > limit:
            # Backlogs are recorded when something is sent: read them afresh, a client may
            # have caught up since.
            for other in self.accounts:
                other._refresh_outgoing()
        while self.total + size > limit:
            heaviest = max(self.accounts, key=_held, default=None)
            if heaviest is None or heaviest is account or account.held + size >= heaviest.held:
                return False
            self._cut_heaviest(heaviest, limit)
        return True

    def _cut_heaviest(self, account: Account, limit: int) -> None:
        """Cut off ``account``, the heaviest, to bring the process under ``limit`` (lock held)."""
        logger.warning(
            "process holds %d bytes for clients (MAX_CLIENT_MEMORY %d): cutting off the "
            "heaviest connection (%d bytes)",
            self.total,
            limit,
            account.held,
        )
        self._cut(account)

    def _cut(self, account: Account) -> None:
        """Stop counting ``account`` and have its connection closed (lock held)."""
        if account.cut_off:
            return
        account.cut_off = True
        self.total -= account.held
        self.accounts.discard(account)
        account.loop.call_soon_threadsafe(account.on_cut)


BUDGET: Part[Budget] = Part("memory budget", lambda: Budget(), per_loop=False)


def get_budget() -> Budget:
    """The process's budget (one for all event loops: memory is per process)."""
    return RUNTIME.get(BUDGET)


class Account:
    """One connection's waiting requests, timers, groups and outgoing backlog."""

    def __init__(self, on_cut: Callable[[], Any], budget: Budget | None = None):
        self.budget = budget or get_budget()
        self.on_cut = on_cut
        # on_cut is called on the connection's loop, whatever thread a refusal happened in.
        self.loop = asyncio.get_running_loop()
        #: What it holds of each kind in :data:`KINDS`.
        self.holdings = {kind: Holding() for kind in KINDS}
        self.requests = self.holdings["requests"]  # (looked up per frame)
        self.outgoing = 0
        #: Bytes of frames the server read from the client but the consumer has not taken.
        self.inbox = 0
        #: Refusals in a row, per kind of resource ("requests", "timers", "groups").
        self.refusals: dict[str, int] = {}
        self.cut_off = False
        #: Reads the bytes the server holds unsent for this client (None: not known).
        self.outgoing_probe: Callable[[], int] | None = None
        with self.budget.lock:
            self.budget.accounts.add(self)

    @property
    def held(self) -> int:
        """Bytes this connection holds (waiting frames, timer arguments, unread output)."""
        return sum(h.bytes for h in self.holdings.values()) + self.outgoing + self.inbox

    # Decisions ----------------------------------------------------------------------------

    def reserve_request(self, size: int) -> RateLimited | None:
        """Room for one more waiting request of ``size`` bytes, or the refusal."""
        # Every frame comes here: the common case is decided without the generic lookups
        # of _reserve (which says which limit refused).
        s, held, budget = wscommands_settings, self.requests, self.budget
        with budget.lock:
            if (
                held.count < s.MAX_PENDING_REQUESTS
                and held.bytes + size <= s.MAX_PENDING_BYTES
                and (self.cut_off or budget.total + size <= s.MAX_CLIENT_MEMORY)
            ):
                held.count += 1
                held.bytes += size
                if not self.cut_off:
                    budget.total += size
                if self.refusals:
                    self.refusals["requests"] = 0
                return None
        return self._reserve("requests", size)

    def release_request(self, size: int) -> None:
        """A request is over (run, refused or cancelled): its frame is no longer held."""
        self._release(self.requests, size)

    def reserve_timer(self, size: int) -> RateLimited | None:
        """Room for one more timer whose arguments weigh ``size`` bytes, or the refusal."""
        return self._reserve("timers", size)

    def release_timer(self, size: int) -> None:
        """A timer ran or was cancelled."""
        self._release(self.holdings["timers"], size)

    def admit_group(self, joined: int) -> RateLimited | None:
        """Whether a connection in ``joined`` groups may join one more, or the refusal."""
        with self.budget.lock:
            if joined >= wscommands_settings.MAX_GROUPS_PER_CONNECTION:
                return self._refuse("groups", "too many groups", "MAX_GROUPS_PER_CONNECTION")
            self.refusals["groups"] = 0
        return None

    def set_outgoing(self, size: int) -> bool:
        """Record the bytes waiting to be written to the client; False if it was cut off."""
        with self.budget.lock:
            if self.cut_off:
                return False
            delta, self.outgoing = size - self.outgoing, size
            return self._held_more(delta)

    def set_inbox(self, size: int) -> bool:
        """Record the bytes of frames read from the client but not yet taken (under daphne,
        at most ``MAX_INBOX`` frames); False if the connection was cut off."""
        with self.budget.lock:
            if self.cut_off:
                return False
            delta, self.inbox = size - self.inbox, size
            return self._held_more(delta)

    def close(self) -> None:
        """The connection is gone: give back everything it held."""
        with self.budget.lock:
            if not self.cut_off:
                self.budget.total -= self.held
                self.budget.accounts.discard(self)
            self.cut_off = True
            self.holdings = {kind: Holding() for kind in KINDS}
            self.requests = self.holdings["requests"]
            self.outgoing = self.inbox = 0

    # Internals ----------------------------------------------------------------------------

    def _reserve(self, kind: str, size: int) -> RateLimited | None:
        count_limit, bytes_limit, too_many, too_heavy = KINDS[kind]
        held = self.holdings[kind]
        with self.budget.lock:
            if held.count >= getattr(wscommands_settings, count_limit):
                return self._refuse(kind, too_many, count_limit)
            if held.bytes + size > getattr(wscommands_settings, bytes_limit):
                return self._refuse(kind, too_heavy, bytes_limit)
            if not self._charge(size):
                return self._refuse(kind, _OVER_BUDGET, "MAX_CLIENT_MEMORY")
            held.count += 1
            held.bytes += size
            if self.refusals.get(kind):
                self.refusals[kind] = 0
        return None

    def _release(self, held: Holding, size: int) -> None:
        # (A holding of a connection cut off meanwhile is no longer counted: left alone.)
        with self.budget.lock:
            if self.cut_off:
                return
            held.count -= 1
            held.bytes -= size
            self.budget.total -= size

    # (lock held)

    def _held_more(self, delta: int) -> bool:
        # What the server already holds cannot be refused: over the budget, the heaviest
        # connection is cut off, this one if it is the heaviest.
        if delta <= 0:
            self.budget.total += delta
            return True
        if self._charge(delta):
            return True
        self.budget.total += delta
        self.budget._cut_heaviest(self, wscommands_settings.MAX_CLIENT_MEMORY)
        return False

    def _charge(self, size: int) -> bool:
        if self.cut_off:
            return True  # no longer counted: it is being closed
        budget = self.budget
        # _fits only when over the limit: it is the slow path (it may cut others off).
        if budget.total + size > wscommands_settings.MAX_CLIENT_MEMORY and not budget._fits(
            self, size
        ):
            return False
        budget.total += size
        return True

    def _refresh_outgoing(self) -> None:
        if self.outgoing_probe is not None:
            size = self.outgoing_probe()
            self.budget.total += size - self.outgoing
            self.outgoing = size

    def _refuse(self, kind: str, what: str, setting: str) -> RateLimited:
        count = self.refusals[kind] = self.refusals.get(kind, 0) + 1
        if count > wscommands_settings.RATE_LIMIT_CLOSE_AFTER:
            logs.client_event(
                f"{kind}_close", "refused %s %d times in a row: closing with 4429", kind, count
            )
            self.budget._cut(self)
        return _refusal(what, setting)


def _held(account: Account) -> int:
    """What an account holds (the key to find the heaviest)."""
    return account.held
