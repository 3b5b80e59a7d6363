#!/usr/bin/env python
"""Django's command-line utility for the example project.

After ``python3 dev.py run`` it runs in development mode as it is (the settings find the
``.secret_key`` that run created); ``python3 dev.py manage ...`` runs it in development mode
with the project's virtualenv from a fresh clone too.
"""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        # Settings that cannot load would otherwise surface as Django's "unknown command"
        # KeyError traceback: say what is wrong, and how to fix it, in words.
        settings.INSTALLED_APPS  # noqa: B018
    except ImproperlyConfigured as error:
        sys.exit(
            f"manage.py: {error}\n"
            "In development: python3 dev.py manage <command> (development mode, as "
            "`python3 dev.py run`)."
        )
    execute_from_command_line(sys.argv)
