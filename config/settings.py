"""Envelope settings, configured only by environment variables (README, Configuration).

Nothing set: SQLite beside manage.py and the in-memory channel layer, so one
command gives a working product. DATABASE_URL / REDIS_URL switch to PostgreSQL
and the Redis channel layer for real deployments.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.logs import logging_config

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
    # Our server (server/) before daphne: its runserver, daphne's with our
    # Server class, is the one `manage.py runserver` finds.
    "server",
    # daphne: the server underneath, whose runserver ours extends.
    "daphne",
    "config.apps.EnvelopeAdminConfig",  # django.contrib.admin, rate-limited login
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "channels",
    # Its system checks vet the cache the rate limits count in (accounts.limits).
    "django_ratelimit",
    "accounts",
    "games",
    "leaderboard",
]

MIDDLEWARE = [
    # Counts every response by status for /metrics (config.metrics).
    "config.metrics.http_requests_middleware",
    "django.middleware.security.SecurityMiddleware",
    # PostgreSQL or Redis away: a friendly 503 page, not a 500 (config.outages).
    "config.outages.ServiceOutageMiddleware",
    # daphne serves no static files: WhiteNoise does, with caching headers.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
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
# its WebSocket reads and its recovery checks (README, "Sizing").
DATABASE_POOL_SIZE = int(os.environ.get("DATABASE_POOL_SIZE", "10"))
# How long a request waits for a pooled connection before it answers 503
# SERVICE_UNAVAILABLE: while PostgreSQL is down, every request waits this long.
DATABASE_POOL_TIMEOUT = float(os.environ.get("DATABASE_POOL_TIMEOUT", "3"))
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
        "timeout": DATABASE_POOL_TIMEOUT,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channel layer and cache ----------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
# Redis connections per server process (leaderboard/redis_pool.py). The
# channel layer and presence share one pool of REDIS_POOL_SIZE (its receive
# loop holds one of them in a blocking pop); the Django cache, used from
# request threads, has one of REDIS_CACHE_POOL_SIZE. Both wait up to
# REDIS_POOL_TIMEOUT seconds for a free connection when all are busy (a
# burst queues instead of failing with MaxConnectionsError), and close
# connections idle for REDIS_POOL_IDLE_SECONDS, so a burst's connections
# are given back. Redis allows 10,000 clients by default: the sizes times the
# server processes must stay well below it.
REDIS_POOL_SIZE = int(os.environ.get("REDIS_POOL_SIZE", "50"))
REDIS_CACHE_POOL_SIZE = int(os.environ.get("REDIS_CACHE_POOL_SIZE", "10"))
REDIS_POOL_TIMEOUT = float(os.environ.get("REDIS_POOL_TIMEOUT", "10"))
REDIS_POOL_IDLE_SECONDS = float(os.environ.get("REDIS_POOL_IDLE_SECONDS", "5"))

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # channels-redis on the process's shared, bounded pool, whose
            # options (socket timeout above the layer's 5 s blocking pop,
            # retries, idle trimming) are in leaderboard/redis_pool.py.
            "BACKEND": "leaderboard.redis_pool.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": REDIS_URL}],
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
            "OPTIONS": {
                # One pool per process, not one per cache object Django makes.
                "pool_class": "leaderboard.redis_pool.CachePool",
                "max_connections": REDIS_CACHE_POOL_SIZE,
                "timeout": REDIS_POOL_TIMEOUT,
            },
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
    "DEFAULT_PARSER_CLASSES": ["config.parsers.StrictJSONParser"],
    "EXCEPTION_HANDLER": "config.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

# --- Envelope ---------------------------------------------------------------
ENVELOPE_REACTIONS = env_list("ENVELOPE_REACTIONS", ["🔥", "😍", "😱", "💀", "👏", "🍿"])
ENVELOPE_WS_TICKET_MAX_AGE = 60
# Events kept per game for resume (docs/protocol.md: at least the last 500).
ENVELOPE_EVENT_RETENTION = int(os.environ.get("ENVELOPE_EVENT_RETENTION", "500"))
# Names listed in `joined.online` and in each `presence:diff` list; beyond it
# the lists are a sample and `onlineCount` is the count (docs/protocol.md).
# Listing everyone made a burst of N joins cost O(N²) bytes.
ENVELOPE_ONLINE_LIST_LIMIT = int(os.environ.get("ENVELOPE_ONLINE_LIST_LIMIT", "50"))
# How often each server process checks the event log for events its sockets
# missed (a lost channel-layer message, a Redis restart): the longest a lost
# event can be late (leaderboard.recovery).
ENVELOPE_RECOVERY_SECONDS = float(os.environ.get("ENVELOPE_RECOVERY_SECONDS", "2"))
# Server-Sent Events (GET /api/games/{id}/events, docs/protocol.md): a
# keep-alive comment this often keeps proxies from closing an idle stream;
# open streams per user and server process; frames a stream may have waiting
# for a client that stopped reading before it is dropped (EventSource resumes).
ENVELOPE_SSE_KEEPALIVE_SECONDS = float(os.environ.get("ENVELOPE_SSE_KEEPALIVE_SECONDS", "15"))
ENVELOPE_SSE_STREAMS_PER_USER = int(os.environ.get("ENVELOPE_SSE_STREAMS_PER_USER", "8"))
ENVELOPE_SSE_MAX_QUEUED = int(os.environ.get("ENVELOPE_SSE_MAX_QUEUED", "1000"))
ENVELOPE_LOGIN_FAILURE_LIMIT = int(os.environ.get("ENVELOPE_LOGIN_FAILURE_LIMIT", "5"))
ENVELOPE_LOGIN_IP_FAILURE_LIMIT = int(os.environ.get("ENVELOPE_LOGIN_IP_FAILURE_LIMIT", "30"))
ENVELOPE_JOIN_FAILURE_LIMIT = int(os.environ.get("ENVELOPE_JOIN_FAILURE_LIMIT", "10"))
ENVELOPE_JOIN_IP_FAILURE_LIMIT = int(os.environ.get("ENVELOPE_JOIN_IP_FAILURE_LIMIT", "30"))
# Registrations per window, per address (a party registers from one Wi-Fi
# address) and per username asked for.
ENVELOPE_REGISTER_IP_LIMIT = int(os.environ.get("ENVELOPE_REGISTER_IP_LIMIT", "20"))
ENVELOPE_REGISTER_LIMIT = int(os.environ.get("ENVELOPE_REGISTER_LIMIT", "5"))
# Guest join (name + PIN): wrong PINs per window for one name of one game and
# per address, and guests made per address (a whole party joins from one).
ENVELOPE_GUEST_PIN_FAILURE_LIMIT = int(os.environ.get("ENVELOPE_GUEST_PIN_FAILURE_LIMIT", "5"))
ENVELOPE_GUEST_PIN_IP_FAILURE_LIMIT = int(
    os.environ.get("ENVELOPE_GUEST_PIN_IP_FAILURE_LIMIT", "30")
)
ENVELOPE_GUEST_IP_LIMIT = int(os.environ.get("ENVELOPE_GUEST_IP_LIMIT", "100"))
ENVELOPE_FAILURE_WINDOW = int(os.environ.get("ENVELOPE_FAILURE_WINDOW", "600"))
# Django's RedisCache increments atomically (INCRBY), which is what
# django-ratelimit's "not officially supported" warning is about. Without
# REDIS_URL there is one process, so its local memory cache is shared by all
# of its requests.
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.W001"]
if not REDIS_URL:
    SILENCED_SYSTEM_CHECKS.append("django_ratelimit.E003")

# --- Importing a ceremony from Wikipedia (games.wikipedia) --------------------
# The MediaWiki API the page's wikitext is fetched from; `{lang}` is the
# language of the pasted https://<lang>.wikipedia.org/wiki/... URL. Tests
# point it at a local stand-in.
WIKIPEDIA_API_URL = os.environ.get("WIKIPEDIA_API_URL", "https://{lang}.wikipedia.org/w/api.php")
WIKIPEDIA_TIMEOUT = float(os.environ.get("WIKIPEDIA_TIMEOUT", "10"))
# A ceremony page's wikitext is ~100 KB (read in well under a second);
# anything far bigger is not one, and would only keep a server thread busy.
WIKIPEDIA_MAX_BYTES = int(os.environ.get("WIKIPEDIA_MAX_BYTES", str(2 * 1024 * 1024)))

# --- Request limits and the proxies in front ----------------------------------
# Request bodies over 1 MiB get 413 PAYLOAD_TOO_LARGE (config.http_limits).
MAX_REQUEST_BODY_BYTES = 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES
# Addresses or networks of the proxies in front (nginx): only their
# X-Forwarded-For / X-Forwarded-Proto count (config.proxies). None by default,
# so a client cannot choose the address the rate limits see.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", [])

# --- Operations: metrics, health, drain, logs (docs/operations.md) -------------
# Prometheus metrics at /metrics, served to these addresses or networks only
# (the client address config.proxies yields); off: nothing is counted.
METRICS_ENABLED = env_bool("METRICS_ENABLED", True)
METRICS_ALLOWED_IPS = env_list("METRICS_ALLOWED_IPS", ["127.0.0.1", "::1"])
# On SIGTERM: readiness 503 and WebSocket upgrades refused at once; then
# ENVELOPE_DRAIN_NOTICE_SECONDS for a load balancer polling /readyz to notice;
# then committed events are delivered and every socket closes with 1012; all
# within ENVELOPE_DRAIN_SECONDS (systemd's TimeoutStopSec must be above it).
ENVELOPE_DRAIN_SECONDS = float(os.environ.get("ENVELOPE_DRAIN_SECONDS", "10"))
ENVELOPE_DRAIN_NOTICE_SECONDS = float(os.environ.get("ENVELOPE_DRAIN_NOTICE_SECONDS", "0"))
if not 0 <= ENVELOPE_DRAIN_NOTICE_SECONDS < ENVELOPE_DRAIN_SECONDS:
    raise ImproperlyConfigured(
        "ENVELOPE_DRAIN_NOTICE_SECONDS must be at least 0 and below ENVELOPE_DRAIN_SECONDS"
    )
# Probes speak plain HTTP to the process: no redirect to HTTPS for them.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]

# --- I18N, static -----------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Where collectstatic puts the files nginx serves at /static/ (deploy/nginx/).
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT") or BASE_DIR / "staticfiles")
# Serve straight from static/ too, so `runserver`, tests and a daphne started
# without collectstatic all work; production runs collectstatic (README).
WHITENOISE_USE_FINDERS = True

# --- Security (README: check --deploy is clean with DEBUG off) ----------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # the JS client reads it to send X-CSRFToken
if not DEBUG:
    # No SECURE_PROXY_SSL_HEADER: it would believe X-Forwarded-Proto from any
    # client. config.proxies sets the scheme from a trusted proxy's header.
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

# --- Content-Security-Policy and Permissions-Policy (every response) ---------
# Strict: scripts, styles and connections from this site only, no inline code
# and no eval. Pages pass data through `json_script` (a JSON data block, which
# CSP does not treat as script) and the JS sets styles through the CSSOM
# (`el.style.x = ...`), which CSP allows; an inline `style="..."`, `<style>`,
# `<script>` or `on*=` handler is blocked, and tests/browser/test_csp.py fails
# on any violation. django-csp 4 format: directive name -> list of sources.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        # Nominee pictures are http(s) URLs from the ceremony file, on any host
        # (static/js/picks.js). On an https site the browser upgrades an http
        # picture to https before checking this (mixed-content autoupgrade).
        "img-src": ["'self'", "https:"],
        # 'self' covers ws:// and wss:// on this host and port too (CSP3), so
        # the live board's socket needs nothing more.
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
# Features the pages never use, switched off for them and anything they embed
# (an empty list is `feature=()`). The host page's "Copy link" needs
# clipboard-write, which stays at its default (this site only).
PERMISSIONS_POLICY: dict[str, list[str]] = {
    "accelerometer": [],
    "camera": [],
    "display-capture": [],
    "geolocation": [],
    "gyroscope": [],
    "hid": [],
    "magnetometer": [],
    "microphone": [],
    "midi": [],
    "payment": [],
    "serial": [],
    "usb": [],
}

# Plain text, or one JSON object per line with LOG_FORMAT=json (config.logs).
LOGGING = logging_config(os.environ.get("LOG_FORMAT", "text"), os.environ.get("LOG_LEVEL", "INFO"))
