"""The patient's film page on the platform's public domain: `/film/<token>`, no account.

The token finds the tenant and film (public schema); the access code, once right, binds this
browser session to that one link for FILM_SESSION_MINUTES. Everything after that runs in the
tenant's schema, answers `Cache-Control: private, no-store`, and is written to the tenant's audit
trail. The token opens only its own film's study: frames, sheets, report and downloads are served
here, never through DICOMweb. Page titles and URLs carry no patient data.
"""

from __future__ import annotations

import tempfile
import time
import zipfile
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils import translation
from django.views.decorators.csrf import csrf_protect
from pydicom.fileset import FileSet

from apps.archive.retrieval import original_bytes, rendered
from apps.archive.selectors import InstanceFile, instances_for_retrieval
from apps.audit.actions import AuditAction
from apps.core.requests import client_ip
from apps.dicom.modalities import NON_IMAGE_MODALITIES
from apps.dicom.rendering import RenderOptions
from apps.dicom.window_presets import VIEWER_PRESETS, WINDOW_PRESETS
from apps.film_links.models import FilmLink
from apps.films.models import Film, FilmState
from apps.films.services import (
    LinkLocked,
    LinkLockedPermanently,
    LinkNotFound,
    WrongAccessCode,
    film_access_record,
    film_link_open,
    film_link_resolve,
)
from apps.storage.tenant_storage import TenantStorage, storage_for
from tenants.context import tenant_entered

SESSION_KEY = "film_links"
NO_STORE = "private, no-store"


def _language(request: HttpRequest) -> str:
    return translation.get_language_from_request(request, check_path=False)


def _private(response: HttpResponseBase, language: str | None = None) -> HttpResponseBase:
    response["Cache-Control"] = NO_STORE
    # The URL holds the token: never send it to another site (same-origin keeps the CSRF Origin check working).
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex"
    if language:
        response["Content-Language"] = language
    return response


def _session_grants(request: HttpRequest, link: FilmLink) -> bool:
    granted = request.session.get(SESSION_KEY, {})
    return float(granted.get(str(link.pk), 0)) > time.time()


def _grant_session(request: HttpRequest, link: FilmLink) -> None:
    minutes = float(settings.FILM_SESSION_MINUTES)
    until = min(time.time() + minutes * 60, link.expires_at.timestamp())
    granted = dict(request.session.get(SESSION_KEY, {}))
    granted[str(link.pk)] = until
    request.session[SESSION_KEY] = granted
    request.session.cycle_key()


def _invalid(request: HttpRequest, status: int = 404) -> HttpResponseBase:
    with translation.override(_language(request)):
        return _private(render(request, "films/invalid.html", status=status))


FilmView = Callable[..., HttpResponseBase]


