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
