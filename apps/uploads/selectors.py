import uuid

from django.db.models import QuerySet

from apps.accounts.models import User
from apps.accounts.roles import ADMIN_ROLES
from apps.uploads.models import UploadItem, UploadSession


def upload_sessions_for_user(*, user: User) -> QuerySet[UploadSession]:
    """Admins see every session of their tenant; others their own."""
    sessions = UploadSession.objects.select_related("created_by")
    if getattr(user, "role", None) in ADMIN_ROLES:
        return sessions
    return sessions.filter(created_by=user)


def upload_session_for_user(*, session_id: uuid.UUID, user: User) -> UploadSession | None:
    return upload_sessions_for_user(user=user).filter(pk=session_id).first()


def upload_items(*, session: UploadSession, status: str | None = None) -> QuerySet[UploadItem]:
    items = session.items.select_related("upload_file")
    return items.filter(status=status) if status else items
