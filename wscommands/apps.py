"""App configuration: settings validated, commands loaded and discovered at start-up."""

from __future__ import annotations

from django.apps import AppConfig


class WSCommandsConfig(AppConfig):
    """Loads ``WSCOMMANDS["COMMANDS"]`` and imports every app's ``commands`` module."""

    name = "wscommands"
    verbose_name = "wscommands"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
        from .conf import wscommands_settings as s
        from .registry import autodiscover, load_settings_commands

        load_settings_commands(s.COMMANDS)
        if s.AUTODISCOVER:
            autodiscover(s.COMMANDS_MODULE)
