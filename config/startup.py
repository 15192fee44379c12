"""What a web process does once, in one thread, before its server threads take requests."""

from __future__ import annotations

from django.conf import settings
from django.urls import get_resolver


def url_configurations_import() -> None:
    """Import both URL configurations (public and tenant schema), and so every view module they name.

    Left to the first requests, gunicorn's threads import them at the same time, and when two
    threads import modules that import each other (pydicom's do), Python gives one of them a
    partially initialised module instead of waiting: that process then answers 500 to every
    request it serves (seen in the multi-node run, docs/benchmarks.md).
    """
    for urlconf in (settings.PUBLIC_SCHEMA_URLCONF, settings.ROOT_URLCONF):
        get_resolver(urlconf).url_patterns  # noqa: B018 - the property imports the module and its includes
