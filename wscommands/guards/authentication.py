"""The built-in ``authenticate`` command: switch a connection to a Django session by its key."""

from __future__ import annotations

from importlib import import_module
from types import SimpleNamespace
from typing import Any, Protocol

from django.conf import settings
from django.contrib.auth import get_user

from .._internal.threads import run_sync


class SessionHolder(Protocol):
    """A connection as ``authenticate`` sees it: it can switch to another session and user."""

    async def switch_session(self, session: Any, user: Any) -> None:
        """Act as ``user`` of ``session`` from now on."""
        ...


AUTHENTICATE = "authenticate"


def load_session(session_key: str) -> tuple[Any, Any]:
    """The session store and user of a session key; ``(None, None)`` if unknown or expired."""
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    store.load()
    if store.session_key is None:  # unknown or expired: the store forgets the key
        return None, None
    # get_user checks the session's auth hash, so a changed password logs it out too.
    return store, get_user(SimpleNamespace(session=store))


async def authenticate(connection: SessionHolder, argument: Any) -> tuple[dict[str, Any], bool]:
    """Run ``authenticate``; returns ``(result, succeeded)``.

    On failure the caller sends the result and closes the connection with 3000.
    """
    session_key = argument.get("session_id") if isinstance(argument, dict) else argument
    if session_key == "":  # what GET /session_id answers a visitor who is not logged in
        return _failure("the session has no logged-in user"), False
    if not isinstance(session_key, str):
        return _failure("session_id (a Django session key) is required"), False
    session, user = await run_sync(load_session, session_key)
    if session is None:
        return _failure("unknown or expired session"), False
    if user is None or not user.is_authenticated:
        return _failure("the session has no logged-in user"), False
    await connection.switch_session(session, user)
    return {
        AUTHENTICATE: "success",
        "user": {"id": user.pk, "username": user.get_username()},
    }, True


def _failure(message: str) -> dict[str, Any]:
    return {AUTHENTICATE: "failure", "message": message}
