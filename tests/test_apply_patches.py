# Part of invenio-stats-dashboard (MIT License).
"""``apply_patches.sh``: checks, all-or-nothing writes, idempotence, byte-exact revert.

The patch runs are made on a copy of the installed invenio-requests and
invenio-rdm-records (put back to their released state from the script's own
backup when this environment is the patched 12 one), never on the packages
this test process runs with. Without the 12.x releases the patches are made
for (on 13 and 14), only the "no patch needed" answer is tested.
"""

import compileall
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "apply_patches.sh"
SITE = Path(sysconfig.get_paths()["purelib"])
BACKUP = ".invenio_stats_dashboard_patch_backup"
LINES = [line.split() for line in (ROOT / "patches" / "SHA256SUMS").read_text().splitlines()
         if line.strip() and not line.startswith("#")]


def installed(pkg):
    from importlib.metadata import version

    return version(pkg)


#: ``(file, released sha, patched sha)`` for the releases installed here.
SUMS = [(f, o, p) for pkg, v, f, o, p, _patch in LINES if installed(pkg) == v]
PATCHABLE = len(SUMS) == 4  # two files of each package


def run(*args):
    done = subprocess.run(["bash", str(SCRIPT), *map(str, args)], capture_output=True,
                          text=True, timeout=120)
    return done.returncode, done.stdout, done.stderr


def tree(site):
    """Every file below ``site`` with its content hash and modification time."""
    state = {}
    for path in sorted(site.rglob("*")):
        if path.is_file():
            stat = path.stat()
            state[str(path.relative_to(site))] = (
                hashlib.sha256(path.read_bytes()).hexdigest(), stat.st_mtime_ns)
    return state


@pytest.fixture()
def env(tmp_path):
    """A folder with a site-packages holding released copies of the two packages."""
    if not PATCHABLE:
        pytest.skip("the 12.x releases the patches are made for are not installed here")
    site = tmp_path / "env" / "lib" / "python3" / "site-packages"
    site.mkdir(parents=True)
    for pattern in ("invenio_requests", "invenio_rdm_records", "invenio_requests-*.dist-info",
                    "invenio_rdm_records-*.dist-info"):
        for source in SITE.glob(pattern):
            shutil.copytree(source, site / source.name, symlinks=True)
    if (SITE / BACKUP).exists():  # this environment is patched: start from the originals
        shutil.copytree(SITE / BACKUP, site / BACKUP)
        code, out, err = run("--revert", tmp_path / "env")
        assert code == 0, out + err
    assert {f: o for f, o, _p in SUMS} == {
        f: hashlib.sha256((site / f).read_bytes()).hexdigest() for f, _o, _p in SUMS}
    return tmp_path / "env", site


def test_apply_is_idempotent_and_revert_restores_every_byte(env):
    env_dir, site = env
    original = tree(site)
    code, out, err = run(env_dir)
    assert code == 0, out + err
    assert "patched invenio-requests" in out and "patched invenio-rdm-records" in out
    assert "REQUESTS_EVENTS_SERVICE_COMPONENTS" in (
        site / "invenio_requests/services/events/config.py").read_text()
    assert {f: p for f, _o, p in SUMS} == {
        f: hashlib.sha256((site / f).read_bytes()).hexdigest() for f, _o, _p in SUMS}
    # Python recompiles the patched modules on import: new .pyc files appear.
    for file, _o, _p in SUMS:
        assert compileall.compile_file(str(site / file), quiet=2, force=True)
    patched = tree(site)
    code, out, _ = run(env_dir)
    assert code == 0 and "Nothing to do." in out
    assert tree(site) == patched  # the second run wrote nothing
    code, out, _ = run("--check", env_dir)
    assert code == 0 and "Hooks present." in out
    code, out, err = run("--revert", env_dir)
    assert code == 0, out + err
    assert tree(site) == original  # contents and modification times, .pyc included
    assert not (site / BACKUP).exists()
    code, out, _ = run("--check", env_dir)
    assert code == 1 and "Patches needed" in out


def test_dry_run_writes_nothing(env):
    env_dir, site = env
    before = tree(site)
    code, out, err = run("--dry-run", env_dir)
    assert code == 0, out + err
    assert out.count("would patch") == 2
    assert tree(site) == before


def test_an_altered_file_is_refused_before_anything_is_written(env):
    env_dir, site = env
    target = site / "invenio_rdm_records/services/communities/service.py"
    target.write_text(target.read_text() + "# local change\n")
    before = tree(site)
    code, out, err = run(env_dir)
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("Error: ") and "service.py" in err
    assert tree(site) == before  # invenio-requests, checked first, is untouched too


def test_an_uncovered_release_is_refused(env):
    env_dir, site = env
    metadata = next(site.glob("invenio_requests-*.dist-info")) / "METADATA"
    text = metadata.read_text()
    metadata.write_text(text.replace(f"\nVersion: {installed('invenio-requests')}\n",
                                     "\nVersion: 4.0.0\n", 1))
    before = tree(site)
    code, _out, err = run(env_dir)
    assert code == 1 and err.startswith("Error: invenio-requests 4.0.0 lacks")
    assert tree(site) == before


def test_releases_with_the_hooks_need_no_patch(tmp_path):
    """13 and 14 (or a patched 12): --check answers yes, and applying writes nothing."""
    if PATCHABLE:
        pytest.skip("this environment has the 12.x releases (covered above)")
    env_dir = Path(sys.prefix)
    before = {p: p.stat().st_mtime_ns for pkg in ("invenio_requests", "invenio_rdm_records")
              for p in (SITE / pkg / "services").rglob("*.py")}
    code, out, err = run("--check", env_dir)
    assert code == 0, out + err
    assert out.count(": not needed") == 2
    code, out, err = run(env_dir)
    assert code == 0 and "Nothing to do." in out
    assert not (SITE / BACKUP).exists()
    assert before == {p: p.stat().st_mtime_ns for p in before}


def test_usage_errors_are_one_line():
    code, _out, err = run("--frobnicate")
    assert code == 1
    assert err == "Error: unknown option --frobnicate (use --check, --dry-run or --revert)\n"
    code, _out, err = run(f"/nonexistent-{os.getpid()}")
    assert code == 1 and err.startswith("Error: no environment at")
