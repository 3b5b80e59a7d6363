"""The test settings (tests/settings.py) plus the ``probe.*`` commands of the reliability suite."""

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.reliability.probe"]
