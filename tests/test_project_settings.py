"""API.md, Settings: the example project runs with nothing installed (in-memory layer and
state, SQLite) and switches to Redis and another database through the environment."""

from __future__ import annotations

import json

import pytest

from tests.live import base_env, manage

SHOW = (
    "import json; from django.conf import settings as s; from wscommands.conf import "
    "wscommands_settings as w; print(json.dumps([s.CHANNEL_LAYERS['default']['BACKEND'], "
    "w.BACKEND, s.DATABASES['default']['ENGINE'], s.DATABASES['default']['NAME']]))"
)


def configuration(**env: str) -> list[str]:
    return json.loads(manage("shell", "-c", SHOW, env=base_env(**env)).strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {},
            [
                "channels.layers.InMemoryChannelLayer",
                "memory",
                "django.db.backends.sqlite3",
                None,
            ],
        ),
        (
            {
                "REDIS_URL": "redis://127.0.0.1:6379/11",
                "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test",
            },
            [
                "channels_redis.pubsub.RedisPubSubChannelLayer",
                "redis",
                "django.db.backends.postgresql",
                "test",
            ],
        ),
    ],
)
def test_redis_url_and_database_url_choose_the_backends(env, expected):
    """Unset: in-memory channel layer and global state, SQLite. Set: Redis and PostgreSQL.
    (Nothing is connected to: this reads the configuration only.)"""
    shown = configuration(**env)
    if expected[3] is None:
        assert shown[3].endswith("db.sqlite3")
        expected[3] = shown[3]
    assert shown == expected
