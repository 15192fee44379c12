#!/usr/bin/env bash
# The README's second command: install (once), make sure PostgreSQL and Redis answer on loopback
# (the tests use them; see infra/services.sh), then run the whole test suite.
# Extra arguments go to pytest, e.g. `bash infra/test.sh tests/infra -q`.
set -euo pipefail
cd "$(dirname "$0")/.."
source infra/venv.sh
bash infra/node.sh
bash infra/services.sh
exec .venv/bin/python -m pytest "$@"
