"""`reveal_bidi`: shows Unicode bidi controls as visible codes (apps.core.text).

A builtin of the template engine (settings TEMPLATES "builtins"), applied once per page family
around the whole document in the base templates (`{% filter reveal_bidi %}`), so every tenant- or
DICOM-supplied value a page shows goes through it without each template having to remember."""

from __future__ import annotations

from typing import Any

from django import template

from apps.core.text import reveal_bidi_controls

register = template.Library()


@register.filter(is_safe=True)
def reveal_bidi(value: Any) -> str:
    # is_safe: the replacement adds no HTML metacharacters, so escaped input stays escaped.
    return reveal_bidi_controls(str(value))
