# Part of invenio-stats-dashboard (MIT License).
"""Background jobs for every ``*-background`` command (cli.md §6–7, done right).

A job is a detached *runner* process (own session) that holds an exclusive
``flock`` on ``<name>.lock`` for its whole life, runs the real
``invenio community-stats ...`` command as its child with output in
``<name>.log``, and records the outcome in ``<name>.status`` (JSON: status
running/finished/failed/cancelled, progress, current task, start/end times,
exit code). The lock — not a PID — says whether a job runs, so stale PID files
and reused PIDs cannot fool it, and two jobs of one name cannot run at once.
Cancelling signals the job's whole process group.

Files live in ``STATS_DASHBOARD_PROCESS_DIR`` (default
``<instance path>/stats-dashboard-processes``, mode 0700), not in ``/tmp``.
"""

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..exceptions import ProcessError

PREFIX = "invenio-community-stats"
STATUS_ENV = "ISD_PROCESS_STATUS_FILE"
FINAL_STATES = ("finished", "failed", "cancelled")


def default_dir():
    """The configured job folder (needs an app context)."""
    from flask import current_app

    folder = current_app.config.get("STATS_DASHBOARD_PROCESS_DIR") or os.path.join(
        current_app.instance_path, "stats-dashboard-processes")
    return folder


def _write_json(path, data):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
    os.replace(tmp, path)


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


class ProcessManager:
    """Start, inspect and cancel one named background job."""

    def __init__(self, process_name, pid_dir=None, package_prefix=PREFIX):
        """Paths of the job's files; the folder is created private."""
        self.name = process_name
        self.dir = Path(pid_dir or default_dir())
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        base = self.dir / f"{package_prefix}-{process_name}"
        self.pid_file = Path(f"{base}.pid")
        self.status_file = Path(f"{base}.status")
        self.log_file = Path(f"{base}.log")
        self.lock_file = Path(f"{base}.lock")

    # -- state ---------------------------------------------------------------
    def is_running(self):
        """True while a runner holds the job's lock."""
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        finally:
            os.close(fd)

    def status(self):
        """The status document (with ``running``), or None if never started."""
        data = _read_json(self.status_file)
        if data is None:
            return None
        running = self.is_running()
        if data.get("status") == "running" and not running:
            data["status"] = "failed"  # runner vanished without recording an end
            data.setdefault("error", "the job ended without recording its outcome")
        data["running"] = running
        return data

    def read_log(self, lines=20):
        """The last ``lines`` lines of the job's log."""
        if not self.log_file.exists():
            return None
        with open(self.log_file, encoding="utf-8", errors="replace") as fh:
            return fh.readlines()[-lines:]

    # -- actions -------------------------------------------------------------
    def start(self, argv, wait=10.0):
        """Launch ``argv`` as this job, detached; returns the runner's PID."""
        if self.is_running():
            data = _read_json(self.status_file) or {}
            raise ProcessError(
                f"Process {self.name} is already running (PID: {data.get('pid', '?')})")
        runner = [sys.executable, "-m", "invenio_stats_dashboard.utils.process_runner",
                  "--name", self.name, "--dir", str(self.dir), "--", *argv]
        self.status_file.unlink(missing_ok=True)
        proc = subprocess.Popen(runner, start_new_session=True, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            data = _read_json(self.status_file)
            if data and data.get("pid") == proc.pid:
                return proc.pid
            code = proc.poll()
            if code is not None:
                err = proc.stderr.read().decode(errors="replace").strip()
                raise ProcessError(err.splitlines()[-1] if err else
                                   f"background job exited with code {code}")
            time.sleep(0.05)
        raise ProcessError(f"background job {self.name} did not start within {wait:.0f} s")

    def cancel(self, timeout=30):
        """SIGTERM the job's process group, SIGKILL after ``timeout`` s."""
        data = _read_json(self.status_file) or {}
        if not self.is_running() or not data.get("pid"):
            raise ProcessError(f"Process {self.name} is not running")
        pgid = os.getpgid(data["pid"])
        os.killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.is_running():
            time.sleep(0.1)
        if self.is_running():
            os.killpg(pgid, signal.SIGKILL)
            for _ in range(50):
                if not self.is_running():
                    break
                time.sleep(0.1)
            data = _read_json(self.status_file) or data
            data.update(status="cancelled", end_time=time.time())
            _write_json(self.status_file, data)
        return _read_json(self.status_file)


def list_processes(pid_dir=None, package_prefix=PREFIX):
    """Status documents of every job in the folder, by name."""
    folder = Path(pid_dir or default_dir())
    jobs = {}
    for path in sorted(folder.glob(f"{package_prefix}-*.status")):
        name = path.name[len(package_prefix) + 1:-len(".status")]
        jobs[name] = ProcessManager(name, folder, package_prefix).status()
    return jobs


class JobReporter:
    """Progress reporting of a command running as a background job.

    Foreground runs have no status file (``active`` is False) and report to
    a progress bar instead; the same callback shape serves both.
    """

    def __init__(self, min_interval=0.5):
        """Find the status file from the environment the runner set."""
        self.path = os.environ.get(STATUS_ENV)
        self.min_interval = min_interval
        self._last = 0.0

    @property
    def active(self):
        """True inside a background job."""
        return bool(self.path)

    def update(self, done, total, task=None, force=False):
        """Record progress (throttled)."""
        if not self.path:
            return
        now = time.monotonic()
        if not force and now - self._last < self.min_interval:
            return
        self._last = now
        data = _read_json(self.path) or {}
        data.update(progress=round(100.0 * done / total, 1) if total else 100.0,
                    processed=done, total=total, last_update=time.time())
        if task:
            data["current_task"] = task
        _write_json(self.path, data)
