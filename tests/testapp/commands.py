"""Found only by autodiscovery, when a test adds ``tests.testapp`` to INSTALLED_APPS.

No test imports this module directly: its command existing proves autodiscovery.
"""

from wscommands import command


@command(name="testapp.ping")
async def ping(connection):
    return "pong"
