"""Development and the embedded default: `python manage.py …` on a laptop."""

from config.settings.base import *  # noqa: F401,F403
from config.settings.base import env_bool

DEBUG = env_bool("DEBUG", True)
EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
