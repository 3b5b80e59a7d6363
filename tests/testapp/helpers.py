"""Helpers shared by the core tests: a scratch registry, users with sessions, polling."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from wscommands import registry


@contextmanager
def scratch_registry() -> Iterator[None]:
    """Commands, pushes and hooks registered inside the block are gone after it."""
    commands = dict(registry.commands)
    pushes = dict(registry.pushes)
    connect_hooks = list(registry.connect_hooks)
    disconnect_hooks = list(registry.disconnect_hooks)
    try:
        yield
    finally:
        registry.commands.clear()
        registry.commands.update(commands)
        registry.pushes.clear()
        registry.pushes.update(pushes)
        registry.version += 1  # published schemas are rebuilt
        registry.connect_hooks[:] = connect_hooks
        registry.disconnect_hooks[:] = disconnect_hooks


def _login(username: str, permissions: tuple[str, ...]) -> tuple[Any, str]:
    from django.contrib.auth.models import Permission, User
    from django.test import Client

    user = User.objects.create_user(username, password="pw")
    for perm in permissions:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    client = Client()
    client.force_login(user)
    return user, client.cookies[settings.SESSION_COOKIE_NAME].value


async def logged_in(username: str, *permissions: str) -> tuple[Any, str]:
    """A new user with ``permissions`` and the key of a session where they are logged in."""
    return await sync_to_async(_login)(username, permissions)


async def eventually(predicate: Callable[[], bool], timeout: float = 5) -> None:
    """Wait until ``predicate()`` is true (checked between loop iterations) or fail."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def without_presence_events(settings: Any) -> None:
    """Turn off the example project's presence pushes, so every frame is a reply.

    ``settings`` is pytest-django's fixture (restored after the test).
    """
    settings.WSCOMMANDS = {**settings.WSCOMMANDS, "PRESENCE_EVENTS": False}
