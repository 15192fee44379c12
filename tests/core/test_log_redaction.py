"""apps.core.log_redaction: URLs in log lines lose film tokens and query values, keep the rest."""

from __future__ import annotations

import logging

from apps.core.log_redaction import RedactUrlsFilter, redact_query_string, redact_url


def test_a_film_path_keeps_its_shape_without_the_token():
    assert redact_url("/film/AbC-123_x/sheets/1.jpg") == "/film/[redacted]/sheets/1.jpg"


def test_a_request_line_keeps_parameter_names_and_drops_their_values():
    assert (redact_url("GET /dicomweb/studies?PatientName=DOE%5EJ*&limit=10 HTTP/1.1")
            == "GET /dicomweb/studies?PatientName=[redacted]&limit=[redacted] HTTP/1.1")


def test_a_full_url_as_in_a_referer_is_redacted():
    assert redact_url("https://imaging.example.com/film/tok3n?download=1") == (
        "https://imaging.example.com/film/[redacted]?download=[redacted]")


def test_a_bare_query_string_keeps_names_only():
    assert redact_query_string("PatientID=123&StudyDate=20260101") == "PatientID=[redacted]&StudyDate=[redacted]"
    assert redact_query_string("") == ""


def test_paths_without_secrets_are_unchanged():
    assert redact_url("GET /api/v1/films/12/links/ HTTP/1.1") == "GET /api/v1/films/12/links/ HTTP/1.1"


def test_the_logging_filter_rewrites_the_formatted_message_and_keeps_the_record():
    record = logging.LogRecord("django.request", logging.WARNING, __file__, 1, "%s: %s",
                               ("Forbidden", "/film/s3cret/images.zip"), None)
    assert RedactUrlsFilter().filter(record) is True
    assert record.getMessage() == "Forbidden: /film/[redacted]/images.zip"


def test_gunicorns_error_log_lines_are_redacted_too():
    from gunicorn.config import Config

    from config.gunicorn_logging import RedactingGunicornLogger

    logger = RedactingGunicornLogger(Config())
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logger.error_log.addHandler(handler)
    try:
        logger.error("Error handling request %s %s", "GET", "/film/s3cret/images.zip?x=1")
    finally:
        logger.error_log.removeHandler(handler)
    assert seen == ["Error handling request GET /film/[redacted]/images.zip?x=[redacted]"]
