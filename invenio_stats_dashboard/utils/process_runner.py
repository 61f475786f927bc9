# Part of invenio-stats-dashboard (MIT License).
"""The detached runner of a background job (see ``process_manager``).

    python -m invenio_stats_dashboard.utils.process_runner --name N --dir D -- CMD...

Takes the job lock (exit 3 if held), records PID and status, runs ``CMD``
with its output appended to the job log (the previous log is kept as
``.log.1``), forwards SIGTERM to it, and records how it ended.
"""

import argparse
import fcntl
import os
import signal
import subprocess
import sys
import time

from .process_manager import STATUS_ENV, ProcessManager, _read_json, _write_json


def main(argv=None):
    """Run one job; returns the runner's exit code."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    job = ProcessManager(args.name, args.dir)

    lock = os.open(job.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"Process {args.name} is already running", file=sys.stderr)
        return 3

    cancelled = {"flag": False}
    running = {}

    def _on_term(signum, frame):
        cancelled["flag"] = True
        child = running.get("child")
        if child is not None:
            try:
                child.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass

    # Handlers first: a cancel in the window before the child exists is still a cancel.
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGINT, _on_term)
    if job.log_file.exists():
        os.replace(job.log_file, f"{job.log_file}.1")
    log = open(job.log_file, "a", encoding="utf-8")
    started = time.time()
    status = {"pid": os.getpid(), "start_time": started, "status": "running",
              "command": " ".join(command), "progress": 0, "current_task": "Starting...",
              "last_update": started, "name": args.name}
    _write_json(job.status_file, status)
    job.pid_file.write_text(str(os.getpid()))

    child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL,
                             env={**os.environ, STATUS_ENV: str(job.status_file)})
    running["child"] = child
    if cancelled["flag"]:
        child.send_signal(signal.SIGTERM)
    code = child.wait()
    final = _read_json(job.status_file) or status
    if cancelled["flag"]:
        final["status"] = "cancelled"
    elif code == 0:
        final.update(status="finished", progress=100.0)
    else:
        final["status"] = "failed"
    final.update(exit_code=code, end_time=time.time(), last_update=time.time(),
                 current_task="Done" if code == 0 else final.get("current_task"))
    _write_json(job.status_file, final)
    job.pid_file.unlink(missing_ok=True)
    log.close()
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
