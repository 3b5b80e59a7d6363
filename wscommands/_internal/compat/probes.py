"""Start-up probes: is each fenced internal still there and still doing what we rely on?

Each probe exercises the installed package's own code on a stand-in object (an instance made
without ``__init__`` whose unknown attributes absorb any use) and checks the effect with the
same helper the feature uses at run time. No source text is read: a reformatted package
passes, a changed behaviour fails. A probe that raises counts as missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import sys
import types
from collections.abc import Callable
from typing import Any

from .glue import shard_receiver
from .servers import (
    CLOSED_ERRORS,
    DaphneSocket,
    daphne_protocol,
    keep_close_frames,
    unwrap_send,
)
from .uses import warn_once


class _Anything:
    """Whatever a probed method reaches on a stand-in: callable, with any attribute."""

    def __init__(self, truthy: bool = False):
        self.truthy = truthy

    def __getattr__(self, name: str) -> _Anything:
        return _Anything(self.truthy)

    def __call__(self, *args: Any, **kwargs: Any) -> _Anything:
        return _Anything(self.truthy)

    def __bool__(self) -> bool:
        return self.truthy


def _stand_in(cls: type, truthy: bool = False, **attributes: Any) -> Any:
    """An instance of ``cls`` built without ``__init__``, with ``attributes``; any other
    attribute it lacks is an :class:`_Anything`."""
    probe = type(f"Probe{cls.__name__}", (cls,), {"__getattr__": lambda s, n: _Anything(truthy)})
    obj: Any = object.__new__(probe)
    vars(obj).update(attributes)
    return obj


def _attr(module: str, path: str) -> Any:
    obj: Any = importlib.import_module(module)
    for name in path.split("."):
        obj = getattr(obj, name)
    return obj


def _daphne_reply_path() -> bool:
    """Server.create_application hands the application a ``send`` that
    :func:`.servers.daphne_protocol` traces back to the protocol."""
    server_cls = _attr("daphne.server", "Server")
    protocol, sent = object(), []

    def application(scope: Any, receive: Any, send: Any) -> None:
        sent.append(send)
        server.connections.pop(protocol)  # create_application then stops before scheduling

    server = _stand_in(server_cls, connections={protocol: {}}, application=application)
    server.create_application(protocol, {"type": "websocket"})
    return daphne_protocol(sent[0]) is protocol


def _daphne_application_queue() -> bool:
    """A daphne WebSocket protocol keeps the queue it feeds the application."""
    protocol = _stand_in(_attr("daphne.ws_protocol", "WebSocketProtocol"))
    queue: asyncio.Queue = asyncio.Queue()
    protocol.applicationCreateWorked(queue)
    return vars(protocol).get("application_queue") is queue and queue.qsize() == 1


def _asyncio_queue_items() -> bool:
    """An asyncio.Queue's items can be weighed (DaphneSocket.waiting_bytes)."""
    queue: asyncio.Queue = asyncio.Queue()
    queue.put_nowait({"type": "websocket.receive", "text": "abc"})
    return DaphneSocket(None, queue).waiting_bytes() == 3


def _twisted_write_buffer() -> bool:
    """Bytes written to a Twisted transport are counted by DaphneSocket.unsent_bytes."""
    descriptor_cls = _attr("twisted.internet.abstract", "FileDescriptor")
    # A reactor of our own: the default would install Twisted's global reactor.
    descriptor = descriptor_cls(reactor=types.SimpleNamespace(addWriter=lambda fd: None))
    descriptor.connected = True
    descriptor.write(b"abcd")
    return DaphneSocket(descriptor, None).unsent_bytes() == 4


def _autobahn_fail_by_drop() -> bool:
    """With failByDrop off, autobahn fails a connection with a close frame, not a drop."""
    protocol_cls = _attr("autobahn.websocket.protocol", "WebSocketProtocol")
    calls: list[str] = []
    protocol = _stand_in(
        protocol_cls,
        truthy=True,  # a renamed flag reads as "drop": the probe fails
        state=protocol_cls.STATE_OPEN,
        failByDrop=True,
        sendCloseFrame=lambda code, reasonUtf8=None, isReply=False: calls.append(f"close {code}"),
        dropConnection=lambda abort=False: calls.append("drop"),
    )
    keep_close_frames(protocol)
    fail: Any = getattr(protocol, "_fail_connection", None)  # private: None fails the probe
    fail(1009, "too big")
    return calls == ["close 1009"]


