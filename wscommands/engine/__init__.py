"""The engine: an optional WebSocket server on picows (the ``engine`` extra) that serves the
same endpoint as the Channels consumer without the ASGI round trip per frame.

``handshake``: the HTTP upgrade request read before picows sees it, turned into an ASGI-like
scope (client address behind trusted proxies, Origin, session and user); ``socket``: one
connection, an :class:`~wscommands.server.endpoint.Endpoint` written through picows;
``server``: the listening socket, the handshake gate and graceful shutdown. Started by
``manage.py wscommands_engine`` (docs/scaling.md, "The engine").

May import: every package (it sits at the top with ``server``); only the top-level glue
imports it.
"""

#: What to install when picows (or h11) is missing.
ENGINE_MISSING = 'the engine needs picows and h11: pip install "wscommands[engine]"'
