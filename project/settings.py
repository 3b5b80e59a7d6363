"""Settings of the wscommands example project, safe to copy.

Runs with nothing but Python installed: SQLite and an in-memory channel layer. Set
``REDIS_URL`` to share broadcasts, groups, global state and presence between processes,
and ``DATABASE_URL`` (e.g. postgres://...) to share users and sessions.

Production unless ``DJANGO_DEBUG=1`` (or, with neither variable set, a ``.secret_key`` left by
``python3 dev.py run``): ``DJANGO_SECRET_KEY`` is required (project/secret_key.py),
``DJANGO_HTTPS=1`` behind the TLS proxy of docker-compose.yml makes cookies Secure and turns
on HSTS (``manage.py check --deploy`` is clean then). The library's flood limits apply as they
are; test clients and benchmarks raise them in their own settings (tests/settings.py,
bench/settings.py).
"""

import json
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url

from project.secret_key import secret_key
from wscommands.observability.logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY_FILE = Path(os.environ.get("DJANGO_SECRET_KEY_FILE", BASE_DIR / ".secret_key"))
# Development mode: DJANGO_DEBUG=1, or, with neither DJANGO_DEBUG nor DJANGO_SECRET_KEY set, the
# local key `python3 dev.py run` created, so manage.py (createsuperuser, shell) works after it
# as it is. Production always sets DJANGO_SECRET_KEY (it refuses to start without): never on.
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1" or (
    "DJANGO_DEBUG" not in os.environ
    and not os.environ.get("DJANGO_SECRET_KEY")
    and SECRET_KEY_FILE.exists()
)
SECRET_KEY = secret_key(DEBUG, SECRET_KEY_FILE)
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "axes",
    "wscommands",
    "project.demo",
    "project.chat",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it answers a locked-out login with 429.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "project.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "project" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

ASGI_APPLICATION = "project.asgi.application"

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}", conn_max_age=0
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several worker threads write sessions at once: wait for the lock, don't fail.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20

REDIS_URL = os.environ.get("REDIS_URL", "")
# Redis Sentinel instead of one Redis: REDIS_SENTINELS="host1:26379,host2:26379" and
# REDIS_SENTINEL_MASTER (the monitored master's name), as channels-redis takes them.
REDIS_SENTINELS = os.environ.get("REDIS_SENTINELS", "")

if REDIS_SENTINELS:
    REDIS_HOST = {
        "sentinels": [
            (host, int(port))
            for host, port in (s.rsplit(":", 1) for s in REDIS_SENTINELS.split(","))
        ],
        "master_name": os.environ.get("REDIS_SENTINEL_MASTER", "mymaster"),
    }
elif REDIS_URL:
    REDIS_HOST = {"address": REDIS_URL}  # redis://, rediss:// (TLS) or unix://
    if os.environ.get("REDIS_TLS_CA"):
        # rediss:// to a server whose certificate a private CA signed (PEM file).
        REDIS_HOST["ssl_ca_certs"] = os.environ["REDIS_TLS_CA"]
else:
    REDIS_HOST = None

if REDIS_HOST:
    CHANNEL_LAYERS = {
        "default": {
            # Redis Pub/Sub: each process subscribes once to the groups it has members in
            # (the wscommands hub fans out locally), a broadcast is one PUBLISH, and
            # subscriptions are renewed by redis-py when Redis comes back, even empty.
            # docs/scaling.md has the comparison with RedisChannelLayer.
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                # redis-py's pool allows 100 connections by default; bursts need more. The
                # health check pings a connection idle for 2 s before using it, so the first
                # message after a Redis restart does not go to a dead socket.
                "hosts": [
                    {
                        **REDIS_HOST,
                        "socket_timeout": 30,
                        "max_connections": 1000,
                        "health_check_interval": 2,
                    }
                ],
                "prefix": "wscommands-asgi",
            },
        }
    }
    WSCOMMANDS = {"BACKEND": "redis", "REDIS_URL": REDIS_HOST}
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": 1000},
        }
    }
    WSCOMMANDS = {}

# Presence: the demo shows who is online; WSCOMMANDS_PRESENCE_TTL bounds how long a crashed
# process stays listed (seconds), WSCOMMANDS_PRESENCE_GRACE how long a leave is held (a user
# back within it, e.g. after a restart, is never seen leaving). Unset: the library's defaults.
WSCOMMANDS["PRESENCE_EVENTS"] = os.environ.get("WSCOMMANDS_PRESENCE_EVENTS", "1") == "1"
for _name in ("PRESENCE_TTL", "PRESENCE_GRACE"):
    if os.environ.get(f"WSCOMMANDS_{_name}"):
        WSCOMMANDS[_name] = float(os.environ[f"WSCOMMANDS_{_name}"])
WSCOMMANDS["COMMANDS"] = {"legacy_echo": "project.demo.legacy.legacy_echo"}
# The built-in describe command (the API with its schemas): staff users only by default.
WSCOMMANDS["DESCRIBE"] = os.environ.get("WSCOMMANDS_DESCRIBE", "staff")
# Prometheus may read /metrics with this bearer token (docs/operations.md); staff always may.
if os.environ.get("WSCOMMANDS_METRICS_TOKEN"):
    WSCOMMANDS["METRICS_TOKEN"] = os.environ["WSCOMMANDS_METRICS_TOKEN"]
# Hardening limits (docs/reliability.md), tunable per deployment as JSON, e.g.
# WSCOMMANDS_LIMITS='{"RATE_LIMIT": 20, "ALLOWED_ORIGINS": ["https://chat.example.com"]}'.
WSCOMMANDS.update(json.loads(os.environ.get("WSCOMMANDS_LIMITS") or "{}"))

# Served over HTTPS by a proxy that terminates TLS (docker-compose.yml's nginx): trust its
# X-Forwarded-Proto (the proxy overwrites it), send cookies over HTTPS only, redirect plain
# HTTP, and tell browsers to use HTTPS from now on (HSTS; ignored over a certificate the
# browser does not trust, so a self-signed localhost try does not pin anything).
if os.environ.get("DJANGO_HTTPS", "") == "1":
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = True
    # Prometheus scrapes each process directly, over the compose network, not through nginx.
    SECURE_REDIRECT_EXEMPT = [r"^metrics$"]
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_PRELOAD = True

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"django.contrib.auth.password_validation.{name}"}
    for name in (
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    )
]
# Login throttling (django-axes): 5 failed sign-ins for one username from one IP lock that
# pair out for 15 minutes (HTTP 429), so a password cannot be guessed fast and nobody can lock
# a user out from everywhere; the proxy's per-IP request limit on the login page
# (deploy/nginx.conf) slows spraying many usernames. Attempts are stored in the database, so
# every process counts them together; a successful sign-in resets the count.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_DISABLE_ACCESS_LOG = True  # no row per successful sign-in
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# One handler (daphne's own is replaced): each line once, with the connection and user;
# WSCOMMANDS_LOG_JSON=1 writes JSON lines (docs/operations.md).
LOGGING = logging_config(json_lines=os.environ.get("WSCOMMANDS_LOG_JSON") == "1")
