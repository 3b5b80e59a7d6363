"""Idempotent requests: a retry after a reconnect is answered from a record, not run twice.

A request carrying ``"idempotency_key"`` is claimed in the backend under (owner, key), the
owner being the user (pk), else the session (a hash of its key), else the client (a hash of
the ``client`` token of the handshake's query, which the client keeps across its
reconnects), else the connection alone. The first arrival runs it and records its reply
(without ``request_id``) for ``IDEMPOTENCY_TTL`` seconds; a retry (on any process, since the
record is in the backend) is answered from the record with its own ``request_id``, and one
that arrives while the first still runs waits to be woken when it ends (at most
``IDEMPOTENCY_MAX_WAITERS`` per key and process, for ``IDEMPOTENCY_WAIT`` seconds). A frame
that changes who the user is (``authenticate``) is never recorded. Bounds: replies over
``IDEMPOTENCY_MAX_BYTES`` are not kept (the retry gets ``command_failed`` "reply too large to
replay"), at most ``IDEMPOTENCY_MAX_KEYS`` finished records per owner (the oldest go first;
a running claim is never dropped). See docs/protocol.md, "Idempotent requests".
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from ..backends import BackendUnavailable, idempotency_store
from ..backends.base import CLAIMED, DONE
from ..conf import wscommands_settings
from ..guards.authentication import AUTHENTICATE
from ..wire.exceptions import CommandFailed, RateLimited, Unavailable
from ..wire.jsoncodec import decode
from ..wire.protocol import Request, encode_reply, error_reply

if TYPE_CHECKING:
    from ..connection.connection import Connection

logger = logging.getLogger("wscommands.command")

Reply = tuple[dict[str, Any] | None, int | None]

#: Seconds a running claim holds without renewal: a process that dies mid-run frees its
#: claims after this (a waiting retry then runs the request).
LEASE = 10.0
#: Seconds a waiting retry waits to be woken before it looks at the claim anyway (a wake-up
#: lost with a Redis connection, or a claim that lapsed because its process died).
RECHECK = LEASE / 2
#: The ``client`` query parameter: the same alphabet and lengths as idempotency keys.
CLIENT_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")
#: Commands that change who the connection's user is: a frame naming one is not recorded
#: (its reply would answer a retry made as someone else).
USER_CHANGING = frozenset({AUTHENTICATE})

# Retries waiting per (owner, key) on this process.
_waiting: Counter[tuple[str, str]] = Counter()


def client_token(scope: dict[str, Any]) -> str | None:
    """The handshake's ``client`` query parameter if well formed (docs/protocol.md)."""
    query = scope.get("query_string", b"")
    if isinstance(query, bytes):
        query = query.decode("latin-1")
    token = parse_qs(query).get("client", [""])[-1]
    return token if CLIENT_TOKEN.fullmatch(token) else None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:32]


def owner_of(connection: Connection) -> str:
    """Whose records a request of ``connection`` uses: its user, else its session, else its
    client token, else the connection alone (never every anonymous connection together)."""
    if connection.user_pk is not None:
        return f"u:{connection.user_pk}"
    key = getattr(connection.session, "session_key", None)
    if key:
        # The session key is a password: only its hash goes to the backend.
        return "s:" + _digest(key)
    token = client_token(connection.scope)
    if token is not None:
        return "c:" + _digest(token)
    return "x:" + connection.id


async def run_once(
    connection: Connection, request: Request, run: Callable[[], Awaitable[Reply]]
) -> Reply:
    """``run()`` the request, unless it carries an idempotency key already answered."""
    key = request.idempotency_key
    if key is None or any(name in USER_CHANGING for name, _ in request.commands):
        return await run()
    owner = owner_of(connection)
    backend = idempotency_store()
    request_id = request.request_id if request.has_request_id else None
    try:
        state, recorded = await backend.idempotency_claim(owner, key, LEASE)
        if state not in (CLAIMED, DONE):
            state, recorded = await _wait(owner, key)
    except BackendUnavailable:
        error = Unavailable("cannot check whether this request already ran: retry later")
        return error_reply(error, request_id), None
    except (RateLimited, Unavailable) as error:
        return error_reply(error, request_id), None
    if state == DONE:
        return _replay(recorded, request), None
    renewer = asyncio.create_task(_renew(owner, key))
    try:
        reply, close_code = await run()
    except BaseException:
        with contextlib.suppress(Exception):
            await backend.idempotency_release(owner, key)
        raise
    finally:
        renewer.cancel()
    if owner_of(connection) != owner:
        # The user changed while it ran: its reply is not the new owner's to replay.
        with contextlib.suppress(BackendUnavailable):
            await backend.idempotency_release(owner, key)
    else:
        await _record(owner, key, reply)
    return reply, close_code


async def _wait(owner: str, key: str) -> tuple[str, str | None]:
    """Wait for another run's claim to end: ``(DONE, reply)`` or ``(CLAIMED, None)``.

    Raises :class:`RateLimited` when too many retries of this key wait here already, and
    :class:`Unavailable` after ``IDEMPOTENCY_WAIT`` seconds.
    """
    s = wscommands_settings
    if _waiting[owner, key] >= s.IDEMPOTENCY_MAX_WAITERS:
        raise RateLimited(
            "too many retries of this request are waiting for its first run",
            {"limit": "IDEMPOTENCY_MAX_WAITERS", "max": s.IDEMPOTENCY_MAX_WAITERS},
        )
    _waiting[owner, key] += 1
    backend = idempotency_store()
    try:
        async with asyncio.timeout(s.IDEMPOTENCY_WAIT):
            # Registered (and subscribed) before looking again: an end after that look wakes it.
            async with backend.idempotency_waiter(owner, key) as ended:
                while True:
                    ended.clear()
                    state, recorded = await backend.idempotency_claim(owner, key, LEASE)
                    if state in (CLAIMED, DONE):
                        return state, recorded
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(RECHECK):
                            await ended.wait()
    except TimeoutError:
        raise Unavailable("this request is still running: retry later") from None
    finally:
        _waiting[owner, key] -= 1
        if not _waiting[owner, key]:
            del _waiting[owner, key]


async def _renew(owner: str, key: str) -> None:
    while True:
        await asyncio.sleep(LEASE / 3)
        try:
            await idempotency_store().idempotency_renew(owner, key, LEASE)
        except BackendUnavailable:
            logger.warning("could not renew an idempotency claim")


async def _record(owner: str, key: str, reply: dict[str, Any] | None) -> None:
    s = wscommands_settings
    kept = {k: v for k, v in (reply or {}).items() if k != "request_id"}
    encoded = encode_reply(kept)
    text = None if len(encoded.encode()) > s.IDEMPOTENCY_MAX_BYTES else encoded
    try:
        await idempotency_store().idempotency_finish(
            owner, key, text, s.IDEMPOTENCY_TTL, s.IDEMPOTENCY_MAX_KEYS
        )
    except BackendUnavailable:
        # The reply still goes out; only a retry would run the request again.
        logger.warning("could not record an idempotent request's reply")


def _replay(recorded: str | None, request: Request) -> dict[str, Any] | None:
    request_id = request.request_id if request.has_request_id else None
    if recorded is None:
        return error_reply(CommandFailed("reply too large to replay"), request_id)
    reply = decode(recorded)
    if request.has_request_id:
        reply["request_id"] = request.request_id
    return reply or None
