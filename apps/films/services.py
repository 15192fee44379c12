"""Cloud film use cases: request a film, render it (a `film` task), issue, open and revoke links.

A link's token (secrets.token_urlsafe(32): 256 bits) and its 6-digit access code are shown once, to
the clinic user who issues them; only their hashes are kept. Opening a link needs the code. Wrong
codes lock the link they were tried on (FILM_LINK_MAX_ATTEMPTS of them: FILM_LINK_LOCK_MINUTES,
doubling with each lockout, for good at the FILM_LINK_MAX_LOCKOUTS-th, and the clinic is told). Per
client address they only slow the answers down: one address can be a whole clinic's patients behind
a proxy, so it must never stop another patient's right code for another link (docs/films.md).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.db import transaction
from django.http.request import split_domain_port
from django.utils import timezone
from django.utils.module_loading import import_string

from apps.archive.models import Study
from apps.archive.retrieval import InstanceUnreadable, read_dataset
from apps.archive.selectors import InstanceFile, instances_for_retrieval
from apps.audit.actions import AuditAction
from apps.audit.models import Outcome
from apps.audit.services import Actor, audit_record, audited_move
from apps.core.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound, StudyNotFound
from apps.dicom.film_sheet import (
    LAYOUTS,
    Layout,
    SheetHeader,
    compose_sheets,
    film_image,
    sheet_jpeg,
    sheets_pdf,
)
from apps.dicom.modalities import NON_IMAGE_MODALITIES
from apps.dicom.rendering import RenderingNotPossible
from apps.film_links.models import FilmCodeAttempt, FilmLink
from apps.films.models import Film, FilmState
from apps.films.workflow import FILM_WORKFLOW
from apps.storage.tenant_storage import storage_for
from tenants.context import current_tenant, tenant_entered
from tenants.queues import WorkKind, enqueue_on_commit

FILM_ACTOR = Actor.system("film")


class FilmNotFound(NotFound):
    code = "film_not_found"


class LinkNotFound(NotFound):
    """Unknown, revoked or expired: the same answer for each, so a token cannot be probed."""

    code = "film_link_invalid"


class LinkLocked(DomainError):
    """Locked for a while after too many wrong codes; `retry_after_seconds` says how long is left."""

    code = "film_link_locked"
    status = 429

    def __init__(self, detail: str, *, retry_after_seconds: int) -> None:
        super().__init__(detail)
        self.retry_after_seconds = retry_after_seconds


class LinkLockedPermanently(DomainError):
    """Locked for good after FILM_LINK_MAX_LOCKOUTS lockouts: only a new link from the clinic helps."""

    code = "film_link_locked_permanently"
    status = 423


class WrongAccessCode(Forbidden):
    code = "wrong_access_code"


class FilmNotReady(Conflict):
    code = "film_not_ready"


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- films --------------------------------------------------------------------------------------


def film_request(
    *, study_instance_uid: str, actor: Actor, requested_by: str, layout: str = Layout.FOUR,
    key_image_sop_instance_uids: Sequence[str] = (), report: dict[str, Any] | None = None,
    report_pdf_key: str = "", consult_id: int | None = None,
) -> Film:
    """Queue a film of a study of this tenant's archive (one per consult: a new report re-makes it)."""
    if layout not in LAYOUTS:
        raise InvalidInput(f"layout must be one of {', '.join(LAYOUTS)}.", code="invalid_layout")
    if not Study.objects.filter(study_instance_uid=study_instance_uid, deleted_at__isnull=True).exists():
        raise StudyNotFound("No such study in this archive.")
    values = {"study_instance_uid": study_instance_uid, "layout": layout, "requested_by": requested_by,
              "key_image_sop_instance_uids": list(key_image_sop_instance_uids), "report": report,
              "report_pdf_key": report_pdf_key, "state": FilmState.QUEUED, "sheet_keys": [], "sheets_pdf_key": "",
              "error_detail": "", "finished_at": None}
    with transaction.atomic():
        if consult_id is not None:
            film, _ = Film.objects.update_or_create(consult_id=consult_id, defaults=values)
        else:
            film = Film.objects.create(**values)
        audit_record(action=AuditAction.FILM_REQUEST, actor=actor, object_type="film", object_id=film.pk,
                     detail={"study": study_instance_uid, "layout": layout, "consult": consult_id})
        _render_on_commit(film.pk)
    return film


