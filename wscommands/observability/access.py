"""Who may see what the server observes: the one staff rule of ``/metrics`` and the
operations page, whichever server answers them (Django's views, the engine)."""

from __future__ import annotations

from typing import Any


def is_staff(user: Any) -> bool:
    """Whether ``user`` (a Django user, lazy or not, or None) is an active staff member."""
    return bool(user is not None and user.is_active and user.is_staff)
