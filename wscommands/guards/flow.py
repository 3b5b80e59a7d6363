"""Flow control with a client: inbox backpressure and the outgoing backlog.

ASGI has neither: daphne queues every frame it reads in an unbounded ``asyncio.Queue`` and
Twisted buffers every frame written without bound; uvicorn makes a send wait while its client
does not read, which would hold up every fan-out behind it. With the server's socket found
through :mod:`.compat`, this module bounds the backlog under both (a client over
``MAX_OUTGOING_BACKLOG`` is cut off instead of written to) and daphne's inbox, and is the one
place that acts on that socket (pause, resume, abort); under other servers it does nothing
(see docs/reliability.md).
"""

from __future__ import annotations

import asyncio
from typing import Any

from .._internal.compat import ServerSocket, server_socket
from ..conf import wscommands_settings
from ..observability import logs, metrics
from .budget import Account


class FlowControl:
    """One connection's inbox backpressure (``MAX_INBOX``) and backlog cap."""

    def __init__(self, send: Any, account: Account, socket: ServerSocket | None = None):
        # ``socket``: given by a server adapter that holds it (the engine); else found behind
        # the ASGI ``send``.
        if socket is None:
            socket = server_socket(send, wscommands_settings.MAX_OUTGOING_BACKLOG)
        self.socket: ServerSocket | None = socket
        self.account = account
        self.paused = False  # the inbox is full
        self.resting = False  # over the rate: waiting for retry_after
        self.not_reading = False  # the socket is not being read (either of those)
        self.cut_off = False
        if self.socket is not None:
            # The process's budget counts what the server holds for this client.
            account.outgoing_probe = self.socket.unsent_bytes

    def frame_taken(self) -> None:
        """Called per frame received: pause or resume reading the client's socket.

        A client that sends faster than we handle stops being read (TCP pushes back on it)
        while ``MAX_INBOX`` frames wait, until half of them have been handled.
        """
        socket = self.socket
        if socket is None or socket.inbox is None:
            return
        waiting, high = socket.waiting_frames(), wscommands_settings.MAX_INBOX
        if (waiting or self.account.inbox) and not self.account.set_inbox(socket.waiting_bytes()):
            return  # over the process's budget: the account has it cut off
        if not self.paused and waiting >= high:
            self.paused = True
        elif self.paused and waiting <= high // 2:
            self.paused = False
        self._set_reading()

    def rest(self, seconds: float) -> None:
        """Stop reading a client over its rate until it may send again."""
        if self.socket is None or not self.socket.can_pause_reading or self.resting:
            return
        self.resting = True
        self._set_reading()
        asyncio.get_running_loop().call_later(seconds, self._wake)

    def _wake(self) -> None:
        self.resting = False
        self._set_reading()

    def _set_reading(self) -> None:
        stop = self.paused or self.resting
        if stop != self.not_reading and not self.cut_off and self.socket is not None:
            self.not_reading = stop
            if stop:
                self.socket.pause_reading()
            else:
                self.socket.resume_reading()

    def writable(self) -> bool:
        """Whether a frame may be written now; False once the client is cut off.

        A client with over ``MAX_OUTGOING_BACKLOG`` bytes unread is aborted here; one whose
        backlog puts the process over its budget is cut off by its account (budget.py).
        """
        socket = self.socket
        if socket is None:
            return True
        # Cut off by its account (it is being closed): write nothing more, so that the close
        # finds no backlog and sends its close frame (4429) instead of aborting.
        if self.cut_off or self.account.cut_off:
            return False
        unsent = socket.unsent_bytes()
        # (The account is updated only when the figure changed: no lock per write.)
        if unsent != self.account.outgoing and not self.account.set_outgoing(unsent):
            return False  # over the process's budget: the account has it cut off
        if unsent <= wscommands_settings.MAX_OUTGOING_BACKLOG:
            return True
        metrics.frame_refused("backlog")
        logs.client_event("backlog", "client does not read (%d bytes waiting): cut off", unsent)
        self.cut_off = True
        socket.abort()
        return False

    def abort_if_backlogged(self) -> bool:
        """Abort the connection if daphne holds output for it (it could not read a close)."""
        socket = self.socket
        if socket is None or self.cut_off:
            return self.cut_off
        if socket.unsent_bytes() == 0:
            return False
        self.cut_off = True
        socket.abort()
        return True
