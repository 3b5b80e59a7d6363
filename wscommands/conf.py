"""The ``WSCOMMANDS`` settings dict: defaults, lazy reading, validation.

Every setting wscommands reads lives here, so the defaults are documented in one place
(see docs/settings.md) and tests can change them with ``override_settings``.
"""

from __future__ import annotations

import difflib
import threading
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

DEFAULTS: dict[str, Any] = {
    # name -> dotted path of a seed-style function ``f(msg, response, connection)``.
    "COMMANDS": {},
    # Import ``<app>.commands`` from every installed app at start-up.
    "AUTODISCOVER": True,
    # Module name looked for by autodiscovery.
    "COMMANDS_MODULE": "commands",
    # Global state and presence backend: "memory" (one process) or "redis".
    "BACKEND": "memory",
    # A store of its own for any of "state", "presence", "history", "idempotency" (alias or
    # dotted path, as BACKEND); the others use BACKEND.
    "STORES": {},
    # Redis for the "redis" backend: a URL (redis://, rediss://, unix://) or, as channels-redis
    # takes in "hosts", a dict: {"address": url} or {"sentinels": [(host, port)],
    # "master_name": name} (Sentinel), with redis-py connection options.
    "REDIS_URL": None,
    # redis-py connection options over wscommands' defaults (socket_connect_timeout=2,
    # socket_timeout=2, max_connections=1000, one retry on a broken connection): see
    # docs/scaling.md.
    "REDIS_OPTIONS": {},
    # Seconds after its last heartbeat (sent every PRESENCE_TTL / 3) a process that died
    # without cleaning up drops out of presence: a live process then announces its users'
    # leave (within PRESENCE_TTL + PRESENCE_EVENT_INTERVAL, 4 s by default).
    "PRESENCE_TTL": 3.0,
    # Seconds the leave of a signed-in connection that closed is held (0: none), so a user
    # whose connections come back within it (a restart, a network blip) is never seen leaving.
    "PRESENCE_GRACE": 5.0,
    # Push {"presence_diff": {...}} to a group's members when connections join or leave it,
    # and to the members of PRESENCE_GROUP when connections come and go (docs/scaling.md).
    "PRESENCE_EVENTS": False,
    # Seconds over which presence changes are merged: at most one presence_diff per group
    # and process in each interval (the first change after a quiet spell goes out at once).
    "PRESENCE_EVENT_INTERVAL": 1.0,
    # Most entries (get_presence) or users (get_presence_state) one presence read returns
    # unless the caller asks for another limit; counts stay exact.
    "PRESENCE_LIMIT": 100,
    # Prefix of every Redis key and channel-layer group that wscommands creates.
    "PREFIX": "wscommands",
    # Alias in CHANNEL_LAYERS used for broadcast, groups and send_to_subset.
    "CHANNEL_LAYER": "default",
    # Dotted path of the class of each process's hub (a subclass of wscommands.hub.Hub):
    # the one object that receives fan-out messages and writes them to local connections.
    "HUB_CLASS": "wscommands.hub.Hub",
    # Threads that run sync commands and hooks (each may hold one database connection).
    "WORKER_THREADS": 16,
    # Of those, how many one connection's sync calls may hold at once, and what share of the
    # pool anonymous connections may hold together (the rest is kept for logged-in users).
    "WORKER_THREADS_PER_CONNECTION": 4,
    "ANONYMOUS_WORKER_SHARE": 0.5,
    # Threads the anonymous connections of one client IP may hold together (None: no cap),
    # so one host's anonymous sockets cannot take the whole anonymous share.
    "ANONYMOUS_WORKER_THREADS_PER_IP": 4,
    # Threads the connections of one logged-in user may hold together (None: no cap), so one
    # account with many sockets cannot take the pool from the other users.
    "WORKER_THREADS_PER_USER": 4,
    # Requests of one connection that may wait to run before new ones are refused, by count
    # and by the size of their frames in bytes.
    "MAX_PENDING_REQUESTS": 64,
    "MAX_PENDING_BYTES": 1024 * 1024,
    # Commands in one request (frame); more get invalid_request.
    "MAX_COMMANDS_PER_REQUEST": 32,
    # call_later timers one connection may have waiting, and the bytes of their arguments.
    "MAX_TIMERS": 16,
    "MAX_TIMER_BYTES": 64 * 1024,
    # Groups one connection may be in.
    "MAX_GROUPS_PER_CONNECTION": 100,
    # Bytes one process may hold on behalf of all its clients (waiting requests, timers,
    # outgoing backlogs); past it the heaviest connection is refused or cut off (4429).
    "MAX_CLIENT_MEMORY": 256 * 1024 * 1024,
    # How often (seconds) a process re-asserts its channel-layer group memberships.
    "GROUP_REFRESH_INTERVAL": 60.0,
    # How often (seconds) a process checks that the channel layer still delivers to it (a
    # message to itself); when not, it re-joins its groups (e.g. after Redis lost its data).
    "HEALTH_CHECK_INTERVAL": 1.0,
    # Hardening (docs/reliability.md). Largest text frame, in UTF-8 bytes; bigger ones close
    # the connection with 4413. Keep it under daphne's own 1 MiB frame cap, which drops the
    # connection without a close frame.
    "MAX_MESSAGE_SIZE": 256 * 1024,
    # Deepest nesting of arrays/objects in a request; deeper ones get invalid_request.
    "MAX_JSON_DEPTH": 32,
    # Refused frames in a row (binary, not JSON, invalid request) before closing with 4400.
    "MAX_INVALID_FRAMES": 20,
    # Token bucket per connection: frames per second sustained (None: no limit) and burst.
    "RATE_LIMIT": 100.0,
    "RATE_LIMIT_BURST": 200,
    # Token bucket per connection by frame size: bytes (UTF-8 for text) per second
    # sustained (None: no limit) and burst (at least MAX_MESSAGE_SIZE).
    "RATE_LIMIT_BYTES": 1024 * 1024,
    "RATE_LIMIT_BYTES_BURST": 4 * 1024 * 1024,
    # Frames refused with rate_limited in a row before closing with 4429.
    "RATE_LIMIT_CLOSE_AFTER": 50,
    # Frames daphne may hold for a connection (the engine: while it opens) before it stops
    # reading its socket.
    "MAX_INBOX": 32,
    # Bytes daphne may hold for a client that does not read before it is cut off (4429).
    "MAX_OUTGOING_BACKLOG": 4 * 1024 * 1024,
    # Connections per user and per client IP on one process (None: no cap); extra ones
    # are closed with 4429 right after the handshake. The IP cap is generous (clients
    # behind one NAT share an address) but stops one host from opening thousands.
    "MAX_CONNECTIONS_PER_USER": None,
    "MAX_CONNECTIONS_PER_IP": 256,
    # Which handshake Origins are let in: "same-origin" (the handshake's own scheme, host and
    # port; the host one of ALLOWED_HOSTS) or "allowed-hosts" (Channels' lax policy: any
    # scheme and port of a host of ALLOWED_HOSTS). See wscommands/origins.py.
    "ORIGIN_POLICY": "same-origin",
    # Origin allowlist, e.g. ["https://example.com", "http://localhost:8000"]: exactly these,
    # whatever ORIGIN_POLICY says (None: ORIGIN_POLICY decides).
    "ALLOWED_ORIGINS": None,
    # Let handshakes without an Origin header in (clients that are not browsers).
    "ALLOW_MISSING_ORIGIN": True,
    # Seconds between checks that logged-in connections' sessions are still valid (None: never);
    # a logged-out or expired one is closed with 3000.
    "SESSION_CHECK_INTERVAL": 60.0,
    # Seconds SIGTERM waits for clients to close (4503) and hooks to run before the server exits.
    "SHUTDOWN_TIMEOUT": 10.0,
    # The built-in ``describe`` command (the commands a caller may run, their schemas, the
    # declared pushes): "off", "staff" (logged-in staff users) or "public".
    "DESCRIBE": "off",
    # Check results and declared pushes against their types and log mismatches (None: when
    # settings.DEBUG is on).
    "VALIDATE_OUTGOING": None,
    # Seconds a channel-layer call may take before it counts as unavailable.
    "CHANNEL_LAYER_TIMEOUT": 2.0,
    # Resumable delivery (docs/protocol.md): pushes kept per stream (0: no history, no
    # positions, resume refused), seconds each is kept, and seconds a stream's position (epoch,
    # offset) outlives its last push or read, so a quiet stream can still be resumed.
    "HISTORY_SIZE": 500,
    "HISTORY_TTL": 300.0,
    "HISTORY_META_TTL": 3600.0,
    # Most streams with history kept at once, per process (memory backend) and in Redis; past
    # it the stream idle the longest is dropped (its clients are told history_lost).
    "HISTORY_MAX_STREAMS": 10000,
    # Replays (resumes, gap fills) one connection may be sent per RESUME_INTERVAL seconds,
    # in pushes (at least HISTORY_SIZE: one reconnect gets a full history at once) and bytes;
    # a stream over it is refused whole with rate_limited.
    "RESUME_PUSHES": 5000,
    "RESUME_BYTES": 16 * 1024 * 1024,
    "RESUME_INTERVAL": 60.0,
    # Seconds a process holds a push that overtook an earlier one of its stream (the
    # earlier one is on its way from another process) before skipping the missing offsets
    # (a gap its resumable clients fill with a resume), and the most pushes held per stream.
    "STREAM_REORDER_WAIT": 0.5,
    "STREAM_REORDER_MAX": 1000,
    # Idempotent requests (docs/protocol.md): seconds a reply is kept for a retry, the
    # largest reply kept (bytes of JSON), the most finished records per owner (user, session
    # or client).
    "IDEMPOTENCY_TTL": 120.0,
    "IDEMPOTENCY_MAX_BYTES": 64 * 1024,
    "IDEMPOTENCY_MAX_KEYS": 100,
    # Retries of one running idempotent request that may wait for it on one process (more get
    # rate_limited), and the seconds one waits before it gets unavailable ("still running").
    "IDEMPOTENCY_MAX_WAITERS": 8,
    "IDEMPOTENCY_WAIT": 30.0,
    # Seconds one write to one client may take during a fan-out (under uvicorn a write waits
    # while the client does not read); a slower client is cut off (4429) so it delays no other.
    "SEND_TIMEOUT": 1.0,
    # Observability (docs/operations.md). Record Prometheus metrics (needs prometheus-client).
    "METRICS": True,
    # Bearer token that may read /metrics (None: only logged-in staff users may).
    "METRICS_TOKEN": None,
    # Seconds between two writes of this process's figures for the operations page (None: off).
    "OPS_INTERVAL": 1.0,
}


