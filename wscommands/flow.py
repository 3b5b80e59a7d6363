"""Flow control with a client under daphne: inbox backpressure and the outgoing backlog.

ASGI has neither: daphne queues every frame it reads in an unbounded ``asyncio.Queue`` and
Twisted buffers every frame written without bound. Under daphne (found through
:mod:`.compat`) this module keeps both bounded; under other servers it does nothing (see
docs/reliability.md).
"""

from __future__ import annotations

from typing import Any

from .compat import DaphneSocket, daphne_socket
from .conf import wscommands_settings


class FlowControl:
    """One connection's inbox backpressure (``MAX_INBOX``) and backlog cap."""

    def __init__(self, send: Any):
        self.socket: DaphneSocket | None = daphne_socket(send)
        self.paused = False
        self.cut_off = False

    def frame_taken(self) -> None:
        """Called per frame received: pause or resume reading the client's socket.

        A client that sends faster than we handle stops being read (TCP pushes back on it)
        while ``MAX_INBOX`` frames wait, until half of them have been handled.
        """
        socket = self.socket
        if socket is None or socket.inbox is None:
            return
        waiting, high = socket.waiting_frames(), wscommands_settings.MAX_INBOX
        if not self.paused and waiting >= high:
            self.paused = True
            socket.pause_reading()
        elif self.paused and waiting <= high // 2:
            self.paused = False
            socket.resume_reading()

    def over_backlog(self) -> int | None:
        """The bytes waiting if the client does not read and must be cut off, else None.

        Once over ``MAX_OUTGOING_BACKLOG`` the decision sticks: the caller aborts the
        socket (:meth:`abort`) and writes nothing more.
        """
        socket = self.socket
        if socket is None or self.cut_off:
            return None
        waiting = socket.unsent_bytes()
        if waiting <= wscommands_settings.MAX_OUTGOING_BACKLOG:
            return None
        self.cut_off = True
        return waiting

    def abort(self) -> None:
        """Drop the client's TCP connection at once."""
        if self.socket is not None:
            self.socket.abort()
