#!/usr/bin/env bash
# The README's first command: install (once) and run the whole platform with its demo tenants:
# embedded PostgreSQL and Redis unless DATABASE_URL / CELERY_BROKER_URL are set, migrations, demo
# users and tokens, a Celery worker, beat and the web server. Stop it with Ctrl-C.
# `bash infra/run.sh stop` stops a launcher running in another terminal.
set -euo pipefail
cd "$(dirname "$0")/.."
source infra/venv.sh
# The browser libraries of the pages (docs/uploads.md) and the diagnostic viewer under /viewer/
# (docs/viewer.md): installed once, need npm the first time.
bash infra/node.sh
bash infra/viewer.sh
exec .venv/bin/python -m launcher "$@"
