#!/usr/bin/env bash
# apply_patches.sh [--check | --dry-run | --revert] [environment_path]
#
# InvenioRDM 12 lacks two hooks this package needs, which InvenioRDM 13 ships
# (invenio-requests PR 457: request-event service components; invenio-rdm-records
# PR 2002: record-communities service components). This script adds them to a
# 12 environment with the minimal unified diffs in patches/, made against the
# exact releases listed in patches/SHA256SUMS. Unlike upstream, which copies
# whole modules over site-packages, it
#   * checks the installed versions and the SHA-256 of every file it would
#     touch before writing anything (a modified or unknown file: nothing written);
#   * keeps a backup of the original files (and their compiled .pyc) in
#     <site-packages>/.invenio_stats_dashboard_patch_backup/, which --revert
#     restores byte for byte (modification times included);
#   * is idempotent: a patched package is left alone; a package that already
#     has the hooks (InvenioRDM 13 or later) needs no patch.
#
#   (no option)  apply the patches that are missing
#   --check      report; exit 0 when the hooks are present, 1 otherwise
#   --dry-run    say what would be done (runs `patch --dry-run`), write nothing
#   --revert     restore the backed-up originals
#
# environment_path: a virtualenv (or any folder with a site-packages below it);
# default ./.venv. Exit status 0 on success, 1 with one "Error: ..." line.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MODE=apply ENV_DIR=""
for arg in "$@"; do
  case "$arg" in
    --check) MODE=check ;;
    --dry-run) MODE=dry-run ;;
    --revert) MODE=revert ;;
    -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "Error: unknown option $arg (use --check, --dry-run or --revert)" >&2; exit 1 ;;
    *) [ -z "$ENV_DIR" ] || { echo "Error: more than one environment path given" >&2; exit 1; }
       ENV_DIR="$arg" ;;
  esac
done
ENV_DIR="${ENV_DIR:-./.venv}"
# Relative paths: from the current folder, else (upstream's rule) from this script's folder.
if [ ! -d "$ENV_DIR" ] && [ -d "$HERE/$ENV_DIR" ]; then ENV_DIR="$HERE/$ENV_DIR"; fi
[ -d "$ENV_DIR" ] || { echo "Error: no environment at $ENV_DIR" >&2; exit 1; }
ENV_DIR="$(cd "$ENV_DIR" && pwd)"

if [ -x "$ENV_DIR/bin/python" ]; then
  SITE="$("$ENV_DIR/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
else
  SITE="$(find "$ENV_DIR" -type d -name site-packages 2>/dev/null | sort | head -n 1)"
fi
[ -n "$SITE" ] && [ -d "$SITE" ] || { echo "Error: no site-packages under $ENV_DIR" >&2; exit 1; }
command -v patch >/dev/null 2>&1 || { echo "Error: the 'patch' program is needed (apt-get install patch)" >&2; exit 1; }
PY="$(command -v python3 || true)"
[ -x "$ENV_DIR/bin/python" ] && PY="$ENV_DIR/bin/python"
[ -n "$PY" ] || { echo "Error: python3 not found" >&2; exit 1; }

exec "$PY" - "$MODE" "$SITE" "$HERE/patches" <<'PY'
"""The work of apply_patches.sh (see its header)."""
import hashlib
import shutil
import subprocess
import sys
from importlib.metadata import distributions
from pathlib import Path

mode, site, patches = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
BACKUP = site / ".invenio_stats_dashboard_patch_backup"
#: What a package that has the hooks already contains (InvenioRDM 13 and later).
HOOKS = {
    "invenio-requests": ("invenio_requests/services/events/config.py",
                         "REQUESTS_EVENTS_SERVICE_COMPONENTS"),
    "invenio-rdm-records": ("invenio_rdm_records/services/config.py",
                            "RDM_RECORD_COMMUNITIES_SERVICE_COMPONENTS"),
}


class Refused(Exception):
    """A check failed: nothing was (or will be) written."""


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest():
    """``{package: {version: [(file, original sha, patched sha, patch)]}}``."""
    table = {}
    for line in (patches / "SHA256SUMS").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            pkg, version, *entry = line.split()
            table.setdefault(pkg, {}).setdefault(version, []).append(tuple(entry))
    return table


def installed_versions():
    found = {}
    for dist in distributions(path=[str(site)]):
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        found.setdefault(name, dist.version)
    return found


def compiled(file):
    """The .pyc files of a module, as they are now."""
    path = site / file
    return sorted((path.parent / "__pycache__").glob(f"{path.stem}.*.pyc"))


