"""Serves filesystem-backend presigned URLs (the S3 backend's URLs go straight to S3)."""

from django.core import signing
from django.http import FileResponse, HttpRequest, JsonResponse

from apps.storage.backends import FilesystemObjectStore, filesystem_presigned_key
from apps.storage.keys import UnsafeObjectKey


def presigned_object(request: HttpRequest, token: str) -> FileResponse | JsonResponse:
    from django.conf import settings

    try:
        bucket, key = filesystem_presigned_key(token)
    except signing.SignatureExpired:
        return JsonResponse({"code": "link_expired", "detail": "This download link has expired."}, status=403)
    except (signing.BadSignature, UnsafeObjectKey, KeyError):
        return JsonResponse({"code": "bad_signature", "detail": "This download link is not valid."}, status=403)
    store = FilesystemObjectStore(root=settings.STORAGE_ROOT, bucket=bucket)
    if not store.exists(key):
        return JsonResponse({"code": "object_not_found", "detail": "No such object."}, status=404)
    return FileResponse(store._path(key).open("rb"), content_type="application/octet-stream")
