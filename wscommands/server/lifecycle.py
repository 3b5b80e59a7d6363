"""One connection's life cycle: admission, registration, hooks and teardown.

The consumer calls, in order: :meth:`ConnectionLifecycle.admit` (shutdown, caps),
:meth:`~ConnectionLifecycle.register` (hub, user index, presence; before the handshake is
accepted, so a client that sees it complete receives every broadcast sent after that moment),
:meth:`~ConnectionLifecycle.opened` (resumable delivery, on_connect hooks), and at the end
:meth:`~ConnectionLifecycle.teardown`. Each step that can refuse returns a
:class:`~.protocol.Decision` the consumer acts on.
"""

from __future__ import annotations

import logging
import time

from .._internal.threads import call
from ..commands.registry import Registry
from ..conf import wscommands_settings
from ..connection import memberships
from ..connection.connection import Connection
from ..guards.caps import Ticket, get_caps
from ..guards.sessions import get_session_watcher
from ..guards.shutdown import get_shutdown
from ..hub.process import get_hub
from ..streams.cursor import user_stream
from ..wire.codes import CloseCode
from ..wire.protocol import ADMIT, Decision, refuse

logger = logging.getLogger("wscommands.connection")

#: Most seconds a signed-in user's handshake waits for its process to receive the user's
#: stream (a Redis round trip for the user's first connection on the process).
HANDSHAKE_WAIT = 2.0


class ConnectionLifecycle:
    """Opens and closes one connection (see the module docstring for the order)."""

    def __init__(self, connection: Connection, registry: Registry):
        self.connection = connection
        self.registry = registry
        self.ticket: Ticket | None = None
        self.registered = False

    def admit(self) -> Decision:
        """Refuse during shutdown (4503) or over a connection cap (4429); else count it."""
        decision = get_shutdown().admit()
        if not decision.admit:
            return decision
        client = self.connection.scope.get("client")
        ip = client[0] if client else None
        user = self.connection.user
        user_pk = user.pk if user is not None and user.is_authenticated else None
        decision, self.ticket = get_caps().admit(ip, user_pk)
        if decision.admit:
            get_session_watcher().start()
        return decision

    async def register(self) -> None:
        """Give the connection its id and make it reachable: hub, user index, presence."""
        hub = get_hub()
        began = time.monotonic()
        memberships.attach(self.connection)
        self.connection.id = await hub.add(self.connection)
        self.registered = True
        await self.connection.sync_user()
        if self.connection.user_pk is not None:
            # Before the accept: every push to the user published once the handshake has
            # completed reaches the connection (a Redis round trip for a user's first
            # connection on this process, bounded; none for the others).
            # Within one CHANNEL_LAYER_TIMEOUT for the registration (hub start included).
            # Never past HANDSHAKE_WAIT, whatever CHANNEL_LAYER_TIMEOUT says: daphne drops a
            # handshake after 5 s, and a stalled Redis is a fault (R1 does not hold then).
            timeout = min(wscommands_settings.CHANNEL_LAYER_TIMEOUT, HANDSHAKE_WAIT)
            left = timeout - (time.monotonic() - began)
            stream = user_stream(self.connection.user_pk)
            await hub.ordered.ready(stream, max(left, 0.0))
        hub.presence.connected(self.connection)  # recorded in the background

    async def opened(self) -> Decision:
        """After the handshake: start resumable delivery (``?resume=1``), then run the
        on_connect hooks in order; one that raises closes the connection (4500)."""
        await memberships.start(self.connection)
        for hook in self.registry.connect_hooks:
            try:
                await call(hook, self.connection)
            except Exception:
                logger.exception("on_connect hook %r raised; closing with 4500", hook)
                return refuse(close=CloseCode.SERVER_ERROR)
        return ADMIT

    def release(self) -> None:
        """Give back the connection's place under the caps (safe to call more than once)."""
        if self.ticket is not None:
            get_caps().release(self.ticket)
            self.ticket = None

    async def teardown(self) -> None:
        """After the last request: cancel timers, run on_disconnect hooks, unregister."""
        self.release()
        if not self.registered:
            return
        self.registered = False
        self.connection.cancel_calls()
        for hook in self.registry.disconnect_hooks:
            try:
                await call(hook, self.connection)
            except Exception:
                logger.exception("on_disconnect hook %r raised", hook)
        hub = get_hub()
        hub.presence.disconnected(self.connection)
        await hub.remove(self.connection)