def film_access(view: FilmView) -> FilmView:
    """Resolve the link, require the session it opened, and run `view` in the tenant's schema."""

    @wraps(view)
    def wrapper(request: HttpRequest, token: str, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            link = film_link_resolve(token)
        except LinkNotFound:
            return _invalid(request)
        if not _session_grants(request, link):
            return _private(HttpResponse(status=403))
        with tenant_entered(link.tenant):
            film = Film.objects.filter(pk=link.film_id).first()
            if film is None:
                return _invalid(request)
            return _private(view(request, link, film, *args, **kwargs))

    return wrapper


@csrf_protect
def film_page(request: HttpRequest, token: str) -> HttpResponseBase:
    language = _language(request)
    with translation.override(language):
        try:
            link = film_link_resolve(token)
        except LinkNotFound:
            return _invalid(request)
        error, status, retry_after = "", 200, None
        if request.method == "POST":
            try:
                link = film_link_open(token=token, code=request.POST.get("code", ""),
                                      client_ip=client_ip(request) or "0.0.0.0")
                _grant_session(request, link)
                return _private(HttpResponseRedirect(request.path), language)
            except WrongAccessCode:
                error, status = "wrong", 403
            except LinkLocked as locked:
                error, status, retry_after = "locked", 429, locked.retry_after_seconds
            except LinkLockedPermanently:
                error, status = "locked_permanently", 423
            except LinkNotFound:
                return _invalid(request)
        if not _session_grants(request, link):
            page = render(request, "films/code.html", {"error": error}, status=status)
            if retry_after is not None:
                page["Retry-After"] = str(retry_after)
            return _private(page, language)
        with tenant_entered(link.tenant):
            film = Film.objects.filter(pk=link.film_id).first()
            if film is None:
                return _invalid(request)
            series = _series(film)
            film_access_record(link=link, action=AuditAction.FILM_VIEW, client_ip=client_ip(request) or "",
                               detail={"ready": film.state == FilmState.READY})
            context = {
                "film": film, "ready": film.state == FilmState.READY, "sheets": range(1, len(film.sheet_keys) + 1),
                "report": film.report, "has_report_pdf": bool(film.report_pdf_key),
                "series": [{"index": index, "modality": items[0].modality, "count": len(items)}
                           for index, items in enumerate(series)],
                "presets": VIEWER_PRESETS, "token": token, "tenant_name": link.tenant.name,
            }
            return _private(render(request, "films/film.html", context), language)


def _series(film: Film) -> list[list[InstanceFile]]:
    groups: dict[str, list[InstanceFile]] = {}
    for file in instances_for_retrieval(study_instance_uid=film.study_instance_uid):
        if file.has_pixels and file.modality not in NON_IMAGE_MODALITIES:
            groups.setdefault(file.series_instance_uid, []).append(file)
    return list(groups.values())


def _storage(link: FilmLink) -> TenantStorage:
    return storage_for(link.tenant)


@film_access
def film_sheet(request: HttpRequest, link: FilmLink, film: Film, number: int) -> HttpResponse:
    if not 1 <= number <= len(film.sheet_keys):
        raise Http404
    data = _storage(link).get_bytes(film.sheet_keys[number - 1])
    response = HttpResponse(data, content_type="image/jpeg")
    if request.GET.get("download"):
        response["Content-Disposition"] = f'attachment; filename="film-{number}.jpg"'
        film_access_record(link=link, action=AuditAction.FILM_DOWNLOAD_SHEET, client_ip=client_ip(request) or "",
                           detail={"sheet": number})
    return response


def _stored_pdf(request: HttpRequest, link: FilmLink, key: str, *, action: AuditAction, disposition: str) -> HttpResponse:
    """A PDF of the film from the tenant's storage, its download audited."""
    if not key:
        raise Http404
    film_access_record(link=link, action=action, client_ip=client_ip(request) or "")
    response = HttpResponse(_storage(link).get_bytes(key), content_type="application/pdf")
    response["Content-Disposition"] = disposition
    return response


@film_access
def film_sheets_pdf(request: HttpRequest, link: FilmLink, film: Film) -> HttpResponse:
    return _stored_pdf(request, link, film.sheets_pdf_key, action=AuditAction.FILM_DOWNLOAD_PDF,
                       disposition='attachment; filename="film.pdf"')


@film_access
def film_report_pdf(request: HttpRequest, link: FilmLink, film: Film) -> HttpResponse:
    return _stored_pdf(request, link, film.report_pdf_key, action=AuditAction.FILM_DOWNLOAD_REPORT,
                       disposition='inline; filename="report.pdf"')


@film_access
def film_frame(request: HttpRequest, link: FilmLink, film: Film, series_index: int, image_index: int) -> HttpResponse:
    series = _series(film)
    if not 0 <= series_index < len(series) or not 0 <= image_index < len(series[series_index]):
        raise Http404
    preset = request.GET.get("preset", "")
    window = WINDOW_PRESETS[preset] if preset in dict(VIEWER_PRESETS) else None
    data, etag = rendered(_storage(link), series[series_index][image_index],
                          RenderOptions(window=window, viewport=(1024, 1024), quality=85))
    response = HttpResponse(data, content_type="image/jpeg")
    response["ETag"] = etag
    return response


@film_access
def film_download(request: HttpRequest, link: FilmLink, film: Film) -> FileResponse:
    """The study's original DICOM files in a zip with a DICOMDIR (PS3.10 media directory)."""
    storage = _storage(link)
    files = instances_for_retrieval(study_instance_uid=film.study_instance_uid)
    film_access_record(link=link, action=AuditAction.FILM_DOWNLOAD_DICOM, client_ip=client_ip(request) or "",
                       detail={"instances": len(files)})
    archive = tempfile.SpooledTemporaryFile(max_size=64 * 1024 * 1024)  # noqa: SIM115 (handed to FileResponse)
    with tempfile.TemporaryDirectory() as staging, tempfile.TemporaryDirectory() as media:
        file_set = FileSet()
        for number, file in enumerate(files):
            path = Path(staging) / f"{number:06d}.dcm"
            path.write_bytes(original_bytes(storage, file))
            file_set.add(path)
        file_set.write(media)
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
            for item in sorted(Path(media).rglob("*")):
                if item.is_file():
                    bundle.write(item, item.relative_to(media).as_posix())
    archive.seek(0)
    return FileResponse(archive, as_attachment=True, filename="images.zip", content_type="application/zip")
