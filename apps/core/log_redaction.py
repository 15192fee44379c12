"""Secrets and patient data kept out of log lines (docs/security.md, "Cloud film links").

A film link's token is its path (`/film/<token>`): whoever reads a log line with it, and has the
code, holds the patient's images. Query strings carry patient data (QIDO-RS `PatientName=`,
`PatientID=`, API filters). So every URL that reaches a log (gunicorn's access log, Django's
"Not Found: /path" warnings) is written with the token replaced and the query values dropped; the
parameter names stay, which is what one needs to read a log. Plain Python, no Django: the gunicorn
logger class (config.gunicorn_logging) uses it before Django is loaded.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"
# The token segment after /film/ (a film link's whole secret), wherever a URL appears in a line.
FILM_TOKEN = re.compile(r"(/film/)[^/?#\s\"']+")
# One query parameter's value: after ? or & up to the next &, #, space or quote.
QUERY_VALUE = re.compile(r"([?&][^=&#\s\"']*=)[^&#\s\"']*")


def redact_url(text: str) -> str:
    """`text` (a path, URL, request line or whole log message) without film tokens or query values."""
    return QUERY_VALUE.sub(rf"\g<1>{REDACTED}", FILM_TOKEN.sub(rf"\g<1>{REDACTED}", text))


def redact_query_string(query: str) -> str:
    """A bare query string ("a=1&b=2", no leading "?") with its values dropped: "a=[redacted]&b=[redacted]"."""
    if not query:
        return query
    return redact_url(f"?{query}")[1:]


class RedactUrlsFilter(logging.Filter):
    """A logging filter that writes each record's message with redact_url applied (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_url(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True