def _render_on_commit(film_id: int) -> None:
    enqueue_on_commit("apps.films.tasks.film_render_task", tenant=current_tenant(), work=WorkKind.FILM, args=(film_id,))


@dataclass(frozen=True)
class FilmsReconciled:
    sent_again: int
    failed: int


def films_reconcile(*, stalled_seconds: int, give_up_seconds: int, now: datetime | None = None) -> FilmsReconciled:
    """Move every film that stopped moving: a render takes seconds, so a film still `queued` or
    `running` `stalled_seconds` after it was requested lost its message (a broker that lost it) or
    its worker. It is sent to render again (rendering is idempotent); past `give_up_seconds` it fails
    with a reason the clinic sees, and can be requested again. Each move is audited."""
    now = now or timezone.now()
    stalled = Film.objects.filter(state__in=[FilmState.QUEUED, FilmState.RUNNING],
                                  created_at__lt=now - timedelta(seconds=stalled_seconds))
    sent_again = failed = 0
    for film_id in list(stalled.values_list("pk", flat=True)):
        with transaction.atomic():
            film = Film.objects.select_for_update().filter(pk=film_id).first()
            if film is None or film.state not in (FilmState.QUEUED, FilmState.RUNNING):
                continue
            if film.created_at < now - timedelta(seconds=give_up_seconds):
                audited_move(film, FILM_WORKFLOW, "fail", actor=FILM_ACTOR, action=AuditAction.FILM_RENDER,
                             object_type="film", outcome=Outcome.FAILURE,
                             detail={"error": "stalled", "since": film.created_at.isoformat()},
                             error_detail="The film was not rendered in time; request it again.", finished_at=now)
                failed += 1
                continue
            audit_record(action=AuditAction.FILM_RENDER_RESEND, actor=FILM_ACTOR, object_type="film", object_id=film.pk,
                         detail={"state": film.state, "since": film.created_at.isoformat()})
            _render_on_commit(film.pk)
            sent_again += 1
    return FilmsReconciled(sent_again=sent_again, failed=failed)


