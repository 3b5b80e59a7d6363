"""The WebSocket endpoint: the Channels consumer, connect and disconnect, the request
queue, running requests (idempotency, the built-in describe and resume requests).

May import: every package; only the top-level glue imports it.
"""
