#!/usr/bin/env bash
# Worker role: one Celery worker consuming QUEUES, a comma-separated list such as "ingest", or
# "st-marys.ingest,st-marys.ai,st-marys.film,st-marys.workflow" for a dedicated-cloud hospital.
# Empty QUEUES means every queue the deployment policy names (`manage.py worker_queues`).
# WORKER_NAME (default "worker") and WORKER_CONCURRENCY (processes, default 2) tune it.
set -euo pipefail
cd "$(dirname "$0")/../.."
QUEUES="${QUEUES:-$(python manage.py worker_queues)}"
exec celery -A config worker \
  --queues "$QUEUES" \
  --hostname "${WORKER_NAME:-worker}@%h" \
  --concurrency "${WORKER_CONCURRENCY:-2}" \
  --loglevel "${LOG_LEVEL:-INFO}"
