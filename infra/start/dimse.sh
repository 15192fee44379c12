#!/usr/bin/env bash
# DIMSE role: the DICOM listener for every tenant (C-ECHO, C-STORE; docs/dimse.md). One TCP port,
# DIMSE_PORT on DIMSE_BIND_ADDRESS; the called AE title picks the tenant, registered peers only.
# It needs the database, the object store and (for the follow-up work) the broker, like web.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec python manage.py dimse_serve
