"""Run inside the venv the wheel was installed into: what a user's process would see.

Imports every module of the installed package (walking it), renders the operations page's
template, asks ``/metrics`` and reports what it found as one JSON object on stdout.
"""

import importlib
import importlib.util
import json
import os
import pkgutil

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "minisite.settings")

import django

django.setup()

from django.contrib.staticfiles import finders  # noqa: E402
from django.template.loader import get_template  # noqa: E402
from django.test import Client  # noqa: E402

import wscommands  # noqa: E402

OPTIONAL = ("daphne", "redis", "channels_redis", "prometheus_client", "opentelemetry", "pydantic")

failed: dict[str, str] = {}
imported: list[str] = []


def _failed(name: str) -> None:
    failed[name] = "a package failed to import while walking"


for info in pkgutil.walk_packages(wscommands.__path__, "wscommands.", onerror=_failed):
    try:
        importlib.import_module(info.name)
    except Exception as exc:
        failed[info.name] = f"{type(exc).__name__}: {exc}"
    else:
        imported.append(info.name)

metrics = Client().get("/metrics")
print(
    json.dumps(
        {
            "location": wscommands.__file__,
            "imported": imported,
            "failed": failed,
            "installed": {name: importlib.util.find_spec(name) is not None for name in OPTIONAL},
            "template": get_template("wscommands/ops.html").origin.name,
            "static": finders.find("wscommands/wscommands.js"),
            "metrics": [metrics.status_code, metrics.content.decode()],
        }
    )
)
