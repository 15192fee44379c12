"""Serves the filesystem backend's presigned URLs on the owning tenant's domain.

The S3 backend's URLs go straight to S3, so with STORAGE_BACKEND=s3 this route answers 404. The
token names its tenant and key; the bucket comes from that tenant's deployment policy, never from
the token (docs/security.md, "Secrets, debug and binding")."""

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse

from apps.core.errors import json_error
from apps.storage.backends import ObjectNotFound, filesystem_presigned_key
from apps.storage.tenant_storage import storage_for

NOT_VALID = ("bad_signature", "This download link is not valid.", 403)


def presigned_object(request: HttpRequest, token: str) -> StreamingHttpResponse | JsonResponse:
    if settings.STORAGE_BACKEND != "filesystem":
        return json_error("not_found", "No such resource.", 404)
    try:
        owner, key = filesystem_presigned_key(token)
    except signing.SignatureExpired:
        return json_error("link_expired", "This download link has expired.", 403)
    except signing.BadSignature:
        return json_error(*NOT_VALID)
    tenant = request.tenant  # type: ignore[attr-defined]
    storage = storage_for(tenant)
    if owner != tenant.schema_name or not key.startswith(storage.key_prefix):
        return json_error(*NOT_VALID)
    relative_key = key.removeprefix(storage.key_prefix)
    try:
        size = storage.size(relative_key)
        chunks = storage.get_stream(relative_key)
    except ObjectNotFound:
        return json_error("object_not_found", "No such object.", 404)
    response = StreamingHttpResponse(chunks, content_type="application/octet-stream")
    response["Content-Length"] = str(size)
    response["Cache-Control"] = "private, no-store"
    return response
