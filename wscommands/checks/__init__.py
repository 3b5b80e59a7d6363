"""System checks: misconfiguration found at start-up, with how to fix it (registered with
Django's check framework; apps.py also runs them when a server starts, since daphne and
uvicorn never run ``manage.py check``)."""

from .limits import check_limits
from .settings import check_extras, check_observability, check_settings

__all__ = ["check_extras", "check_limits", "check_observability", "check_settings"]
