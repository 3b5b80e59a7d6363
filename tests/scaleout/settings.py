"""The test settings (tests/settings.py) plus the ``op.*`` commands the scale-out tests drive.

The scale-out tests open hundreds of clients from one address (127.0.0.1), which the default
per-IP cap (256, for the many browsers behind one NAT) would refuse: here it is lifted, and
the cap itself is tested in tests/reliability/test_floods.py.
"""

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS, WSCOMMANDS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.scaleout.ops"]
WSCOMMANDS = {**WSCOMMANDS, "MAX_CONNECTIONS_PER_IP": None}
