import uuid

from celery import shared_task

from apps.uploads import services


@shared_task(name="apps.uploads.tasks.upload_session_process", acks_late=True, max_retries=5)
def upload_session_process(session_id: str) -> None:
    services.upload_session_process(session_id=uuid.UUID(session_id))
