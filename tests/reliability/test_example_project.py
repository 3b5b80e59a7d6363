"""The example project is safe to copy: secrets, passwords, sign-in throttling, HTTPS
cookies, ``check --deploy``, flood limits and the shared counter, on real processes."""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import secrets
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import pytest
import yaml

from project.demo.commands import COUNTER_LIMIT
from tests.live import ROOT, base_env, run_manage
from tests.live import manage as live_manage
from tests.scaleout.client import WSClient

pytestmark = pytest.mark.e2e

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
PUBLISHED_KEYS = ["insecure-example-key-change-me-in-production", "change-me-in-production"]


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """``manage.py`` on the example project's own settings with exactly ``env``'s secrets."""
    return run_manage(*args, env=env)


def example_env(**extra: str) -> dict[str, str]:
    """The example's settings, none of the test run's key or debug switches."""
    env = base_env(DJANGO_SETTINGS_MODULE="project.settings")
    for name in ("DJANGO_SECRET_KEY", "DJANGO_DEBUG", "DJANGO_HTTPS", "WSCOMMANDS_LIMITS"):
        env.pop(name, None)
    # Not the checkout's .secret_key, which `dev.py run` leaves and which means development.
    env["DJANGO_SECRET_KEY_FILE"] = "/nonexistent/.secret_key"
    env.update(extra)
    return env


def production_env_of_compose() -> dict[str, str]:
    """docker-compose.yml's web environment, its required secret given as an operator would."""
    web = next(s for s in COMPOSE["services"].values() if "daphne" in s.get("command", []))
    env = {name: str(value) for name, value in web["environment"].items()}
    assert env["DJANGO_SECRET_KEY"].startswith("${DJANGO_SECRET_KEY:?"), "compose must require it"
    env["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(50)
    assert env.get("DJANGO_DEBUG", "") != "1"
    return example_env(**env)


def test_no_published_secret_in_production_and_a_local_key_in_development(tmp_path):
    """DEBUG off: no key, or a published one, refuses to start saying how to fix it.
    DJANGO_DEBUG=1 without a key: one is generated once (mode 600) and reused."""
    refused = manage(example_env(), "check")
    assert refused.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in refused.stderr
    assert "secrets.token_urlsafe" in refused.stderr
    for key in PUBLISHED_KEYS:
        refused = manage(example_env(DJANGO_SECRET_KEY=key), "check")
        assert "DJANGO_SECRET_KEY is a published key" in refused.stderr, key
        refused = manage(example_env(DJANGO_SECRET_KEY=key, DJANGO_DEBUG="1"), "check")
        assert refused.returncode != 0
    assert manage(example_env(DJANGO_SECRET_KEY=secrets.token_urlsafe(50)), "check").returncode == 0

    key_file = tmp_path / "secret_key"
    show = "from django.conf import settings; print(settings.SECRET_KEY)"
    development = example_env(DJANGO_DEBUG="1", DJANGO_SECRET_KEY_FILE=str(key_file))
    first = manage(development, "shell", "-c", show)
    assert first.returncode == 0, first.stderr
    key = first.stdout.strip().splitlines()[-1]
    assert key == key_file.read_text().strip()
    assert len(key) >= 50
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert manage(development, "shell", "-c", show).stdout.strip().splitlines()[-1] == key


def test_check_deploy_is_clean_with_the_compose_production_environment():
    """``manage.py check --deploy`` with docker-compose.yml's web environment: no warning."""
    result = manage(production_env_of_compose(), "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_flood_limits_are_the_librarys_in_the_example():
    """What users copy keeps the library's flood limits; only tests and benchmarks raise them."""
    show = (
        "import json; from django.conf import settings; "
        "print(json.dumps(sorted(settings.WSCOMMANDS)))"
    )
    result = manage(example_env(DJANGO_SECRET_KEY=secrets.token_urlsafe(50)), "shell", "-c", show)
    assert result.returncode == 0, result.stderr
    keys = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert not keys & {"RATE_LIMIT", "RATE_LIMIT_BURST", "MAX_PENDING_REQUESTS"}, keys


class Browser:
    """A cookie-keeping HTTP client that does not follow redirects."""

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    class _BehindTLS(http.cookiejar.DefaultCookiePolicy):
        """Sends Secure cookies over http://: the browser spoke TLS to the proxy."""

        def return_ok_secure(self, cookie, request):
            return True

    def __init__(self, base: str, headers: dict[str, str] | None = None):
        self.base = base
        self.headers = headers or {}
        self.jar = http.cookiejar.CookieJar(self._BehindTLS())
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), self._NoRedirect
        )

    def request(self, path: str, form: dict[str, str] | None = None):
        """(status, headers, body) of a GET, or of a POST of ``form`` with the CSRF token."""
        url = self.base + path
        data = None
        headers = dict(self.headers)
        if form is not None:
            token = self.cookie("csrftoken")
            data = urllib.parse.urlencode({**form, "csrfmiddlewaretoken": token}).encode()
            # What the browser saw: https:// behind the TLS proxy (CSRF checks the Referer).
            scheme = self.headers.get("X-Forwarded-Proto", "http")
            headers["Referer"] = scheme + url.removeprefix("http")
        try:
            with self.opener.open(urllib.request.Request(url, data, headers), timeout=30) as r:
                return r.status, r.headers, r.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read().decode()

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)


