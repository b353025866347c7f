"""Envelope settings, configured only by environment variables (CONTRACT §1).

Nothing set: SQLite beside manage.py and the in-memory channel layer, so one
command gives a working product. DATABASE_URL / REDIS_URL switch to PostgreSQL
and the Redis channel layer for real deployments.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is off")
    # Development only: a fixed, obviously insecure key so sessions survive restarts.
    SECRET_KEY = "django-insecure-envelope-development-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    # daphne first: its runserver serves HTTP and WebSockets in development.
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "channels",
    "accounts",
    "games",
    "leaderboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # daphne serves no static files: WhiteNoise does, with caching headers.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------
DATABASES = {
    "default": dj_database_url.config(
        env="DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
    )
}
# PostgreSQL connections per server process, shared by its request threads,
# its WebSocket reads and its recovery checks (README, "Production").
DATABASE_POOL_SIZE = int(os.environ.get("DATABASE_POOL_SIZE", "10"))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Async consumers and the request thread share the file: wait rather than fail.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
else:
    # A pool, not persistent connections: under ASGI a request may run on a
    # new thread each time, and a connection kept per thread outlived its
    # thread (hundreds of requests filled PostgreSQL's max_connections) and
    # cost every request a new connection. With health checks on, Django has
    # the pool check a connection before lending it, so one broken by a
    # database restart is replaced.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DATABASE_POOL_SIZE,
        "timeout": 10,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channel layer and cache ----------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
# redis-py's asyncio pool defaults to 100 connections, and a burst of a few
# hundred sockets connecting at once then fails with MaxConnectionsError.
REDIS_MAX_CONNECTIONS = int(os.environ.get("REDIS_MAX_CONNECTIONS", "1000"))

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # socket_timeout above channels_redis' 5 s blocking pop: redis-py 8
                # reads with a 5 s timeout by default, which killed idle sockets (1011).
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "max_connections": REDIS_MAX_CONNECTIONS,
                        "socket_timeout": 15,
                    }
                ],
                # A socket's group membership is refreshed on every join; a day
                # outlives any ceremony, so a long show never silently drops a
                # socket from its game's group (the default is 24 h as well).
                "group_expiry": 86400,
                # Per-channel queue: a reveal plus a reaction storm must fit.
                # Overflowing messages are dropped (at-most-once); seq + resume
                # makes clients converge anyway.
                "capacity": 500,
                "expiry": 60,
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "envelope",
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 500}}
    }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Auth -------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 8},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "config.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

# --- Envelope ---------------------------------------------------------------
ENVELOPE_REACTIONS = env_list("ENVELOPE_REACTIONS", ["🔥", "😍", "😱", "💀", "👏", "🍿"])
ENVELOPE_WS_TICKET_MAX_AGE = 60
# Events kept per game for resume (CONTRACT §4: at least the last 500).
ENVELOPE_EVENT_RETENTION = int(os.environ.get("ENVELOPE_EVENT_RETENTION", "500"))
# How often each server process checks the event log for events its sockets
# missed (a lost channel-layer message, a Redis restart): the longest a lost
# event can be late (leaderboard.recovery).
ENVELOPE_RECOVERY_SECONDS = float(os.environ.get("ENVELOPE_RECOVERY_SECONDS", "2"))
ENVELOPE_LOGIN_FAILURE_LIMIT = int(os.environ.get("ENVELOPE_LOGIN_FAILURE_LIMIT", "5"))
ENVELOPE_LOGIN_IP_FAILURE_LIMIT = int(os.environ.get("ENVELOPE_LOGIN_IP_FAILURE_LIMIT", "30"))
ENVELOPE_JOIN_FAILURE_LIMIT = int(os.environ.get("ENVELOPE_JOIN_FAILURE_LIMIT", "10"))
ENVELOPE_FAILURE_WINDOW = int(os.environ.get("ENVELOPE_FAILURE_WINDOW", "600"))

# --- I18N, static -----------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
# Serve straight from static/ too, so `runserver`, tests and a daphne started
# without collectstatic all work; production runs collectstatic (README).
WHITENOISE_USE_FINDERS = True

# --- Security (CONTRACT §1: check --deploy is clean with DEBUG off) ----------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # the JS client reads it to send X-CSRFToken
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    # SECURE_COOKIES=0 only for end-to-end tests over plain http on loopback.
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
    },
}
