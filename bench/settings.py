"""Settings of the benchmark servers: the example project's, with three choices undone.

- The per-connection rate limit (``WSCOMMANDS["RATE_LIMIT"]``): a closed-loop benchmark
  client sends as fast as the server answers, which the limit would refuse. It stays on (its
  check is part of the per-frame cost being measured), just far above any rate.
- Presence events: the example project turns them on for its demo page; the library default
  is off, and the baseline has no such feature. With them on, every handshake is also a
  broadcast to every client (see docs/benchmarks.md). Presence itself stays tracked.
- The per-IP connection cap: every benchmark client connects from 127.0.0.1.

The baseline app runs with these settings too.
"""

from project.settings import *  # noqa: F403
from project.settings import WSCOMMANDS
from wscommands.conf import DEFAULTS

WSCOMMANDS = dict(WSCOMMANDS)
if "RATE_LIMIT" in DEFAULTS:
    WSCOMMANDS.update(RATE_LIMIT=1e9, RATE_LIMIT_BURST=1_000_000_000)
if "PRESENCE_EVENTS" in DEFAULTS:
    WSCOMMANDS["PRESENCE_EVENTS"] = False
# Thousands of benchmark clients come from one address.
WSCOMMANDS["MAX_CONNECTIONS_PER_IP"] = None
