"""Production: secrets and hosts must come from the environment; HTTPS is assumed in front."""

import os

# Checked before the shared settings load: without SECRET_KEY they would make an embedded key.
if not os.environ.get("SECRET_KEY"):
    raise RuntimeError("SECRET_KEY must be set in production")

from config.settings.base import *  # noqa: E402,F401,F403
from config.settings.base import env_bool, env_int  # noqa: E402

DEBUG = False
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
# The TLS-terminating proxy says the original scheme; only that proxy may set this header.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Plain HTTP is answered with a redirect to HTTPS (health probes excepted: they come over plain HTTP
# from inside the cluster), and browsers are told to use HTTPS only (docs/security.md, "Cloud film
# links": the film link's token is in its path). Preload stays off until the domain is submitted
# to the browsers' preload lists on purpose.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Django warns while preload is off; submitting a domain to the preload lists is a deliberate,
# hard-to-undo decision of each deployment, not a default.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
# Patients' film links are printed and sent as https:// unless a deployment says otherwise.
FILM_LINK_HTTPS = env_bool("FILM_LINK_HTTPS", True)
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