def _channels_session_send() -> bool:
    """Channels' session middleware keeps the server's send where unwrap_send finds it."""
    wrapper_cls = _attr("channels.sessions", "InstanceSessionWrapper")

    async def send(message: Any) -> None:
        pass

    wrapper = wrapper_cls({"type": "websocket", "cookies": {}}, send)
    return unwrap_send(wrapper.send) is send


def _uvicorn_protocol_transport() -> bool:
    """Every uvicorn WebSocket implementation loaded (the one ``--ws`` selected: uvicorn
    imports it before the application) keeps its asyncio transport as ``transport``. Not
    loaded yet (not under uvicorn, or the application was imported first): nothing to check
    here; ``server_socket`` warns at the first connection instead."""
    config = sys.modules.get("uvicorn.config")  # not loaded: uvicorn is not the server
    for path in filter(None, getattr(config, "WS_PROTOCOLS", {}).values()):
        module, _, name = path.partition(":")
        cls = getattr(sys.modules.get(module), name, None)  # importing one may warn: never
        if not isinstance(cls, type):
            continue
        transport = types.SimpleNamespace(get_extra_info=lambda name, default=None: default)
        protocol = _stand_in(cls)
        # What follows the assignment (logging, websockets' own set-up) needs a real protocol.
        with contextlib.suppress(Exception):
            protocol.connection_made(transport)
        if vars(protocol).get("transport") is not transport:
            return False
    return True


def _channels_redis_pubsub_connection() -> bool:
    """A channels_redis Pub/Sub layer keeps per loop its shards, each subscribing through a
    redis-py PubSub made on first use, whose connection's reader :func:`.glue.shard_receiver`
    reads (None until connected). Nothing connects: the shard only builds its client."""
    layer_cls = _attr("channels_redis.pubsub", "RedisPubSubChannelLayer")
    loop_layer = _attr("channels_redis.pubsub", "RedisPubSubLoopLayer")(
        hosts=[{"address": "redis://127.0.0.1:1/0"}]
    )
    shard = getattr(loop_layer, "_shards", [None])[0]
    before = shard_receiver(shard)
    ensure: Any = getattr(shard, "_ensure_redis", None)  # private: None fails the probe
    ensure()
    pubsub: Any = getattr(shard, "_pubsub", None)
    connection = pubsub.connection_pool.make_connection()  # what PubSub.connect takes
    return (
        callable(getattr(layer_cls, "_get_layer", None))
        and before is None
        and pubsub.connection is None
        and getattr(connection, "_reader", False) is None
        and shard_receiver(shard) is None
    )


def _class_exists(module: str, name: str) -> Callable[[], bool]:
    return lambda: isinstance(_attr(module, name), type)


PROBES: dict[str, Callable[[], bool]] = {
    "daphne.handle_reply": _daphne_reply_path,
    "uvicorn.protocol_transport": _uvicorn_protocol_transport,
    "daphne.application_queue": _daphne_application_queue,
    "asyncio.queue_items": _asyncio_queue_items,
    "autobahn.fail_by_drop": _autobahn_fail_by_drop,
    "twisted.write_buffer": _twisted_write_buffer,
    "channels.session_send": _channels_session_send,
    "asyncio.sighandler_noop": lambda: callable(_attr("asyncio.unix_events", "_sighandler_noop")),
    "channels_redis.create_pool": lambda: callable(_attr("channels_redis.utils", "create_pool")),
    "channels_redis.pubsub_connection": _channels_redis_pubsub_connection,
    **{name: _class_exists(module, cls) for name, (module, cls) in CLOSED_ERRORS.items()},
}


def _passes(probe: Callable[[], bool]) -> bool:
    try:
        return probe()
    except Exception:
        return False


def missing_internals() -> list[str]:
    """The internals of :data:`.uses.USES` the installed packages no longer have (or that no
    longer behave as relied on)."""
    return [name for name, probe in PROBES.items() if not _passes(probe)]


def warn_missing_once() -> None:
    """Log one warning per missing internal of an installed package (start-up calls this)."""
    for name in missing_internals():
        package = name.partition(".")[0]
        if importlib.util.find_spec(package) is not None:  # not installed: nothing to warn
            warn_once(name, f"{name} is not available in the installed {package}")
