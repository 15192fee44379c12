"""The Celery app (`celery -A config worker|beat`). Tasks run in the schema of the tenant that queued them.

tenant-schemas-celery stamps the current schema into each message's headers and switches to it
before the task runs, so a task never guesses its tenant.
"""

import os

from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

# Every task checks it entered its tenant before it runs (tenants.context.TenantEnteringTask).
app = CeleryApp("imaging_cloud", task_cls="tenants.context:TenantEnteringTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(lambda: ["apps.operations", "apps.accounts", "apps.audit", "apps.uploads", "apps.archive", "apps.ai", "apps.consults", "apps.films", "tenants"])
