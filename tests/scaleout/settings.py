"""The test settings (tests/settings.py) plus the ``op.*`` commands the scale-out tests drive."""

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.scaleout.ops"]
