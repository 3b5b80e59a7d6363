"""The example project's SECRET_KEY: never a published one in production.

Production (DEBUG off) takes ``DJANGO_SECRET_KEY`` from the environment and refuses to start
without it or with a key anyone can read (this repository's old defaults, Django's
``django-insecure-`` keys): sessions, password-reset links and CSRF tokens are signed with it.
The development run (``DJANGO_DEBUG=1``, what ``python3 dev.py run`` sets) generates a key of
its own once and keeps it in a file, so sessions survive restarts and every local process
shares it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

#: Keys that were published (defaults in this repository's history): refused everywhere.
KNOWN_KEYS = frozenset(
    {"insecure-example-key-change-me-in-production", "change-me-in-production", "build"}
)
HOW = (
    "Set DJANGO_SECRET_KEY to a long random value, e.g. the output of "
    "`python3 -c 'import secrets; print(secrets.token_urlsafe(50))'`, or run in development "
    "mode with DJANGO_DEBUG=1 (a local key is then generated)."
)


def secret_key(debug: bool, key_file: Path) -> str:
    """``DJANGO_SECRET_KEY``; in development without one, the key kept in ``key_file``."""
    key = os.environ.get("DJANGO_SECRET_KEY", "")
    if key in KNOWN_KEYS or key.startswith("django-insecure-"):
        raise ImproperlyConfigured(f"DJANGO_SECRET_KEY is a published key. {HOW}")
    if key:
        return key
    if not debug:
        raise ImproperlyConfigured(f"DJANGO_SECRET_KEY is not set (DEBUG is off). {HOW}")
    return _local_key(key_file)


def _local_key(path: Path) -> str:
    """The key in ``path``, created (mode 600) by whichever process gets there first."""
    if not path.exists():
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(50))
        try:
            os.link(temporary, path)  # atomic, and fails if another process was first
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    return path.read_text().strip()
