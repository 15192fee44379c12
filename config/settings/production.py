"""Production: secrets and hosts must come from the environment."""

import os

# Checked before the shared settings load: without SECRET_KEY they would make an embedded key.
if not os.environ.get("SECRET_KEY"):
    raise RuntimeError("SECRET_KEY must be set in production")

from config.settings.base import *  # noqa: E402,F401,F403

DEBUG = False
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
