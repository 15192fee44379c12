"""The audit trail's actions: every event written names one of these (docs/architecture.md "The
workflow mechanism"). The stored value is the string; `audit_record` refuses any other string."""

from __future__ import annotations

from django.db import models


class AuditAction(models.TextChoices):
    """What happened, as `<area>.<verb>`; grouped by the area that writes it."""

    # ai
    AI_ENGINE_CONFIGURE = "ai.engine_configure"
    AI_ENGINE_DEFINE = "ai.engine_define"
    AI_FINDING_VERDICT = "ai.finding_verdict"
    AI_JOB_CALLBACK_LATE = "ai.job_callback_late"
    AI_JOB_CALLBACK_REFUSE = "ai.job_callback_refuse"
    AI_JOB_CANCEL = "ai.job_cancel"
    AI_JOB_FAIL = "ai.job_fail"
    AI_JOB_RESEND = "ai.job_resend"
    AI_JOB_REQUEUE = "ai.job_requeue"
    AI_JOB_RUN = "ai.job_run"
    AI_JOB_START = "ai.job_start"
    AI_JOB_SUCCEED = "ai.job_succeed"
    AI_ROUTING_RULE_CREATE = "ai.routing_rule_create"
    AI_ROUTING_RULE_DELETE = "ai.routing_rule_delete"

    # archive
    ARCHIVE_BULK_LOAD = "archive.bulk_load"
    ARCHIVE_IDENTITY_CONFLICT = "archive.identity_conflict"
    ARCHIVE_PURGE = "archive.purge"
    ARCHIVE_REINDEX = "archive.reindex"
    ARCHIVE_REINDEX_RESTORE = "archive.reindex_restore"
    ARCHIVE_RENDERED_CACHE_EVICT = "archive.rendered_cache_evict"
    ARCHIVE_SERIES_DELETE = "archive.series_delete"
    ARCHIVE_STORE = "archive.store"
    ARCHIVE_STUDY_DELETE = "archive.study_delete"
    ARCHIVE_STUDY_STABLE = "archive.study_stable"

    # consult
    CONSULT_ACCEPT = "consult.accept"
    CONSULT_AMEND = "consult.amend"
    CONSULT_ASSIGN = "consult.assign"
    CONSULT_ATTACHMENT_ADD = "consult.attachment_add"
    CONSULT_ATTACHMENT_READ = "consult.attachment_read"
    CONSULT_CANCEL = "consult.cancel"
    CONSULT_CLAIM = "consult.claim"
    CONSULT_CREATE = "consult.create"
    CONSULT_DELIVER = "consult.deliver"
    CONSULT_DELIVERY_FAILED = "consult.delivery_failed"
    CONSULT_DELIVERY_RETRY = "consult.delivery_retry"
    CONSULT_ESCALATE = "consult.escalate"
    CONSULT_GRANT_READ = "consult.grant_read"
    CONSULT_REJECT = "consult.reject"
    CONSULT_REPORT_PRELIMINARY = "consult.report_preliminary"
    CONSULT_REPORT_READ = "consult.report_read"
    CONSULT_REPORT_RECEIVED = "consult.report_received"
    CONSULT_RETURN_FOR_INFO = "consult.return_for_info"
    CONSULT_SAVE_DRAFT = "consult.save_draft"
    CONSULT_SIGN = "consult.sign"
    CONSULT_SUBMIT = "consult.submit"

    # dicomweb
    DICOMWEB_BULKDATA = "dicomweb.bulkdata"
    DICOMWEB_FRAMES = "dicomweb.frames"
    DICOMWEB_METADATA = "dicomweb.metadata"
    DICOMWEB_RENDERED = "dicomweb.rendered"
    DICOMWEB_RETRIEVE = "dicomweb.retrieve"
    DICOMWEB_SEARCH = "dicomweb.search"
    DICOMWEB_THUMBNAIL = "dicomweb.thumbnail"

    # dimse
    DIMSE_ASSOCIATION_ACCEPT = "dimse.association_accept"
    DIMSE_ASSOCIATION_REJECT = "dimse.association_reject"
    DIMSE_PEER_ADD = "dimse.peer_add"
    DIMSE_PEER_REMOVE = "dimse.peer_remove"

    # film
    FILM_DOWNLOAD_DICOM = "film.download_dicom"
    FILM_DOWNLOAD_PDF = "film.download_pdf"
    FILM_DOWNLOAD_REPORT = "film.download_report"
    FILM_DOWNLOAD_SHEET = "film.download_sheet"
    FILM_RENDER = "film.render"
    FILM_RENDER_RESEND = "film.render_resend"
    FILM_RENDER_START = "film.render_start"
    FILM_REQUEST = "film.request"
    FILM_VIEW = "film.view"

    # film_link
    FILM_LINK_ISSUE = "film_link.issue"
    FILM_LINK_LOCK = "film_link.lock"
    FILM_LINK_LOCK_PERMANENTLY = "film_link.lock_permanently"
    FILM_LINK_OPEN = "film_link.open"
    FILM_LINK_REVOKE = "film_link.revoke"
    FILM_LINK_WRONG_CODE = "film_link.wrong_code"

    # referral
    REFERRAL_LINK = "referral.link"
    REFERRAL_UNLINK = "referral.unlink"

    # storage
    STORAGE_ORPHANS_COLLECT = "storage.orphans_collect"

    # tenant
    TENANT_ACTIVATE = "tenant.activate"
    TENANT_DELETE = "tenant.delete"
    TENANT_PROVISION = "tenant.provision"
    TENANT_SUSPEND = "tenant.suspend"

    # token
    TOKEN_ISSUE = "token.issue"
    TOKEN_REVOKE = "token.revoke"

    # upload
    UPLOAD_CANCEL = "upload.cancel"
    UPLOAD_COMPLETE = "upload.complete"
    UPLOAD_EXPIRE = "upload.expire"
    UPLOAD_FILE = "upload.file"
    UPLOAD_FINISH = "upload.finish"
    UPLOAD_OPEN = "upload.open"
    UPLOAD_RESUME = "upload.resume"

    # user
    USER_ACTIVATE = "user.activate"
    USER_CREATE = "user.create"
    USER_DEACTIVATE = "user.deactivate"
    USER_ROLE_CHANGE = "user.role_change"

    # webhook
    WEBHOOK_CREATE = "webhook.create"
    WEBHOOK_DELETE = "webhook.delete"
    WEBHOOK_DELIVER = "webhook.deliver"
    WEBHOOK_FAILED = "webhook.failed"

    # worker
    WORKER_PROBE = "worker.probe"
