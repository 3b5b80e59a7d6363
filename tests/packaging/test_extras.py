"""What a project is told when an extra it uses is missing (here simulated; test_wheel.py
shows the same in a venv that really lacks them)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from wscommands import backends, checks
from wscommands.backends import redis as redis_backend
from wscommands.observability import prometheus

REDIS_LAYER = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer"}}
MEMORY_LAYER = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
INSTALL_REDIS = 'pip install "wscommands[redis]"'


@pytest.fixture
def without_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backends, "redis_installed", lambda: False)
    monkeypatch.setattr(redis_backend, "redis_installed", lambda: False)


def _e021(settings, wscommands: dict, layers: dict) -> list[str]:
    with override_settings(WSCOMMANDS={**settings.WSCOMMANDS, **wscommands}, CHANNEL_LAYERS=layers):
        return [m.msg for m in checks.check_extras() if m.id == "wscommands.E021"]


def test_the_redis_backend_and_layer_without_the_extra_fail_the_check(settings, without_redis):
    redis = {"BACKEND": "redis", "REDIS_URL": "redis://127.0.0.1:6379/0"}
    messages = _e021(settings, redis, REDIS_LAYER)
    assert len(messages) == 2 and all(INSTALL_REDIS in m for m in messages), messages
    assert _e021(settings, {"BACKEND": "memory"}, MEMORY_LAYER) == []


def test_the_redis_backend_without_the_extra_refuses_to_start(without_redis):
    with pytest.raises(ImproperlyConfigured, match=r"wscommands\[redis\]"):
        redis_backend.RedisBackend({"address": "redis://127.0.0.1:6379/0"})


def test_with_the_extra_nothing_is_reported(settings):
    redis = {"BACKEND": "redis", "REDIS_URL": "redis://127.0.0.1:6379/0"}
    assert _e021(settings, redis, REDIS_LAYER) == []


def test_metrics_without_prometheus_client_say_what_to_install(client, settings, monkeypatch):
    monkeypatch.setattr(prometheus, "installed", lambda: False)
    reply = client.get("/metrics")
    assert reply.status_code == 404
    assert reply.content == b'metrics need prometheus-client: pip install "wscommands[metrics]"\n'
    # And no check warns about it: the extra is optional.
    assert [m.id for m in checks.check_observability()] == []


def test_metrics_turned_off_say_so(client, settings):
    with override_settings(WSCOMMANDS={**settings.WSCOMMANDS, "METRICS": False}):
        reply = client.get("/metrics")
    assert (reply.status_code, reply.content) == (
        404,
        b"metrics are off: WSCOMMANDS['METRICS'] is False\n",
    )
