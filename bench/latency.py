"""The two latencies issue 18 promises, on two daphne processes sharing Redis and the database.

- ``crash-leave``: a watcher on process A follows the server-wide presence (the example's
  ``presence.list``, then its ``presence_diff`` pushes); ``Config.presence_users`` signed-in
  users connect to process B; B is killed with SIGKILL: milliseconds until the watcher has seen
  every one of them leave. With the library's defaults (``PRESENCE_TTL`` 3 s, a heartbeat
  every second, ``PRESENCE_EVENT_INTERVAL`` 1 s) the promise is within 5 s.
- ``logout-close``: one user, signed in through the login form, has
  ``Config.sockets_per_process`` sockets on each process; the session ends by a logout (POST
  /accounts/logout/ on A) or by the deletion of its session (from this process, as an admin
  or a script would): milliseconds until every socket, on both processes, was closed with
  4401. The promise is within 1 s.

Each round waits on events (frames, closes), never on a sleep. This process shares the
servers' settings, database and channel layer (``cluster.setup_django``), since the sessions
it makes and deletes must be the servers' own.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import json
import secrets
import urllib.parse
import urllib.request
from collections.abc import Callable
from importlib import import_module
from time import perf_counter
from typing import Any
from urllib.parse import urlsplit

import orjson
from django.conf import settings
from django.contrib.auth import (
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    get_user_model,
)
from picows import WSMsgType, WSTransport, ws_connect

from .client import BenchClient, close_all
from .config import Config
from .servers import Server, start_all, stop_all
from .stats import medians

#: What the servers run with: the bench settings, presence events on (the library's other
#: presence and session settings stay at their defaults).
OVERRIDES = {"PRESENCE_EVENTS": True}
#: The close code of a session that ended (docs/protocol.md).
SESSION_ENDED = 4401
#: How long one round may wait for an event before it counts as missed (far above the bounds).
PATIENCE = 30.0
PASSWORD = secrets.token_urlsafe(16)
FIGURES = ("ms_first", "ms_last")


class View:
    """A watcher's server-wide presence: a user joins with their first connection and leaves
    with their last (the browser client's rules); ``left_at`` keeps when each one left."""

    def __init__(self) -> None:
        self.users: dict[str, set[str]] = {}
        self.left_at: dict[str, float] = {}
        self._waiters: list[tuple[Callable[[View], bool], asyncio.Future]] = []

    def load(self, state: dict[str, Any]) -> None:
        self.users = {key: set(user["connections"]) for key, user in state["users"].items()}

    def apply(self, diff: dict[str, Any], now: float) -> None:
        for key, user in diff["joins"].items():  # joins first, as the browser client
            self.users.setdefault(key, set()).update(user["connections"])
            self.left_at.pop(key, None)
        for key, user in diff["leaves"].items():
            current = self.users.get(key)
            if current:
                current.difference_update(user["connections"])
                if not current:
                    del self.users[key]
                    self.left_at[key] = now
        for condition, future in list(self._waiters):
            if not future.done() and condition(self):
                future.set_result(now)
        self._waiters = [(c, f) for c, f in self._waiters if not f.done()]

    async def until(self, condition: Callable[[View], bool]) -> None:
        """Return once ``condition(view)`` holds (TimeoutError after PATIENCE seconds)."""
        if condition(self):
            return
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((condition, future))
        await asyncio.wait_for(future, PATIENCE)


class Socket(BenchClient):
    """A bench connection that also applies server-wide presence diffs to ``view`` (if any)
    and keeps when the server closed it and with which code."""

    def __init__(self, view: View | None = None) -> None:
        super().__init__()
        self.view = view
        self.close_code: int | None = None
        self.closed_at: float | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def on_ws_frame(self, transport: WSTransport, frame: Any) -> None:
        now = perf_counter()
        if frame.msg_type == WSMsgType.CLOSE and self.close_code is None:
            self.close_code, self.closed_at = int(frame.get_close_code()), now
            if not self.closed.done():
                self.closed.set_result(None)
        elif self.view is not None and frame.msg_type == WSMsgType.TEXT:
            payload = frame.get_payload_as_bytes()
            if b'"presence_diff"' in payload and b'"request_id"' not in payload:
                diff = orjson.loads(payload)["presence_diff"]
                if diff["group"] is None:
                    self.view.apply(diff, now)
                return
        super().on_ws_frame(transport, frame)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        super().on_ws_disconnected(transport)
        if not self.closed.done():  # dropped without a close frame: no code
            self.closed.set_result(None)


async def open_socket(url: str, session_key: str | None = None, view: View | None = None) -> Socket:
    """One connection from a page of the server itself (its Origin), as the session's user."""
    headers = {"Origin": f"http://{urlsplit(url).netloc}"}
    if session_key:
        headers["Cookie"] = f"{settings.SESSION_COOKIE_NAME}={session_key}"
    _transport, client = await ws_connect(
        lambda: Socket(view), url, extra_headers=headers, websocket_handshake_timeout=PATIENCE
    )
    if not isinstance(client, Socket):
        raise ConnectionError(f"no connection: ws_connect returned {client!r}")
    return client


def signed_in_sessions(prefix: str, count: int) -> dict[str, str]:
    """``count`` users and a session each, as ``django.contrib.auth.login`` leaves it (without
    the form: a password hash per user would cost a second each); user key -> session key."""
    users = get_user_model().objects
    store = import_module(settings.SESSION_ENGINE).SessionStore
    sessions = {}
    for i in range(count):
        user = users.create_user(f"{prefix}-{i}")  # no usable password: never signs in
        session = store()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        sessions[str(user.pk)] = session.session_key
    return sessions


def summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and worst of the rounds, and how many missed the event altogether."""
    done = [r for r in rounds if r["ms_last"] is not None]
    return {
        "rounds": rounds,
        "median": medians(done, FIGURES),
        "max_ms": max((r["ms_last"] for r in done), default=None),
        "missed": len(rounds) - len(done),
    }


async def _crash_round(env: dict[str, str], log_dir: Any, watcher: View, sessions: dict) -> dict:
    victim = start_all([Server("wscommands", "daphne", env, cores={1}, log_dir=log_dir)])[0]
    sockets: list[Socket] = []
    try:
        opening = (open_socket(victim.url, session) for session in sessions.values())
        sockets = list(await asyncio.gather(*opening))
        await watcher.until(lambda v: all(key in v.users for key in sessions))
        assert victim.process is not None
        killed = perf_counter()
        victim.process.kill()  # SIGKILL: no goodbye, only the heartbeat stops
        with contextlib.suppress(TimeoutError):  # counted as missed below
            await watcher.until(lambda v: not any(key in v.users for key in sessions))
        left = [watcher.left_at[key] - killed for key in sessions if key in watcher.left_at]
        done = len(left) == len(sessions)
        return {
            "users": len(sessions),
            "left": len(left),
            "ms_first": min(left) * 1000 if left else None,
            "ms_last": max(left) * 1000 if done else None,
        }
    finally:
        stop_all([victim])
        await close_all([*sockets], timeout=5)


async def crash_leave(cfg: Config, env: dict[str, str], log_dir: Any) -> dict:
    """Per round: ms from SIGKILL of B until A's watcher saw B's signed-in users leave."""
    env = {**env, "WSCOMMANDS_LIMITS": json.dumps(OVERRIDES)}
    observer = start_all([Server("wscommands", "daphne", env, cores={0}, log_dir=log_dir)])[0]
    view = View()
    try:
        sessions = await asyncio.to_thread(signed_in_sessions, "crash", cfg.presence_users)
        watcher = await open_socket(observer.url, view=view)
        reply, _ = await watcher.request({"presence.list": {}})
        view.load(reply["presence.list"])
        rounds = [await _crash_round(env, log_dir, view, sessions) for _ in range(cfg.rounds)]
        await close_all([watcher])
    finally:
        stop_all([observer])
    return {**summary(rounds), "users": cfg.presence_users, "overrides": OVERRIDES}


class Browser:
    """The cookies of one browser on ``server``: sign in through the login form, sign out
    through Django's LogoutView (POSTs with the CSRF token, as the demo page sends them)."""

    def __init__(self, server: Server) -> None:
        self.base = f"http://127.0.0.1:{server.port}"
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def cookie(self, name: str) -> str:
        return next(c.value for c in self.jar if c.name == name) or ""

    def post(self, path: str, **fields: str) -> None:
        if not any(c.name == settings.CSRF_COOKIE_NAME for c in self.jar):
            self.opener.open(f"{self.base}/accounts/login/", timeout=PATIENCE).read()
        fields["csrfmiddlewaretoken"] = self.cookie(settings.CSRF_COOKIE_NAME)
        url = f"{self.base}{path}"
        data = urllib.parse.urlencode(fields).encode()
        request = urllib.request.Request(url, data, headers={"Referer": url})
        self.opener.open(request, timeout=PATIENCE).read()

    def login(self, username: str) -> str:
        """Sign in; the session key."""
        self.post("/accounts/login/", username=username, password=PASSWORD)
        return self.cookie(settings.SESSION_COOKIE_NAME)

    def logout(self) -> None:
        self.post("/accounts/logout/")


#: The signed-in user of the logout-close scenario.
USERNAME = "bench-latency"
#: How a session ends in the logout-close scenario, one case each per round.
ENDS = ("logout", "session deleted")


def create_user(username: str) -> None:
    """A user who signs in through the form with :data:`PASSWORD`."""
    get_user_model().objects.create_user(username, password=PASSWORD)


async def _end_round(servers: list[Server], how: str, per_process: int) -> dict[str, Any]:
    browser = Browser(servers[0])
    key = await asyncio.to_thread(browser.login, USERNAME)
    urls = [server.url for server in servers for _ in range(per_process)]
    sockets: list[Socket] = list(await asyncio.gather(*(open_socket(url, key) for url in urls)))
    try:
        for socket in sockets:  # each acts as the user: its session is the one that ends
            reply, _ = await socket.request({"whoami": {}})
            if reply.get("whoami", {}).get("username") != USERNAME:
                raise RuntimeError(f"a socket is not signed in: {reply}")
        started = perf_counter()
        if how == "logout":
            await asyncio.to_thread(browser.logout)  # on servers[0]: the others learn of it
        else:
            await import_module(settings.SESSION_ENGINE).SessionStore(key).adelete()
        await asyncio.wait([s.closed for s in sockets], timeout=PATIENCE)
        closed = [s.closed_at - started for s in sockets if s.closed_at is not None]
        ended = sum(s.close_code == SESSION_ENDED for s in sockets)
        return {
            "sockets": len(sockets),
            "closed_4401": ended,
            "codes": sorted({str(s.close_code) for s in sockets}),
            "ms_first": min(closed) * 1000 if closed else None,
            "ms_last": max(closed) * 1000 if ended == len(sockets) else None,
        }
    finally:
        await close_all([*sockets], timeout=5)


async def logout_close(cfg: Config, env: dict[str, str], log_dir: Any) -> dict:
    """Per way a session ends and round: ms until its sockets on both processes had 4401."""
    env = {**env, "WSCOMMANDS_LIMITS": json.dumps(OVERRIDES)}
    servers = [Server("wscommands", "daphne", env, cores={i}, log_dir=log_dir) for i in (0, 1)]
    start_all(servers)
    try:
        await asyncio.to_thread(create_user, USERNAME)
        rounds: dict[str, list[dict[str, Any]]] = {how: [] for how in ENDS}
        for _ in range(cfg.rounds):
            for how in ENDS:
                rounds[how].append(await _end_round(servers, how, cfg.sockets_per_process))
    finally:
        stop_all(servers)
    return {
        "sockets_per_process": cfg.sockets_per_process,
        "ends": {how: summary(figures) for how, figures in rounds.items()},
    }
