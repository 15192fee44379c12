"""`manage.py worker_queues`: the Celery queues a worker must consume, comma-separated.

The launcher and `infra/start/worker.sh` (when QUEUES is empty) use it, so the queue names come
from the deployment policy alone: the shared queues plus every dedicated-cloud tenant's own ones.
"""

from django.core.management.base import BaseCommand, CommandParser

from tenants.deployment import SHARED_QUEUES, policy_for
from tenants.models import Deployment
from tenants.selectors import tenants_list


def dedicated_queues() -> list[str]:
    queues: list[str] = []
    for tenant in tenants_list().filter(deployment=Deployment.DEDICATED_CLOUD):
        queues.extend(policy_for(tenant).queues())
    return queues


class Command(BaseCommand):
    help = "Print the Celery queues to consume: shared queues and every dedicated-cloud tenant's queues."

    def add_arguments(self, parser: CommandParser) -> None:
        scope = parser.add_mutually_exclusive_group()
        scope.add_argument("--shared-only", action="store_true", help="Only the shared (public cloud) queues.")
        scope.add_argument("--dedicated-only", action="store_true", help="Only dedicated-cloud tenants' queues.")

    def handle(self, *args: object, **options: bool) -> None:
        queues: list[str] = []
        if not options["dedicated_only"]:
            queues.extend(SHARED_QUEUES)
        if not options["shared_only"]:
            queues.extend(dedicated_queues())
        self.stdout.write(",".join(queues))
