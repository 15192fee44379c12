# Sourced by run.sh and test.sh (from the repository root): create .venv if it is missing and
# install the project with its dev extras into it. The install runs again only when pyproject.toml
# changes, so a second run starts at once.
if ! "${PYTHON:-python3}" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "Imaging Cloud needs Python 3.11 or newer as ${PYTHON:-python3} (set PYTHON to another interpreter)." >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "Creating .venv ..."
  "${PYTHON:-python3}" -m venv .venv
fi
install_stamp=".venv/.installed-$(.venv/bin/python -c 'import hashlib; print(hashlib.sha256(open("pyproject.toml", "rb").read()).hexdigest()[:16])')"
if [ ! -f "$install_stamp" ]; then
  echo "Installing Imaging Cloud and its dependencies into .venv ..."
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
  rm -f .venv/.installed-*
  touch "$install_stamp"
fi
