#!/usr/bin/env bash
# Run by run.sh and test.sh (from the repository root): install the browser libraries the pages load
# (the root package.json, pinned by package-lock.json) into node_modules with `npm ci`. They are
# served same-origin from there (STATICFILES_DIRS in config/settings/base.py) and never committed.
# The install runs again only when package-lock.json changes.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v npm >/dev/null 2>&1; then
  echo "Imaging Cloud's pages need npm (Node.js 18 or newer) to install their browser libraries." >&2
  exit 1
fi
install_stamp="node_modules/.installed-$(sha256sum package-lock.json | cut -c1-16)"
if [ ! -f "$install_stamp" ]; then
  echo "Installing the pages' browser libraries into node_modules ..."
  npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error
  touch "$install_stamp"
fi
