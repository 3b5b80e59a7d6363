"""Settings of the test runs: the example project's, in production mode, with two changes.

- A secret key of the run's own, put in the environment before the example's settings read
  it, so every server process the tests start (they inherit the environment) signs sessions
  with the same key as the test process.
- Generous flood limits: test clients pipeline hundreds of requests and run closed loops
  against these servers, which the library defaults (100 frames/s, 64 waiting requests, for
  browser clients) would refuse. The example project itself keeps the defaults.
"""

import json
import os
import secrets

os.environ.setdefault("DJANGO_SECRET_KEY", f"tests-{secrets.token_urlsafe(50)}")

from project.settings import *  # noqa: F403
from project.settings import WSCOMMANDS

WSCOMMANDS = {
    **WSCOMMANDS,
    "RATE_LIMIT": 5000.0,
    "RATE_LIMIT_BURST": 10000,
    "MAX_PENDING_REQUESTS": 1024,
    # WSCOMMANDS_LIMITS still has the last word, as in the example project.
    **json.loads(os.environ.get("WSCOMMANDS_LIMITS") or "{}"),
}
