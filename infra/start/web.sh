#!/usr/bin/env bash
# Web role: gunicorn serving config.wsgi:application.
# HOST (default 127.0.0.1: loopback only; containers set 0.0.0.0 behind their ingress), PORT (default 8000), WEB_CONCURRENCY (processes, default 2), WEB_THREADS (threads each, default 4)
# and WEB_TIMEOUT (seconds, default 120) tune it. Threads suit a service that mostly waits on
# PostgreSQL and object storage. The access log goes through config.gunicorn_logging, which writes
# no film token and no query value (docs/security.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec gunicorn config.wsgi:application \
  --bind "${HOST:-127.0.0.1}:${PORT:-8000}" \
  --workers "${WEB_CONCURRENCY:-2}" \
  --threads "${WEB_THREADS:-4}" \
  --worker-class gthread \
  --timeout "${WEB_TIMEOUT:-120}" \
  --graceful-timeout 20 \
  --no-control-socket \
  --access-logfile - \
  --logger-class config.gunicorn_logging.RedactingGunicornLogger
