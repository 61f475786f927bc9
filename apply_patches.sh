#!/usr/bin/env bash
# apply_patches.sh [environment_path]
#
# Upstream ships replacement modules for InvenioRDM 12's invenio-requests and
# invenio-rdm-records and copies them over the installed files without any
# check (upstream gap G8). InvenioRDM 13 already contains the hooks this
# package needs (invenio-requests PR 457, invenio-rdm-records PR 2002), and we
# support InvenioRDM 13 only, so this script *checks* instead of patching:
# it reports the installed versions and exits 0 when no patch is needed, 1
# otherwise. It never modifies installed files.
set -euo pipefail
ENV_DIR="${1:-./.venv}"
PY="$ENV_DIR/bin/python"
[ -x "$PY" ] || { echo "error: no Python environment at $ENV_DIR" >&2; exit 1; }
"$PY" - <<'PY'
"""Feature-detect the hooks instead of trusting version numbers."""
import importlib.util
import sys
from importlib.metadata import PackageNotFoundError, version

hooks = {
    "invenio-requests": ("invenio_requests.services.events.config",
                         "REQUESTS_EVENTS_SERVICE_COMPONENTS"),
    "invenio-rdm-records": ("invenio_rdm_records.services.config",
                            "RDM_RECORD_COMMUNITIES_SERVICE_COMPONENTS"),
}
ok = True
for pkg, (module, setting) in hooks.items():
    try:
        v = version(pkg)
        spec = importlib.util.find_spec(module)
        source = open(spec.origin, encoding="utf-8").read() if spec else ""
    except (PackageNotFoundError, ModuleNotFoundError):
        print(f"{pkg}: not installed"); ok = False; continue
    fine = setting in source
    print(f"{pkg} {v}: {'reads ' + setting if fine else 'lacks ' + setting + ' (InvenioRDM 12?)'}")
    ok &= fine
print("No patches needed (InvenioRDM 13)." if ok else
      "This package supports InvenioRDM 13 only; upgrade instead of patching.")
sys.exit(0 if ok else 1)
PY
