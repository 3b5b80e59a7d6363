"""The raw picows anchor: a WebSocket server with nothing between picows and ``json``.

``python -m bench.anchors.raw_picows --port P``. Each text frame is decoded with
``json.loads``; ``{"echo": x, "request_id": n}`` is answered ``{"echo": x, "request_id": n}``
(what the echo scenario's client checks) with ``json.dumps``; ``{"broadcast": message}``
encodes ``message`` once and sends it to every other connection of the process (the broadcast
scenario's trigger). One process, no Redis: the floor of what a picows server in Python
can do, for the engine's echo and broadcast figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
from typing import Any

from picows import WSListener, WSMsgType, WSTransport, ws_create_server

try:
    import uvloop
except ImportError:  # the engine's --loop auto then runs on asyncio's loop too
    uvloop = None

#: Every open connection's transport (one event loop, one thread).
CLIENTS: set[WSTransport] = set()


class Anchor(WSListener):
    """One connection: echo replies, and broadcasts to the others."""

    def on_ws_connected(self, transport: WSTransport) -> None:
        CLIENTS.add(transport)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        CLIENTS.discard(transport)

    def on_ws_frame(self, transport: WSTransport, frame: Any) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        if frame.msg_type != WSMsgType.TEXT:
            return
        message = json.loads(frame.get_payload_as_utf8_text())
        if "broadcast" in message:
            data = json.dumps(message["broadcast"]).encode()
            for client in CLIENTS:
                if client is not transport:
                    client.send(WSMsgType.TEXT, data)
            return
        reply = {"echo": message.get("echo"), "request_id": message.get("request_id")}
        transport.send(WSMsgType.TEXT, json.dumps(reply).encode())


async def serve(host: str, port: int) -> None:
    # The same picows defaults as the engine's where they cost per frame: no auto-ping
    # traffic during a run (the engine pings only after 20 s of silence).
    server = await ws_create_server(lambda request: Anchor(), host, port)
    print(f"raw picows anchor on {host}:{port}", flush=True)
    await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # The loop the engine's --loop auto picks, so that both are measured on the same one.
    factory = uvloop.new_event_loop if uvloop is not None else None
    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
