"""The example project plus the ``probe.*`` commands the reliability suite drives."""

from project.settings import *  # noqa: F403
from project.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.reliability.probe"]
