"""The example project plus the ``op.*`` commands the scale-out tests drive."""

from project.settings import *  # noqa: F403
from project.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.scaleout.ops"]
