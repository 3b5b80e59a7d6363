"""Helpers for an application's own tests: talk to commands in one line.

Needs daphne, as ``channels.testing`` does: ``pip install "wscommands[daphne]"``.

from wscommands.testing import CommandClient

async def test_echo():
    async with CommandClient() as client:
        assert await client.call("echo", text="hi") == {"text": "hi"}
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from django.conf import settings

try:
    from channels.testing import WebsocketCommunicator
except ImportError as exc:  # channels.testing imports daphne, an optional dependency
    if (exc.name or "").partition(".")[0] not in ("daphne", "twisted", "autobahn"):
        raise
    raise ImportError(
        "wscommands.testing needs daphne (channels.testing imports it): "
        'pip install "wscommands[daphne]"',
        name=exc.name,
    ) from exc

from .wire.exceptions import CommandError
from .wire.jsoncodec import decode, encode


class ErrorReply(Exception):
    """The reply carried an ``errors`` entry for the command called; ``code``, ``message``,
    ``details`` are the entry's.

    Any error code (``invalid_arguments``, ``client_error``, ...), not only
    ``command_failed``: hence not named after :class:`wscommands.CommandFailed`.
    """

    def __init__(self, command: str, entry: dict[str, Any]):
        self.command = command
        self.code: str = entry.get("code", "")
        self.message: str = entry.get("message", "")
        self.details: dict[str, Any] | None = entry.get("details")
        super().__init__(f"{command}: {self.code}: {self.message}")


#: The name this exception had first (kept: applications' tests import it).
CommandFailedError = ErrorReply


class CommandClient:
    """A WebSocket test client that speaks the wscommands protocol.

    ``application`` defaults to the project's ASGI application; ``session_key`` sends the
    session cookie in the handshake, as a logged-in browser would.
    """

    def __init__(
        self,
        application: Any = None,
        path: str = "/ws/",
        *,
        session_key: str | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
        timeout: float = 5,
    ):
        if application is None:
            from django.utils.module_loading import import_string

            application = import_string(settings.ASGI_APPLICATION)
        headers = list(headers or [])
        # A page of the site itself (same-origin), on the host Django's test set-up allows.
        if not any(name == b"host" for name, _ in headers):
            headers.append((b"host", b"testserver"))
        if not any(name == b"origin" for name, _ in headers):
            headers.append((b"origin", b"http://testserver"))
        if session_key:
            cookie = f"{settings.SESSION_COOKIE_NAME}={session_key}".encode()
            headers.append((b"cookie", cookie))
        self.communicator = WebsocketCommunicator(application, path, headers=headers)
        self.timeout = timeout
        self.pushes: list[dict[str, Any]] = []
        self._replies: dict[Any, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self.close_code: int | None = None

    async def connect(self) -> None:
        """Open the connection; raises ConnectionRefusedError if the server refuses it."""
        connected, code = await self.communicator.connect(self.timeout)
        if not connected:
            raise ConnectionRefusedError(f"handshake refused (close code {code})")

    async def close(self) -> None:
        """Close the connection and wait for the server to finish with it."""
        await self.communicator.disconnect(timeout=self.timeout)

    async def __aenter__(self) -> CommandClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def send(self, request: dict[str, Any] | str) -> None:
        """Send a request object (or raw text) without waiting."""
        text = request if isinstance(request, str) else encode(request)
        await self.communicator.send_to(text_data=text)

    async def receive(self, timeout: float | None = None) -> dict[str, Any]:
        """The next frame from the server, decoded; raises on close or timeout."""
        output = await self.communicator.receive_output(timeout or self.timeout)
        if output["type"] == "websocket.close":
            self.close_code = output.get("code", 1000)
            raise ConnectionError(f"closed by the server with code {self.close_code}")
        return decode(output["text"])

    async def receive_push(self, timeout: float | None = None) -> dict[str, Any]:
        """The next message without a request_id (a push), skipping stray replies."""
        if self.pushes:
            return self.pushes.pop(0)
        while True:
            message = await self.receive(timeout)
            if "request_id" in message:
                self._replies[message["request_id"]] = message
            else:
                return message

    async def request(
        self, commands: dict[str, Any], timeout: float | None = None
    ) -> dict[str, Any]:
        """Send several commands as one request and return the whole reply object."""
        request_id = next(self._ids)
        await self.send({**commands, "request_id": request_id})
        async with asyncio.timeout(timeout or self.timeout):
            while request_id not in self._replies:
                message = await self.receive(timeout)
                if "request_id" in message:
                    self._replies[message["request_id"]] = message
                else:
                    self.pushes.append(message)
        return self._replies.pop(request_id)

    async def call(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        """Call one command; returns its result or raises :class:`ErrorReply`.

        Keyword arguments become the argument object; one positional argument is sent as is.
        """
        if (args and kwargs) or len(args) > 1:
            raise TypeError("call() takes keyword arguments or one positional argument")
        argument = args[0] if args else kwargs
        reply = await self.request({name: argument})
        errors = reply.get("errors", {})
        if name in errors:
            raise ErrorReply(name, errors[name])
        return reply.get(name)

    async def wait_closed(self, timeout: float | None = None) -> int:
        """Wait for the server to close the connection; returns the close code."""
        while True:
            try:
                message = await self.receive(timeout)
            except ConnectionError:
                return self.close_code  # type: ignore[return-value]
            if "request_id" in message:
                self._replies[message["request_id"]] = message
            else:
                self.pushes.append(message)


__all__ = ["CommandClient", "CommandError", "CommandFailedError", "ErrorReply"]
