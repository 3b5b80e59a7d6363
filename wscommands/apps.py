"""App configuration: settings validated, commands loaded and discovered at start-up."""

from __future__ import annotations

from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured


class WSCommandsConfig(AppConfig):
    """Checks the settings, loads ``WSCOMMANDS["COMMANDS"]`` and every app's ``commands``."""

    name = "wscommands"
    verbose_name = "wscommands"

    def ready(self) -> None:
        from . import checks
        from ._internal import compat
        from .commands.registry import autodiscover, describe, load_settings_commands, registry
        from .conf import wscommands_settings as s
        from .guards import sessions
        from .observability import prometheus

        # daphne and uvicorn never run Django's system checks: run ours here, so a
        # misconfigured server refuses to start instead of failing its first client.
        errors = [
            *checks.check_settings(),
            *checks.check_limits(),
            # Missing prometheus-client only turns metrics off (warned by `manage.py check`).
            *(e for e in checks.check_observability() if e.is_serious()),
        ]
        if errors:
            raise ImproperlyConfigured(
                "wscommands is misconfigured:\n"
                + "\n".join(f"- {e.msg}" + (f" Hint: {e.hint}" if e.hint else "") for e in errors)
            )
        # Private internals of daphne, Twisted, Channels... that moved: say what switches off.
        compat.warn_missing_once()
        prometheus.register()
        sessions.connect_signals()
        load_settings_commands(s.COMMANDS)
        if s.AUTODISCOVER:
            autodiscover(s.COMMANDS_MODULE)
        clash = registry.get("describe")
        if s.DESCRIBE != "off" and clash is not None:
            raise ImproperlyConfigured(
                f"A command named 'describe' is registered "
                f'({describe(clash.func)}), and WSCOMMANDS["DESCRIBE"] = '
                f"{s.DESCRIBE!r} turns on the built-in describe, which would hide it. Rename "
                'the command, or set WSCOMMANDS["DESCRIBE"] = "off".'
            )