#: Held while the settings are loaded or forgotten (never by a read of loaded settings): a
#: reload in one thread cannot interleave with another thread's first read.
_SWAP = threading.RLock()


class _SettingsView:
    """What the two states of :class:`Settings` share."""

    _cache: dict[str, Any] | None

    def _load(self) -> dict[str, Any]:
        if self._cache is None:
            user = getattr(django_settings, "WSCOMMANDS", {}) or {}
            if not isinstance(user, dict):
                raise ImproperlyConfigured("settings.WSCOMMANDS must be a dict.")
            for key in user:
                if key not in DEFAULTS:
                    close = difflib.get_close_matches(key, DEFAULTS, n=1)
                    hint = f" Did you mean {close[0]!r}?" if close else ""
                    raise ImproperlyConfigured(
                        f"Unknown setting WSCOMMANDS[{key!r}].{hint} "
                        f"Known settings: {', '.join(sorted(DEFAULTS))}."
                    )
            self._cache = {**DEFAULTS, **user}
        return self._cache

    def reload(self) -> None:
        """Forget the values read (called when ``WSCOMMANDS`` changes in tests)."""
        with _SWAP:
            # The class first: from then on a missing value is loaded (after this reload).
            self.__class__ = Settings
            self.__dict__.clear()
            self._cache = None


class Settings(_SettingsView):
    """Read-through view of ``settings.WSCOMMANDS`` merged over :data:`DEFAULTS`.

    The first read loads every setting as an attribute of the instance, which then becomes
    a :class:`LoadedSettings`: a class without ``__getattr__``, whose attribute reads
    (several per frame) the interpreter can specialize; :meth:`reload` starts over.
    """

    def __init__(self) -> None:
        self._cache = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        with _SWAP:
            values = self._load()
            if name not in values:
                raise AttributeError(f"No wscommands setting {name!r}")
            self.__dict__.update(values)
            self.__class__ = LoadedSettings  # type: ignore[assignment]
            return values[name]


class LoadedSettings(_SettingsView):
    """:class:`Settings` once loaded (an unknown name is a plain AttributeError)."""


wscommands_settings = Settings()


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "WSCOMMANDS":
        wscommands_settings.reload()


setting_changed.connect(_on_setting_changed)
