"""The JSON parser of the engine call-back: the REST API's parser (apps.core.parsers) with the tighter
bounds of a call-back, which vendor systems reach from outside the platform before any token is
checked: a body too large is 413 ``payload_too_large``, one nested too deep 400 ``parse_error``
(docs/security.md, "AI engines and callbacks")."""

from __future__ import annotations

from apps.core.parsers import JSONParser

# A call-back is a status, up to 20 series UIDs, an error text and a small summary: a few kilobytes.
MAX_CALLBACK_BODY_BYTES = 256 * 1024
# The call-back's own shape nests three levels; a summary may add a few.
MAX_CALLBACK_NESTING_DEPTH = 16


class CallbackJSONParser(JSONParser):
    max_nesting = MAX_CALLBACK_NESTING_DEPTH
    max_body_bytes = MAX_CALLBACK_BODY_BYTES
