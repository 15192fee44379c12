#!/usr/bin/env bash
# Beat role: the Celery periodic-task scheduler. Run exactly one per deployment.
# BEAT_SCHEDULE_FILE is where beat remembers when each task last ran. Beat answers
# `celery inspect ping` (remote control on) so it can be health-checked.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec celery -A config beat \
  --schedule "${BEAT_SCHEDULE_FILE:-/tmp/celerybeat-schedule}" \
  --enable-remote-control \
  --loglevel "${LOG_LEVEL:-INFO}"
