#!/usr/bin/env bash
# Migrate role (a one-off job before web and workers start): the public schema, then every tenant.
# Safe to run again; a new tenant's schema is cloned from the template when it is provisioned.
set -euo pipefail
cd "$(dirname "$0")/../.."
python manage.py migrate_schemas --shared --noinput
exec python manage.py migrate_schemas --tenant --noinput
