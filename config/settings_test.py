"""Settings for the test suite: config.settings with safe test defaults.

DATABASE_URL and REDIS_URL pass through, so CI runs the suite on the real
PostgreSQL and Redis.
"""

import os

os.environ.setdefault("SECRET_KEY", "envelope-test-secret-key-not-for-production-0123456789")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")

from config.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast tests

# The suite's own process runs ORM code on many short-lived threads (an event
# loop and its executor per async test) that end without closing their
# connection: a pool would never get those back. Real servers (the e2e and
# fault tests start daphne on config.settings) use the pool.
DATABASES["default"].get("OPTIONS", {}).pop("pool", None)  # noqa: F405
