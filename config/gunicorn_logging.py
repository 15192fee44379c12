"""gunicorn's logger with URLs redacted (infra/start/web.sh passes it as --logger-class): no film
token and no query value reaches an access log line, nor an error log line such as gunicorn's own
"Error handling request /film/<token>/images.zip". See apps.core.log_redaction for the rule and
docs/security.md for why."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from gunicorn.glogging import Logger

from apps.core.log_redaction import REDACTED, RedactUrlsFilter, redact_query_string, redact_url

# Atoms that hold the whole query string alone (no "?"), so redact_url would not see its values.
QUERY_STRING_ATOMS = frozenset({"q", "{query_string}e"})
# Request headers and environ entries that are credentials in their own right.
SECRET_ATOMS = frozenset({"{authorization}i", "{cookie}i", "{http_authorization}e", "{http_cookie}e"})


class RedactingGunicornLogger(Logger):
    def setup(self, cfg: Any) -> None:
        super().setup(cfg)  # also run again on a configuration reload: add the filter once
        if not any(isinstance(existing, RedactUrlsFilter) for existing in self.error_log.filters):
            self.error_log.addFilter(RedactUrlsFilter())

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        for name, value in atoms.items():
            if not isinstance(value, str):
                continue
            if name in SECRET_ATOMS:
                atoms[name] = REDACTED
            elif name in QUERY_STRING_ATOMS:
                atoms[name] = redact_query_string(value)
            else:  # the request line, path, referer and any header or environ entry holding a URL
                atoms[name] = redact_url(value)
        return atoms
