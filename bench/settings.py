"""Settings of the benchmark servers: the example project's, with four changes.

- The flood limits (``WSCOMMANDS["RATE_LIMIT"]``, ``MAX_PENDING_REQUESTS``): a closed-loop
  benchmark client sends as fast as the server answers, and bursts pipeline hundreds of
  requests, which the library defaults would refuse. The rate limit stays on (its check is
  part of the per-frame cost being measured), just far above any rate.
- A secret key of the run's own (the example refuses to run in production mode without one),
  set in the environment before the example's settings read it, so the server processes
  started from here share it.
- Presence events: the example project turns them on for its demo page; the library default
  is off, and the baseline has no such feature. With them on, every handshake is also a
  broadcast to every client (see docs/benchmarks.md). Presence itself stays tracked. The
  latency scenarios (bench/latency.py) turn them back on: ``WSCOMMANDS_LIMITS``, a scenario's
  own overrides, is applied again last, so it wins over the changes here.
- The per-IP connection cap: every benchmark client connects from 127.0.0.1.

The baseline app runs with these settings too.
"""

import json
import os
import secrets

os.environ.setdefault("DJANGO_SECRET_KEY", f"bench-{secrets.token_urlsafe(50)}")

from project.settings import *  # noqa: F403
from project.settings import WSCOMMANDS
from wscommands.conf import DEFAULTS

WSCOMMANDS = dict(WSCOMMANDS)
if "RATE_LIMIT" in DEFAULTS:
    WSCOMMANDS.update(RATE_LIMIT=1e9, RATE_LIMIT_BURST=1_000_000_000)
if "MAX_PENDING_REQUESTS" in DEFAULTS:
    WSCOMMANDS["MAX_PENDING_REQUESTS"] = 1024
if "PRESENCE_EVENTS" in DEFAULTS:
    WSCOMMANDS["PRESENCE_EVENTS"] = False
# Thousands of benchmark clients come from one address.
WSCOMMANDS["MAX_CONNECTIONS_PER_IP"] = None
# A scenario's own overrides (the example applied them before the changes above): they win.
WSCOMMANDS.update(json.loads(os.environ.get("WSCOMMANDS_LIMITS") or "{}"))
