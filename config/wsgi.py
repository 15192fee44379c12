import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
application = get_wsgi_application()

from config.startup import web_process_prepare  # noqa: E402 - needs the settings configured above

web_process_prepare()
