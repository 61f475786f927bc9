# Shared by run-tests.sh and run-demo.sh: pick the InvenioRDM version
# (ISD_RDM=12|13|14, default 13), locate its Python and keep its virtualenv
# installed with the package, its `tests` extra and that version's extra
# (re-installs when pyproject.toml or the version's constraints change).
#
#   ISD_RDM  Python  virtualenv        installs
#   12       3.11    .venv-rdm12       .[tests,rdm12] with constraints/rdm12.txt, then apply_patches.sh
#   13       3.12    .venv             .[tests,rdm13]
#   14       3.12    .venv-rdm14       .[tests,rdm14]
ISD_RDM="${ISD_RDM:-13}"
case "$ISD_RDM" in
  12) ISD_PYTHON=3.11; default_venv="$ROOT/.venv-rdm12" ;;
  13) ISD_PYTHON=3.12; default_venv="$ROOT/.venv" ;;
  14) ISD_PYTHON=3.12; default_venv="$ROOT/.venv-rdm14" ;;
  *) echo "Error: ISD_RDM must be 12, 13 or 14 (got '$ISD_RDM')" >&2; exit 1 ;;
esac
export ISD_RDM
VENV="${ISD_VENV:-$default_venv}"
CONSTRAINTS="$ROOT/constraints/rdm$ISD_RDM.txt"

find_python() {
  # A pyenv shim is on PATH even when its version is not selected: run each
  # candidate to be sure it is a working $ISD_PYTHON.
  local candidate
  for candidate in "$HOME"/.pyenv/versions/"$ISD_PYTHON"*/bin/python"$ISD_PYTHON" \
                   /usr/bin/python"$ISD_PYTHON" /usr/local/bin/python"$ISD_PYTHON" python"$ISD_PYTHON"; do
    if "$candidate" -c "import sys; assert '%d.%d' % sys.version_info[:2] == '$ISD_PYTHON'" \
        >/dev/null 2>&1; then
      command -v "$candidate"; return 0
    fi
  done
  echo "Error: Python $ISD_PYTHON (needed for InvenioRDM $ISD_RDM) not found" >&2; return 1
}

ensure_venv() {
  local stamp="$VENV/.isd-installed" python
  if [ ! -x "$VENV/bin/python" ]; then
    echo "[env] creating $VENV (InvenioRDM $ISD_RDM)" >&2
    python="$(find_python)"
    "$python" -m venv "$VENV"
    local pins=(); [ -f "$CONSTRAINTS" ] && pins=(-c "$CONSTRAINTS")
    "$VENV/bin/pip" install -q -U pip wheel setuptools "${pins[@]}"
  fi
  if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ] \
      || { [ -f "$CONSTRAINTS" ] && [ "$CONSTRAINTS" -nt "$stamp" ]; }; then
    echo "[env] installing invenio-stats-dashboard[tests,rdm$ISD_RDM] (first run takes a few minutes)" >&2
    local args=(-e "$ROOT[tests,rdm$ISD_RDM]")
    [ -f "$CONSTRAINTS" ] && args+=(-c "$CONSTRAINTS")
    "$VENV/bin/pip" install -q "${args[@]}"
    touch "$stamp"
  fi
  if [ "$ISD_RDM" = 12 ]; then  # the two hooks 13 ships (idempotent)
    "$ROOT/apply_patches.sh" "$VENV" >&2
  fi
}