def test_weak_passwords_refused_and_sign_in_throttled(live):
    """Sign-up refuses ``1``; five wrong passwords lock that username out from this IP (429,
    even with the right password), while another user still signs in."""
    server = live()
    name = f"u{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(12)
    browser = Browser(server.http)
    browser.request("/accounts/signup/")
    status, _, body = browser.request(
        "/accounts/signup/", {"username": name, "password1": "1", "password2": "1"}
    )
    assert status == 200 and "too short" in body  # the form again, with the validator's error
    status, _, _ = browser.request(
        "/accounts/signup/", {"username": name, "password1": password, "password2": password}
    )
    assert status == 302, "a good password signs up"

    attacker = Browser(server.http)
    attacker.request("/accounts/login/")
    statuses = [
        attacker.request("/accounts/login/", {"username": name, "password": f"guess{i}"})[0]
        for i in range(5)
    ]
    assert statuses == [200, 200, 200, 200, 429]  # the form again, then locked at the 5th
    status, _, _ = attacker.request("/accounts/login/", {"username": name, "password": password})
    assert status == 429
    other = Browser(server.http)
    other.request("/accounts/login/")
    status, _, _ = other.request("/accounts/login/", {"username": "rel", "password": "pw"})
    assert status == 302


def test_cookies_are_secure_and_https_enforced_behind_the_tls_proxy(live):
    """DJANGO_HTTPS=1 (the compose deployment): Secure session and CSRF cookies, HSTS, and
    plain HTTP redirected to HTTPS."""
    server = live(env={"DJANGO_HTTPS": "1"})
    status, headers, _ = Browser(server.http).request("/accounts/login/")
    assert status == 301 and headers["Location"].startswith("https://")
    browser = Browser(server.http, headers={"X-Forwarded-Proto": "https"})
    status, headers, _ = browser.request("/accounts/login/")
    assert status == 200
    assert "max-age=" in headers["Strict-Transport-Security"]
    status, headers, _ = browser.request("/accounts/login/", {"username": "rel", "password": "pw"})
    assert status == 302
    cookies = {c.name: c for c in browser.jar}
    assert cookies["sessionid"].secure and cookies["csrftoken"].secure


async def test_shared_counter_is_bounded(live, reliability_db):
    """Steps of 1 to 100 only (2**62, 0, -5 are refused), and the counter starts over at its
    limit instead of growing until numbers break; it keeps working afterwards."""
    server = live()
    client = await WSClient.open(server.ws)
    for amount in (2**62, 10**30, 0, -5, 101):
        reply = await client.request({"counter.increment": {"amount": amount}})
        assert reply["errors"]["counter.increment"]["code"] == "invalid_arguments", amount
    value = {"value": COUNTER_LIMIT - 3}
    script = (
        "from project.demo.models import SharedCounter, COUNTER; "
        f"SharedCounter.objects.update_or_create(name=COUNTER, defaults={value!r})"
    )
    await asyncio.to_thread(live_manage, "shell", "-c", script, env=reliability_db)
    assert await client.call("counter.increment", amount=2) == COUNTER_LIMIT - 1
    assert await client.call("counter.increment", amount=10) == 9
    assert await client.call("counter.increment") == 10
    assert await client.call("counter.get") == 10
    await client.close()


async def test_shared_counter_survives_a_restart_in_the_default_in_memory_mode(live):
    """The example keeps its counter in its database: a restart of the one in-memory process
    (no Redis: the library's global state is lost) keeps the value."""
    server = live()  # no REDIS_URL: in-memory layer and backend
    client = await WSClient.open(server.ws)
    before = await client.call("counter.get")
    assert await client.call("counter.increment", amount=6) == before + 6
    await client.close()
    server.stop()
    again = live()
    client = await WSClient.open(again.ws)
    assert await client.call("counter.get") == before + 6
    await client.close()
