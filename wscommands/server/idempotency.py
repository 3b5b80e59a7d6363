"""Idempotent requests: a retry after a reconnect is answered from a record, not run twice.

A request carrying ``"idempotency_key"`` is claimed in the backend under (owner, key), the
owner being the user (pk), else the session (a hash of its key), else ``anon``. The first
arrival runs it and records its reply (without ``request_id``) for ``IDEMPOTENCY_TTL``
seconds; a retry (on any process, since the record is in the backend) is answered from the
record with its own ``request_id``, and one that arrives while the first still runs waits for
it. Bounds: replies over ``IDEMPOTENCY_MAX_BYTES`` are not kept (the retry gets
``command_failed`` "reply too large to replay"), at most ``IDEMPOTENCY_MAX_KEYS`` records per
owner (the oldest go first). See docs/protocol.md, "Idempotent requests".
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..backends import BackendUnavailable, idempotency_store
from ..backends.base import CLAIMED, DONE
from ..conf import wscommands_settings
from ..wire.exceptions import CommandFailed, Unavailable
from ..wire.jsoncodec import decode
from ..wire.protocol import Request, encode_reply, error_reply

if TYPE_CHECKING:
    from ..connection.connection import Connection

logger = logging.getLogger("wscommands.command")

Reply = tuple[dict[str, Any] | None, int | None]

#: Seconds a running claim holds without renewal: a process that dies mid-run frees its
#: claims after this (a waiting retry then runs the request).
LEASE = 10.0
#: Seconds between checks of a waiting retry.
POLL = 0.05


def owner_of(connection: Connection) -> str:
    """Whose records a request of ``connection`` uses: its user, else its session, else anon."""
    if connection.user_pk is not None:
        return f"u:{connection.user_pk}"
    key = getattr(connection.session, "session_key", None)
    if key:
        # The session key is a password: only its hash goes to the backend.
        return "s:" + hashlib.sha256(key.encode()).hexdigest()[:32]
    return "anon"


async def run_once(
    connection: Connection, request: Request, run: Callable[[], Awaitable[Reply]]
) -> Reply:
    """``run()`` the request, unless it carries an idempotency key already answered."""
    key = request.idempotency_key
    if key is None:
        return await run()
    owner = owner_of(connection)
    backend = idempotency_store()
    try:
        while True:
            state, recorded = await backend.idempotency_claim(owner, key, LEASE)
            if state == DONE:
                return _replay(recorded, request), None
            if state == CLAIMED:
                break
            await asyncio.sleep(POLL)  # the first run is still going: wait for its reply
    except BackendUnavailable:
        error = Unavailable("cannot check whether this request already ran: retry later")
        return error_reply(error, request.request_id if request.has_request_id else None), None
    renewer = asyncio.create_task(_renew(owner, key))
    try:
        reply, close_code = await run()
    except BaseException:
        with contextlib.suppress(Exception):
            await backend.idempotency_release(owner, key)
        raise
    finally:
        renewer.cancel()
    await _record(owner, key, reply)
    return reply, close_code


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
