import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
application = get_asgi_application()

from config.startup import url_configurations_import  # noqa: E402 - needs the settings configured above

url_configurations_import()
