# Shared by run-tests.sh and run-demo.sh: locate Python 3.12 and keep .venv
# installed with the package and its `tests` extra (re-installs when
# pyproject.toml changes).
VENV="${ISD_VENV:-$ROOT/.venv}"

find_python() {
  # A pyenv shim is on PATH even when its version is not selected: run each
  # candidate to be sure it is a working 3.12 (3.11 only as a last resort).
  local candidate
  for candidate in "$HOME"/.pyenv/versions/3.12*/bin/python3.12 /usr/bin/python3.12 \
                   /usr/local/bin/python3.12 python3.12 python3.11; do
    if "$candidate" -c 'import sys; assert sys.version_info[:2] in ((3, 12), (3, 11))' \
        >/dev/null 2>&1; then
      command -v "$candidate"; return 0
    fi
  done
  echo "error: Python 3.12 not found" >&2; return 1
}

ensure_venv() {
  local stamp="$VENV/.isd-installed"
  if [ ! -x "$VENV/bin/python" ]; then
    echo "[env] creating $VENV" >&2
    "$(find_python)" -m venv "$VENV"
    "$VENV/bin/pip" install -q -U pip wheel setuptools
  fi
  if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    echo "[env] installing invenio-stats-dashboard[tests] (first run takes a few minutes)" >&2
    "$VENV/bin/pip" install -q -e "$ROOT[tests]"
    touch "$stamp"
  fi
}