def plan():
    """Per package: (version, state, files). Raises Refused before anything is written."""
    table, versions, result = manifest(), installed_versions(), {}
    for pkg, (hook_file, setting) in HOOKS.items():
        version = versions.get(pkg)
        if version is None:
            raise Refused(f"{pkg} is not installed in {site}")
        files = table.get(pkg, {}).get(version)
        if files is None:
            source = site / hook_file
            if source.exists() and setting in source.read_text(encoding="utf-8"):
                result[pkg] = (version, "not needed", [])
                continue
            covered = ", ".join(sorted(table.get(pkg, {}))) or "none"
            raise Refused(f"{pkg} {version} lacks {setting} and no patch is made for it "
                          f"(patched releases: {covered})")
        states = set()
        for file, original, patched, _patch in files:
            path = site / file
            digest = sha(path) if path.exists() else None
            if digest == original:
                states.add("unpatched")
            elif digest == patched:
                states.add("patched")
            else:
                raise Refused(f"{path} is not the file of {pkg} {version} the patch was made "
                              f"for (sha256 {digest}); nothing was changed")
        if len(states) > 1:
            raise Refused(f"{pkg} {version} is partly patched; run --revert first")
        result[pkg] = (version, states.pop(), files)
    return result


def run_patch(pkg, version, files, dry_run):
    cmd = ["patch", "-p1", "--forward", "--batch", "--fuzz=0", "--no-backup-if-mismatch",
           "-r", "-", "-d", str(site), "-i", str(patches / files[0][3])]
    if dry_run:
        cmd.append("--dry-run")
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise Refused(f"patch failed for {pkg} {version}: "
                      f"{(done.stdout + done.stderr).strip().splitlines()[-1:]}")


def backup(pkg, version, files):
    folder = BACKUP / f"{pkg}-{version}"
    if folder.exists():
        shutil.rmtree(folder)
    for file, *_ in files:
        for path in [site / file, *compiled(file)]:
            target = folder / path.relative_to(site)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def restore(pkg, version, files):
    """Put the backed-up originals (and only their .pyc) back, byte for byte."""
    folder = BACKUP / f"{pkg}-{version}"
    for file, original, *_ in files:
        kept = folder / file
        if not kept.exists() or sha(kept) != original:
            raise Refused(f"the backup of {file} is missing or altered ({folder})")
    for file, *_ in files:
        for pyc in compiled(file):
            pyc.unlink()
        shutil.copy2(folder / file, site / file)
        for pyc in (folder / file).parent.glob("__pycache__/*.pyc"):
            if pyc.name.startswith(Path(file).stem + "."):
                shutil.copy2(pyc, site / pyc.relative_to(folder))
    shutil.rmtree(folder)
    if BACKUP.exists() and not any(BACKUP.iterdir()):
        BACKUP.rmdir()


def main():
    try:
        packages = plan()
    except Refused as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    for pkg, (version, state, _files) in packages.items():
        print(f"{pkg} {version}: {state}")
    todo = {p: v for p, v in packages.items() if v[1] == "unpatched"}
    patched = {p: v for p, v in packages.items() if v[1] == "patched"}
    try:
        if mode == "check":
            print("Hooks present." if not todo else "Patches needed: run apply_patches.sh.")
            return 0 if not todo else 1
        if mode == "dry-run":
            for pkg, (version, _state, files) in todo.items():
                run_patch(pkg, version, files, dry_run=True)
                print(f"would patch {pkg} {version} (backup in {BACKUP})")
            print("Nothing to do." if not todo else "Dry run: nothing written.")
            return 0
        if mode == "revert":
            for pkg, (version, _state, files) in patched.items():
                restore(pkg, version, files)
                print(f"restored {pkg} {version}")
            print("Nothing to revert." if not patched else "Reverted.")
            return 0
        for pkg, (version, _state, files) in todo.items():  # all-or-nothing
            run_patch(pkg, version, files, dry_run=True)
        done = []
        try:
            for pkg, (version, _state, files) in todo.items():
                backup(pkg, version, files)
                done.append((pkg, version, files))
                run_patch(pkg, version, files, dry_run=False)
                if any(sha(site / f) != p for f, _o, p, _patch in files):
                    raise Refused(f"{pkg} {version}: patched files differ from the expected result")
                print(f"patched {pkg} {version}")
        except Exception:
            for pkg, version, files in done:  # leave the environment as it was
                for file, *_ in files:
                    shutil.copy2(BACKUP / f"{pkg}-{version}" / file, site / file)
                shutil.rmtree(BACKUP / f"{pkg}-{version}", ignore_errors=True)
            raise
        print("Nothing to do." if not todo else f"Done (originals kept in {BACKUP}).")
        return 0
    except Refused as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1


sys.exit(main())
PY
