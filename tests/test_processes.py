# Part of invenio-stats-dashboard (MIT License).
"""Background jobs: list, status, log, cancel, refusal of duplicates, real backfill job."""

import sys
import time

import psutil
import pytest

from invenio_stats_dashboard.cli import cli
from invenio_stats_dashboard.exceptions import ProcessError
from invenio_stats_dashboard.utils.process_manager import ProcessManager

from oracles import log_pairs, oracle_pairs, wipe_log

SLOW_JOB = (
    "import time\n"
    "from invenio_stats_dashboard.utils.process_manager import JobReporter\n"
    "print('working on it', flush=True)\n"
    "JobReporter(0).update(1, 4, 'first quarter', force=True)\n"
    "time.sleep(120)\n"
)


def wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not reached in time")


def run_cli(app, *args):
    return app.test_cli_runner().invoke(cli, list(args))


def test_job_lifecycle_list_status_log_cancel(services, tmp_path):
    job = ProcessManager("slow-job", tmp_path)
    pid = job.start([sys.executable, "-c", SLOW_JOB])
    wait_for(lambda: (job.status() or {}).get("progress") == 25.0)

    result = run_cli(services, "processes", "list", "--pid-dir", str(tmp_path))
    assert result.exit_code == 0 and "slow-job: running (25%)" in result.output

    result = run_cli(services, "processes", "status", "slow-job", "--show-log",
                     "--pid-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert f"PID:          {pid}" in result.output
    assert "25.0%" in result.output and "first quarter" in result.output
    assert "working on it" in result.output and "🟢 Process is running" in result.output

    with pytest.raises(ProcessError, match="already running"):
        job.start([sys.executable, "-c", "print(1)"])

    result = run_cli(services, "processes", "cancel", "slow-job", "--timeout", "10",
                     "--pid-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    status = job.status()
    assert status["status"] == "cancelled" and status["running"] is False
    assert status["end_time"] >= status["start_time"]
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE

    result = run_cli(services, "processes", "cancel", "slow-job", "--pid-dir", str(tmp_path))
    assert result.exit_code == 1 and "Error: Process slow-job is not running" in result.output


def test_failed_job_is_recorded(services, tmp_path):
    job = ProcessManager("failing", tmp_path)
    job.start([sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"])
    status = wait_for(lambda: (s := job.status()) and not s["running"] and s)
    assert status["status"] == "failed" and status["exit_code"] == 3
    assert "boom" in "".join(job.read_log())
    result = run_cli(services, "processes", "status", "nothing-here", "--pid-dir", str(tmp_path))
    assert result.exit_code == 1 and "No background process named nothing-here" in result.output


def test_generate_background_job_lifecycle(services, make_record, child_env, tmp_path):
    """The real backfill job: listed and read while running, refused twice, cancelled,
    then run to completion with its outcome recorded."""
    for _ in range(3):
        make_record()
    wipe_log()
    pid_dir = ["--pid-dir", str(tmp_path)]
    name = "community-event-generation"
    job = ProcessManager(name, tmp_path)

    result = run_cli(services, "community-events", "generate-background", *pid_dir)
    assert result.exit_code == 0, result.output
    assert f"Started {name} in background" in result.output
    # The child needs seconds to build the app: it is running now.
    listed = run_cli(services, "processes", "list", *pid_dir)
    assert f"{name}: running" in listed.output
    status = run_cli(services, "processes", "status", name, "--show-log", *pid_dir)
    assert "Status:       running" in status.output and "Recent Log Output" in status.output
    again = run_cli(services, "community-events", "generate-background", *pid_dir)
    assert again.exit_code == 1 and "already running" in again.output
    cancel = run_cli(services, "processes", "cancel", name, *pid_dir)
    assert cancel.exit_code == 0, cancel.output
    assert job.status()["status"] == "cancelled"

    result = run_cli(services, "community-events", "generate-background", *pid_dir)
    assert result.exit_code == 0, result.output
    status = wait_for(lambda: (s := job.status()) and not s["running"] and s, timeout=180)
    log_text = "".join(job.read_log(200))
    assert status["status"] == "finished", log_text
    assert status["exit_code"] == 0 and status["progress"] == 100.0
    assert "New events created:" in log_text
    assert log_pairs() == oracle_pairs()


SIGTERM_RIGHT_AFTER_LOCK = (
    "import os, signal, sys, redis\n"
    "from invenio_stats_dashboard.utils import jobs\n"
    "taken = jobs.JobLock.acquire\n"
    "def acquire(self):\n"
    "    ok = taken(self)\n"
    "    os.kill(os.getpid(), signal.SIGTERM)  # a cancel in the first instant of the run\n"
    "    return ok\n"
    "jobs.JobLock.acquire = acquire\n"
    "client = redis.Redis.from_url(sys.argv[1])\n"
    "with jobs.Job('isdtest-term-race', lease=30, client=client) as job:\n"
    "    job.check()\n"
)


def test_a_cancel_right_after_the_lock_is_taken_releases_it(services):
    """SIGTERM landing between taking the lock and the job's first check stops the job
    cleanly: the lock is released, not left held for a lease (CI saw this on 12)."""
    import subprocess

    from invenio_stats_dashboard.utils.jobs import holder, redis_client

    url = services.config["CACHE_REDIS_URL"]
    redis_client().delete("lock:isdtest-term-race")
    done = subprocess.run([sys.executable, "-c", SIGTERM_RIGHT_AFTER_LOCK, url],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, (done.returncode, done.stderr)  # not killed by the signal
    assert "JobStopped: cancelled" in done.stderr
    assert holder("isdtest-term-race") is None
