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
# Every test signs in from 127.0.0.1 and failed sign-ins are kept for LOGIN_LOCKOUT_MINUTES across
# runs of a reused database: a high limit keeps one test's failures from locking the next one out.
# The throttling tests (tests/accounts/test_sign_in_throttling.py) set their own limit.
AXES_FAILURE_LIMIT = 100
