"""The installed OHIF build (infra/viewer.sh, docs/viewer.md): its page and what its policy must allow.

The shipped build is compiled for the site root: its index.html and its script loader name every
asset by an absolute path (`/app.bundle.<hash>.js`, chunks, wasm, workers). So the assets are served
at the root of each tenant domain by WhiteNoise (`WHITENOISE_ROOT`, the build's dist folder), and only
the page, its routes and its configuration live under `/viewer/`.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache
from pathlib import Path

from django.conf import settings

INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


class ViewerNotInstalled(RuntimeError):
    pass


def dist_dir() -> Path:
    return Path(settings.VIEWER_DIST_DIR)


@cache
def index_html() -> bytes:
    """OHIF's own index.html, unchanged; its routes under /viewer/ all answer with it."""
    path = dist_dir() / "index.html"
    if not path.is_file():
        raise ViewerNotInstalled(f"The viewer is not installed in {path.parent} (run bash infra/viewer.sh).")
    return path.read_bytes()


@cache
def inline_script_hashes() -> list[str]:
    """CSP source expressions for the page's inline scripts (CSP Level 3 §8.4 hash-source), so the
    page runs them without allowing any other inline script."""
    return [f"'sha256-{base64.b64encode(hashlib.sha256(body).digest()).decode()}'"
            for body in INLINE_SCRIPT.findall(index_html())]

