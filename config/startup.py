"""What a web process does once, in one thread, before its server threads take requests."""

from __future__ import annotations

import gc

from django.conf import settings
from django.urls import get_resolver
from django.utils import translation


def url_configurations_import() -> None:
    """Import both URL configurations (public and tenant schema), and so every view module they name.

    Left to the first requests, gunicorn's threads import them at the same time, and when two
    threads import modules that import each other (pydicom's do), Python gives one of them a
    partially initialised module instead of waiting: that process then answers 500 to every
    request it serves (seen in the multi-node run, docs/benchmarks.md).
    """
    for urlconf in (settings.PUBLIC_SCHEMA_URLCONF, settings.ROOT_URLCONF):
        get_resolver(urlconf).url_patterns  # noqa: B018 - the property imports the module and its includes


def web_process_prepare() -> None:
    """Everything a web process loads once, loaded before the first request rather than during it:
    the URL configurations, each language's message catalogs and the rendering stack; then the
    objects that live as long as the process are moved out of the garbage collector's sight
    (`gc.freeze`), so its full collections, which run every few hundred requests, no longer walk
    them (docs/benchmarks.md "The per-request floor")."""
    from apps.dicom.rendering import warm_up

    url_configurations_import()
    for code, _name in settings.LANGUAGES:
        with translation.override(code):
            translation.gettext("Study")
    warm_up()
    gc.collect()
    gc.freeze()
