#!/usr/bin/env bash
# Relay role: publishes the task intents of the outbox that were not sent right after their commit
# (the broker was unreachable), so a broker outage delays background work and never loses it.
# It needs only the database. One per deployment is enough; more are safe (rows are claimed with
# SKIP LOCKED). OUTBOX_RELAY_* settings tune it (docs/operations.md). It touches
# RELAY_HEARTBEAT_FILE after every pass, for a health check to look at the file's age.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec python manage.py outbox_relay --heartbeat-file "${RELAY_HEARTBEAT_FILE:-/tmp/outbox-relay-heartbeat}"
