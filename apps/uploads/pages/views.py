"""The clinic's upload page (session login): drop files, folders and zips; each file goes to an
upload session over the tus endpoints (apps.uploads.api.tus_views), then the page finishes the
session and shows what was stored, what was a duplicate and why each refused file was refused
(docs/uploads.md). The page is static HTML and one same-origin script; it speaks the browser's
language among settings.LANGUAGES."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import render
from django.utils import translation

from apps.uploads.api.views import UPLOADER_ROLES
from apps.uploads.reasons import REFUSAL_REASONS, UNKNOWN_REASON

# Files sent at once: enough to keep the line busy with small DICOM files, few enough that the
# browser (and the server's workers) are not flooded by a 2,000-file study.
PARALLEL_TRANSFERS = 4
# A PATCH carries at most this much, so a dropped connection costs at most one piece.
PIECE_BYTES = 8 * 1024 * 1024


@login_required
def upload_page(request: HttpRequest) -> HttpResponse:
    if getattr(request.user, "role", None) not in UPLOADER_ROLES:
        return HttpResponseForbidden("Your role may not upload studies.")
    language = translation.get_language_from_request(request, check_path=False)
    with translation.override(language):
        config = {
            "parallel": PARALLEL_TRANSFERS, "pieceBytes": PIECE_BYTES, "maxFileBytes": settings.UPLOAD_MAX_FILE_BYTES,
            "reasons": {code: str(text) for code, text in REFUSAL_REASONS.items()}, "unknownReason": str(UNKNOWN_REASON),
        }
        response = render(request, "uploads/upload.html", {"upload_config": config, "language": translation.get_language()})
    response["Content-Language"] = language
    return response
