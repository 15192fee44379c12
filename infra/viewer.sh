#!/usr/bin/env bash
# Install the diagnostic viewer (docs/viewer.md): OHIF's shipped build, pinned in package.json
# ("viewer": package, version, integrity), fetched with `npm pack` into .viewer/ (git-ignored), its
# tarball's sha512 checked against the pinned integrity, its dist/ unpacked to
# .viewer/<package>-<version>/dist and pre-compressed (gzip) for WhiteNoise. Idempotent: a second
# run with the same pin returns at once. Called by .ci/run and infra/run.sh; needs npm only when the
# pinned build is not installed yet. VIEWER_PYTHON: the interpreter with WhiteNoise (default .venv's).
set -euo pipefail
cd "$(dirname "$0")/.."

read -r package version integrity < <(python3 -c '
import json; pin = json.load(open("package.json"))["viewer"]
print(pin["package"], pin["version"], pin["integrity"])')
target=".viewer/$(echo "$package" | tr -d @ | tr / -)-${version}"
stamp="$target/.installed"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$integrity" ] && [ -f "$target/dist/index.html" ]; then
  exit 0
fi
if ! command -v npm >/dev/null; then
  echo "The viewer ($package@$version) is not installed and npm is missing: install Node.js with npm" \
       "(Debian: apt-get install npm) and run bash infra/viewer.sh again." >&2
  exit 1
fi

echo "Installing the viewer $package@$version ..."
download="$(mktemp -d .viewer.download.XXXXXX)"
trap 'rm -rf "$download"' EXIT
tarball="$download/$(npm pack "$package@$version" --pack-destination "$download" --silent | tail -n 1)"
actual="sha512-$(python3 -c 'import base64, hashlib, sys
print(base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' "$tarball")"
if [ "$actual" != "$integrity" ]; then
  echo "The viewer's tarball $package@$version has integrity $actual, not the pinned $integrity: refusing it." >&2
  exit 1
fi

rm -rf "$target"
mkdir -p "$target"
tar -xzf "$tarball" -C "$target" --strip-components=1 package/dist package/LICENSE package/package.json
# OHIF is configured by replacing its app-config.js (OHIF's deployment docs); the platform generates
# it per tenant and per request (apps.viewer), so the shipped demo configuration must not be served.
rm -f "$target/dist/app-config.js"
# Compressed copies beside the files; WhiteNoise serves them to clients that accept them.
"${VIEWER_PYTHON:-.venv/bin/python}" -m whitenoise.compress --quiet --no-brotli "$target/dist"
echo "$integrity" > "$stamp"
echo "Viewer installed in $target."
