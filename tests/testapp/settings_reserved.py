"""The example project with a reserved name in WSCOMMANDS["COMMANDS"] (start-up must fail)."""

from project.settings import *  # noqa: F403
from project.settings import WSCOMMANDS

WSCOMMANDS = {**WSCOMMANDS, "COMMANDS": {"unimplemented": "tests.testapp.legacy.other"}}
