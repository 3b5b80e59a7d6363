"""A minimal project using wscommands as README.md "Install" and "Your first command" say.

Copied into a temporary directory and run by tests/packaging/test_wheel.py with the wheel
installed into a bare venv. ``SITE_EXTRAS`` (comma-separated) says which extras that venv
has: ``daphne`` puts daphne first in INSTALLED_APPS, ``redis`` with ``SITE_REDIS_URL`` set
uses the channels-redis layer and the redis backend.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
EXTRAS = set(filter(None, os.environ.get("SITE_EXTRAS", "").split(",")))
REDIS_URL = os.environ.get("SITE_REDIS_URL")

SECRET_KEY = "only-for-the-packaging-test-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    *(["daphne"] if "daphne" in EXTRAS else []),
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "channels",
    "wscommands",
    "hello",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "minisite.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]
ASGI_APPLICATION = "minisite.asgi.application"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "static/"
USE_TZ = True

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": "packaging-test"},
        }
    }
    WSCOMMANDS = {"BACKEND": "redis", "REDIS_URL": REDIS_URL, "PREFIX": "packaging-test"}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
