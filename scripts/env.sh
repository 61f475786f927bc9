# Shared by run-tests.sh and run-demo.sh: locate Python 3.12 and keep .venv
# installed with the package and its `tests` extra (re-installs when
# pyproject.toml changes).
VENV="${ISD_VENV:-$ROOT/.venv}"

find_python() {
  for candidate in python3.12 "$HOME/.pyenv/versions/"3.12*/bin/python3.12 /usr/bin/python3.12 python3.11; do
    if command -v "$candidate" >/dev/null 2>&1; then command -v "$candidate"; return 0; fi
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