def film_images(film: Film) -> list[InstanceFile]:
    """The key images if the report named them, else the middle image of each image series."""
    files = [file for file in instances_for_retrieval(study_instance_uid=film.study_instance_uid)
             if file.has_pixels and file.modality not in NON_IMAGE_MODALITIES]
    if film.key_image_sop_instance_uids:
        by_uid = {file.sop_instance_uid: file for file in files}
        chosen = [by_uid[uid] for uid in film.key_image_sop_instance_uids if uid in by_uid]
        if chosen:
            return chosen
    series: dict[str, list[InstanceFile]] = {}
    for file in files:
        series.setdefault(file.series_instance_uid, []).append(file)
    return [members[len(members) // 2] for members in series.values()]


def film_render(*, film_id: int) -> str:
    """Render the film's sheets (JPEG each, and one printable PDF); idempotent.

    A top-level action (durable transactions): the sheets it writes are named by the row it commits,
    so it refuses to run inside a transaction that could roll that row back and orphan them."""
    with transaction.atomic(durable=True):
        film = Film.objects.select_for_update().filter(pk=film_id).first()
        if film is None:
            return "gone"
        if film.state == FilmState.READY:
            return "already_ready"
        audited_move(film, FILM_WORKFLOW, "start", actor=FILM_ACTOR, action=AuditAction.FILM_RENDER_START,
                     object_type="film", detail={"from": film.state})
    storage = storage_for(current_tenant())
    written: list[str] = []
    try:
        files = film_images(film)
        if not files:
            raise RenderingNotPossible("the study has no images to print")
        datasets = [read_dataset(storage, file) for file in files]
        sheets = compose_sheets([film_image(dataset) for dataset in datasets], SheetHeader.from_dataset(datasets[0]),
                                Layout(film.layout))
        for number, sheet in enumerate(sheets, start=1):
            key = f"films/{film.pk}/sheet-{number}.jpg"
            storage.put_bytes(key, sheet_jpeg(sheet), content_type="image/jpeg")
            written.append(key)
        pdf_key = f"films/{film.pk}/film.pdf"
        storage.put_bytes(pdf_key, sheets_pdf(sheets), content_type="application/pdf")
        written.append(pdf_key)
    except (RenderingNotPossible, InstanceUnreadable, ValueError) as error:
        for key in written:  # a failed film keeps nothing partial
            storage.delete(key)
        with transaction.atomic(durable=True):
            film = Film.objects.select_for_update().filter(pk=film_id).first()
            if film is None or not FILM_WORKFLOW.allows(film.state, "fail"):
                return "failed"
            audited_move(film, FILM_WORKFLOW, "fail", actor=FILM_ACTOR, action=AuditAction.FILM_RENDER,
                         object_type="film", outcome=Outcome.FAILURE, detail={"error": str(error)[:500]},
                         error_detail=str(error)[:500], finished_at=timezone.now())
        return "failed"
    with transaction.atomic(durable=True):
        film = Film.objects.select_for_update().filter(pk=film_id).first()
        if film is None:
            return "gone"
        if not FILM_WORKFLOW.allows(film.state, "finish"):
            return "already_ready" if film.state == FilmState.READY else film.state
        audited_move(film, FILM_WORKFLOW, "finish", actor=FILM_ACTOR, action=AuditAction.FILM_RENDER,
                     object_type="film", detail={"sheets": len(written) - 1, "images": len(files)},
                     sheet_keys=written[:-1], sheets_pdf_key=written[-1], image_count=len(files),
                     finished_at=timezone.now(), error_detail="")
    return "ready"


# --- links --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedLink:
    link: FilmLink
    token: str
    access_code: str
    url: str


DEFAULT_PORTS = {"http": 80, "https": 443}


def film_link_url(token: str, *, served_port: int | None = None) -> str:
    """The patient's URL: FILM_LINK_HOST as configured if it names a port, else with `served_port`
    (the port the issuing request came in on) unless that is the scheme's default."""
    scheme = "https" if _setting("FILM_LINK_HTTPS", False) else "http"
    host = str(_setting("FILM_LINK_HOST", settings.PLATFORM_DOMAIN))
    _, configured_port = split_domain_port(host)
    if not configured_port and served_port is not None and served_port != DEFAULT_PORTS[scheme]:
        host = f"{host}:{served_port}"
    return f"{scheme}://{host}/film/{token}"


def film_link_issue(
    *, film_id: int, actor: Actor, created_by: str, valid_days: int | None = None, phone_number: str = "",
    served_port: int | None = None,
) -> IssuedLink:
    """A new link to the film; the token and code are in the result only. `served_port` is the port
    the clinic reached us on, kept in the URL when it is not the default (see film_link_url)."""
    film = Film.objects.filter(pk=film_id).first()
    if film is None:
        raise FilmNotFound("No such film.")
    days = valid_days if valid_days is not None else int(_setting("FILM_LINK_VALID_DAYS", 30))
    if not 1 <= days <= 365:
        raise InvalidInput("valid_days must be between 1 and 365.", code="invalid_validity")
    token = secrets.token_urlsafe(32)
    digits = int(_setting("FILM_ACCESS_CODE_DIGITS", 6))
    code = "".join(secrets.choice("0123456789") for _ in range(digits))
    with transaction.atomic():
        link = FilmLink.objects.create(
            token_hash=token_hash(token), tenant=current_tenant(), film_id=film.pk, code_hash=make_password(code),
            expires_at=timezone.now() + timedelta(days=days), created_by=created_by,
        )
        audit_record(action=AuditAction.FILM_LINK_ISSUE, actor=actor, object_type="film_link", object_id=link.pk,
                     detail={"film": film.pk, "expires_at": link.expires_at.isoformat(), "sms": bool(phone_number)})
    issued = IssuedLink(link=link, token=token, access_code=code,
                         url=film_link_url(token, served_port=served_port))
    if phone_number:
        sms_sender().send(phone_number=phone_number, text=f"Your imaging results: {issued.url}")
    return issued


@transaction.atomic
def film_link_revoke(*, link_id: int, actor: Actor) -> FilmLink:
    link = FilmLink.objects.select_for_update().filter(pk=link_id, tenant=current_tenant()).first()
    if link is None:
        raise LinkNotFound("No such link.")
    if link.revoked_at is None:
        link.revoked_at = timezone.now()
        link.save(update_fields=["revoked_at"])
        audit_record(action=AuditAction.FILM_LINK_REVOKE, actor=actor, object_type="film_link", object_id=link.pk)
    return link


def film_link_resolve(token: str) -> FilmLink:
    """The live link of `token` (public schema), or LinkNotFound."""
    link = FilmLink.objects.select_related("tenant").filter(token_hash=token_hash(token)).first()
    if link is None or link.revoked_at is not None or link.expires_at <= timezone.now() or not link.tenant.is_active:
        raise LinkNotFound("This film link is invalid or has expired.")
    return link


CODE_ATTEMPT_WINDOW = timedelta(minutes=15)


def film_code_delay_seconds(*, client_ip: str) -> float:
    """How long to hold an answer to this address: nothing up to FILM_CODE_DELAY_AFTER_FAILURES wrong
    codes from it in the last 15 minutes (any link), then FILM_CODE_DELAY_STEP_MILLISECONDS more for
    each, capped at FILM_CODE_MAX_DELAY_MILLISECONDS so a busy shared address stays usable."""
    free = int(_setting("FILM_CODE_DELAY_AFTER_FAILURES", 10))
    failures = FilmCodeAttempt.objects.filter(client_ip=client_ip,
                                              created_at__gte=timezone.now() - CODE_ATTEMPT_WINDOW).count()
    if failures < free:
        return 0.0
    step = int(_setting("FILM_CODE_DELAY_STEP_MILLISECONDS", 250))
    cap = int(_setting("FILM_CODE_MAX_DELAY_MILLISECONDS", 3000))
    return min((failures - free + 1) * step, cap) / 1000


def _lock_minutes(lockout_number: int) -> int:
    """15, 30, 60, ... minutes for the first, second, third lockout (FILM_LINK_LOCK_MINUTES doubling)."""
    return int(_setting("FILM_LINK_LOCK_MINUTES", 15)) * 2 ** (lockout_number - 1)


def film_link_open(*, token: str, code: str, client_ip: str) -> FilmLink:
    """Check the access code of one link.

    Wrong codes count against this link only: FILM_LINK_MAX_ATTEMPTS of them start a lockout (timed,
    doubling, and permanent at the FILM_LINK_MAX_LOCKOUTS-th, which the clinic is told about). Per
    client address they only delay the answer (film_code_delay_seconds). Raises WrongAccessCode,
    LinkLocked, LinkLockedPermanently or LinkNotFound.
    """
    delay = film_code_delay_seconds(client_ip=client_ip)
    if delay:
        time.sleep(delay)  # before the row lock, so a slowed address never holds up the link's owner
    # Wrong codes leave the block normally, so their count commits before the error is raised.
    with transaction.atomic():
        link = film_link_resolve(token)
        link = FilmLink.objects.select_for_update().select_related("tenant").get(pk=link.pk)
        now = timezone.now()
        if link.locked_permanently_at is not None:
            raise LinkLockedPermanently("This link is locked after too many wrong codes. Ask the clinic for a new one.")
        if link.locked_until and link.locked_until > now:
            raise LinkLocked("Too many wrong codes. Try again later.",
                             retry_after_seconds=_seconds_until(link.locked_until, now))
        if check_password(code.strip(), link.code_hash):
            link.failed_attempts, link.lockout_count, link.locked_until, link.last_opened_at = 0, 0, None, now
            link.save(update_fields=["failed_attempts", "lockout_count", "locked_until", "last_opened_at"])
            _audit_in_tenant(link, AuditAction.FILM_LINK_OPEN, client_ip, {})
            return link
        lockout = _count_wrong_code(link, now=now, client_ip=client_ip)
    if lockout == "permanent":
        raise LinkLockedPermanently("This link is locked after too many wrong codes. Ask the clinic for a new one.")
    if lockout == "timed" and link.locked_until is not None:
        raise LinkLocked("Too many wrong codes. Try again later.",
                         retry_after_seconds=_seconds_until(link.locked_until, now))
    # Only this attempt decides: a lock that has run out is no reason to answer "locked" again.
    raise WrongAccessCode("The access code is not right.")


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, int((moment - now).total_seconds() + 0.999))


Lockout = Literal["none", "timed", "permanent"]


def _count_wrong_code(link: FilmLink, *, now: datetime, client_ip: str) -> Lockout:
    """Record one wrong code on the locked row; return "none", "timed" or "permanent" (the lockout it started)."""
    link.failed_attempts += 1
    lockout: Lockout = "none"
    if link.failed_attempts >= int(_setting("FILM_LINK_MAX_ATTEMPTS", 5)):
        link.failed_attempts = 0
        link.lockout_count += 1
        if link.lockout_count >= int(_setting("FILM_LINK_MAX_LOCKOUTS", 4)):
            link.locked_permanently_at, link.locked_until, lockout = now, None, "permanent"
        else:
            link.locked_until, lockout = now + timedelta(minutes=_lock_minutes(link.lockout_count)), "timed"
    link.save(update_fields=["failed_attempts", "lockout_count", "locked_until", "locked_permanently_at"])
    # Patients' addresses are kept only as long as they count (indexed on created_at: a cheap delete).
    FilmCodeAttempt.objects.filter(created_at__lt=now - CODE_ATTEMPT_WINDOW).delete()
    FilmCodeAttempt.objects.create(client_ip=client_ip)
    _audit_in_tenant(link, AuditAction.FILM_LINK_WRONG_CODE, client_ip, {"locked": lockout != "none"})
    if lockout == "timed":
        _audit_in_tenant(link, AuditAction.FILM_LINK_LOCK, client_ip, {
            "lockout": link.lockout_count, "locked_until": link.locked_until.isoformat() if link.locked_until else None})
    if lockout == "permanent":
        _audit_in_tenant(link, AuditAction.FILM_LINK_LOCK_PERMANENTLY, client_ip, {"lockout": link.lockout_count})
        _tell_the_clinic_of_a_permanent_lock(link)
    return lockout


def _tell_the_clinic_of_a_permanent_lock(link: FilmLink) -> None:
    """Email the clinic's admins and the link's issuer (after commit) so they can reach the patient."""
    from apps.accounts.roles import Role
    from apps.consults.notifications import users_email_on_commit

    users_email_on_commit(
        link.tenant, roles=frozenset({Role.CLINIC_ADMIN.value}), usernames=(link.created_by,),
        subject=f"Film link {link.pk} locked after repeated wrong access codes",
        body=(f"Film link {link.pk} (film {link.film_id}) was locked for good after "
              f"{link.lockout_count} lockouts for wrong access codes. If the patient still needs the "
              "film, issue a new link; the access history of the link shows where the attempts came from."),
    )


def _audit_in_tenant(link: FilmLink, action: AuditAction, client_ip: str, detail: dict[str, Any]) -> None:
    with tenant_entered(link.tenant):
        audit_record(action=action, actor=Actor(kind="link", identifier=str(link.pk), name="film link",
                                                client_ip=client_ip),
                     object_type="film_link", object_id=link.pk, detail={"film": link.film_id, **detail})


def film_access_record(*, link: FilmLink, action: AuditAction, client_ip: str, detail: dict[str, Any] | None = None) -> None:
    """A view or download through a link, in the tenant's audit trail (call in the tenant's schema)."""
    audit_record(action=action, actor=Actor(kind="link", identifier=str(link.pk), name="film link",
                                            client_ip=client_ip),
                 object_type="film_link", object_id=link.pk, detail={"film": link.film_id, **(detail or {})})


# --- SMS ----------------------------------------------------------------------------------------


class LoggingSmsSender:
    """The default: logs that a message went out, with the number masked and no content."""

    def send(self, *, phone_number: str, text: str) -> None:
        import logging

        logging.getLogger("apps.films.sms").info("film link SMS to ***%s (%d characters)", phone_number[-3:], len(text))


def sms_sender() -> Any:
    return import_string(_setting("FILM_SMS_SENDER", "apps.films.services.LoggingSmsSender"))()
