"""Fast test settings: real PostgreSQL and Redis on loopback unless the environment says otherwise."""

import os

os.environ.setdefault("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/imaging_cloud")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")

from config.settings.base import *  # noqa: E402,F401,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
DEBUG = False
# Webhook retries in seconds, not minutes, so the failure path runs to its end in a test.
WEBHOOK_MAX_ATTEMPTS = 3
WEBHOOK_RETRY_BASE_SECONDS = 1
# The suite's webhook receivers are HTTP servers on loopback; the tests of the network policy
# (tests/consults/test_webhook_destinations.py) clear this to prove loopback is refused by default.
WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
