"""The engine for the Autobahn conformance run: every message sent back unchanged.

``python -m tests.reliability.autobahn_engine PORT``: the engine (handshake gate, picows,
fragment assembly, UTF-8 and close handling) with a socket that echoes each whole message
instead of running it as a request, as autobahn_asgi.py does for daphne.
"""

from __future__ import annotations

import asyncio
import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.reliability.settings")
django.setup()

from picows import WSMsgType  # noqa: E402

from wscommands.engine.server import Engine, Options  # noqa: E402
from wscommands.engine.socket import EngineSocket  # noqa: E402


class EchoSocket(EngineSocket):
    """Sends every whole message back: text as text, binary as binary."""

    def handle(self, text: str | None, data: bytes | None) -> None:
        if text is not None:
            self.push_text(text)
        elif not self.closing:
            self.ws.send(WSMsgType.BINARY, data)


if __name__ == "__main__":
    # kosoku opens "/" (autobahn_asgi.py routes every path to its echo).
    options = Options(port=int(sys.argv[1]), path="/", socket_class=EchoSocket)
    asyncio.run(Engine(options).serve())
