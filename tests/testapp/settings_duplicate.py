"""The example project with a settings command named like an example command (start-up must
fail naming both)."""

from project.settings import *  # noqa: F403
from project.settings import WSCOMMANDS

WSCOMMANDS = {**WSCOMMANDS, "COMMANDS": {"echo": "tests.testapp.legacy.other"}}
