# Part of invenio-stats-dashboard (MIT License).
"""One job protocol — lock, progress, cancel — for CLI commands, background jobs and tasks.

**Lock.** A job holds ``lock:<name>`` in Redis (the instance's
``CACHE_REDIS_URL``, the key upstream's ``clear-lock`` knows) with a short
*lease* (``STATS_DASHBOARD_LOCK_LEASE``, 60 s) that a heartbeat thread renews
while the job lives. A killed worker stops renewing, so its lock expires by
itself within one lease (upstream: 24 h, G21) — Redis does the expiry, so no
clock of one host is ever compared with another's. Renewal and release are
compare-and-set on the holder's token: a job never extends or deletes a lock
it no longer holds, and a job whose lease was lost stops at its next check.

**Cancel.** ``request_cancel(name)`` sets ``cancel:<name>``; the running job
sees it at its next :meth:`Job.check` (between units of work) and stops
cleanly with its bookmarks in place. Works the same for a foreground
command, a background job and a Celery task, on any host.

**Progress.** :meth:`Job.progress` forwards ``(done, total, label)`` to the
job's sink: a progress bar, a background job's status file, or a Celery
task's state.
"""

import json
import os
import signal
import socket
import threading
import time
import uuid

import redis
from flask import current_app

from ..exceptions import StatsDashboardError, TaskLockAcquisitionError

LOCK_PREFIX = "lock:"
CANCEL_PREFIX = "cancel:"
DEFAULT_LEASE = 60

# Compare-and-set scripts: only the token's owner renews or releases.
_RENEW = """if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"""
_RELEASE = """if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1]) else return 0 end"""


class JobStopped(StatsDashboardError):
    """A job was cancelled or lost its lock; its bookmarks hold the position."""


def redis_client():
    """Redis of the instance's cache (where upstream keeps its locks too)."""
    url = current_app.config.get("CACHE_REDIS_URL") or "redis://localhost:6379/0"
    return redis.Redis.from_url(url)


def lease_seconds():
    """The configured lease (a killed holder blocks others at most this long)."""
    return float(current_app.config.get("STATS_DASHBOARD_LOCK_LEASE") or DEFAULT_LEASE)


class JobLock:
    """``lock:<name>`` with a renewed lease; the value says who holds it (JSON)."""

    def __init__(self, name, lease=None, client=None, job=None):
        """Bind to a lock name; nothing is taken yet."""
        self.name = name
        self.key = f"{LOCK_PREFIX}{name}"
        self.lease = float(lease or lease_seconds())
        self.client = client or redis_client()
        self.job = job or name
        self.value = None
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = None

    def acquire(self):
        """Take the lock if free; True on success. Starts the heartbeat."""
        token = uuid.uuid4().hex
        value = json.dumps({"token": token, "job": self.job, "host": socket.gethostname(),
                            "pid": os.getpid(), "started": time.time()}, sort_keys=True)
        if not self.client.set(self.key, value, nx=True, px=int(self.lease * 1000)):
            return False
        self.value = value
        self.lost.clear()
        self._stop.clear()
        self._thread = threading.Thread(target=self._heartbeat, daemon=True,
                                        name=f"lock-{self.name}")
        self._thread.start()
        return True

    def _heartbeat(self):
        interval = max(self.lease / 4, 0.05)
        while not self._stop.wait(interval):
            try:
                renewed = self.client.eval(_RENEW, 1, self.key, self.value,
                                           int(self.lease * 1000))
            except redis.RedisError:
                renewed = 0  # keep trying until the lease would have run out
                if self._expired_locally():
                    self.lost.set()
                    return
                continue
            if not renewed:
                self.lost.set()  # expired or taken over: the job must stop
                return
            self._renewed_at = time.monotonic()

    def _expired_locally(self):
        return time.monotonic() - getattr(self, "_renewed_at", 0) > self.lease

    def release(self):
        """Stop the heartbeat and delete the lock if it is still ours."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self.value is not None:
            try:
                self.client.eval(_RELEASE, 1, self.key, self.value)
            finally:
                self.value = None

    def __enter__(self):
        """Take the lock or raise :class:`TaskLockAcquisitionError` naming the holder."""
        self._renewed_at = time.monotonic()
        if not self.acquire():
            raise TaskLockAcquisitionError(describe_holder(self.name, self.client))
        return self

    def __exit__(self, *exc):
        """Release."""
        self.release()
        return False


def holder(name, client=None):
    """The holder's record (``job``, ``host``, ``pid``, ``started``, ``ttl``) or None."""
    client = client or redis_client()
    raw = client.get(f"{LOCK_PREFIX}{name}")
    if raw is None:
        return None
    try:
        info = json.loads(raw)
    except (TypeError, ValueError):
        info = {"value": raw.decode(errors="replace") if isinstance(raw, bytes) else raw}
    info.pop("token", None)
    info["ttl"] = max(client.pttl(f"{LOCK_PREFIX}{name}"), 0) / 1000
    return info


def describe_holder(name, client=None):
    """One line for errors: who holds ``name`` and when it expires without them."""
    info = holder(name, client)
    if info is None:
        return f"lock {name} is busy"
    since = time.time() - float(info.get("started", time.time()))
    return (f"another run holds lock {name} ({info.get('job', '?')} on "
            f"{info.get('host', '?')} pid {info.get('pid', '?')}, running for {since:.0f} s; "
            f"it expires {info['ttl']:.0f} s after its holder stops)")


def list_locks(client=None):
    """``{name: holder}`` of every ``lock:*`` key (SCAN, never KEYS)."""
    client = client or redis_client()
    found = {}
    for key in client.scan_iter(match=f"{LOCK_PREFIX}*", count=500):
        name = key.decode()[len(LOCK_PREFIX):] if isinstance(key, bytes) else key[len(LOCK_PREFIX):]
        info = holder(name, client)
        if info is not None:
            found[name] = info
    return found


def clear_lock(name, client=None):
    """Delete a lock whatever its holder (``clear-lock``); True if one was there."""
    client = client or redis_client()
    return bool(client.delete(f"{LOCK_PREFIX}{name}"))


def request_cancel(name, client=None, ttl=None):
    """Ask the running job ``name`` to stop at its next check."""
    client = client or redis_client()
    client.set(f"{CANCEL_PREFIX}{name}", str(time.time()),
               ex=int(ttl or max(lease_seconds() * 10, 600)))


class Job:
    """A running job: its lock, its cancel flag and its progress sink.

    ``with Job("event-migration", progress=bar) as job:`` takes the lock
    (or raises :class:`TaskLockAcquisitionError`), clears an old cancel
    request, and releases everything on exit. Call :meth:`check` between
    units of work.
    """

    def __init__(self, name, progress=None, lease=None, client=None, locked=True):
        """``progress`` is optional; ``locked=False`` runs without the lock (config)."""
        self.name = name
        self.client = client or redis_client()
        self.lock = JobLock(name, lease=lease, client=self.client) if locked else None
        self._progress = progress
        self._terminated = threading.Event()

    def __enter__(self):
        """Take the lock; forget a cancel request made before this run.

        In a process's main thread, SIGTERM (``processes cancel``, a stopping
        worker) becomes a cancel request: the job stops at its next check with
        its bookmarks in place instead of dying mid-write.
        """
        # The handler goes in before the lock: a SIGTERM arriving right after
        # the lock is taken must not kill the process with the lock held.
        self._terminated = threading.Event()
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._on_term)
        if self.lock is not None:
            try:
                self.lock.__enter__()
            except BaseException:
                self._restore_signal()
                raise
        self.client.delete(f"{CANCEL_PREFIX}{self.name}")
        return self

    def _restore_signal(self):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def _on_term(self, signum, frame):
        self._terminated.set()

    def __exit__(self, *exc):
        """Release the lock and restore the signal handler."""
        self._restore_signal()
        if self.lock is not None:
            return self.lock.__exit__(*exc)
        return False

    @property
    def cancelled(self):
        """Whether a cancel was requested since the job started."""
        return bool(self.client.exists(f"{CANCEL_PREFIX}{self.name}"))

    def stop_reason(self):
        """Why the job must stop now, or None."""
        if self.lock is not None and self.lock.lost.is_set():
            return f"lost lock {self.name} (lease expired or taken over)"
        if self._terminated.is_set() or self.cancelled:
            return "cancelled"
        return None

    def check(self):
        """Raise :class:`JobStopped` if the job must stop."""
        reason = self.stop_reason()
        if reason:
            raise JobStopped(reason)

    def progress(self, *args):
        """Forward progress to the sink, if any."""
        if self._progress is not None:
            self._progress(*args)


def configured_job(kind, progress=None):
    """The :class:`Job` of a ``STATS_DASHBOARD_LOCK_CONFIG`` entry (``aggregation``, …).

    The lock is taken unless the global or the entry's ``enabled`` is false.
    """
    config = current_app.config.get("STATS_DASHBOARD_LOCK_CONFIG") or {}
    entry = config.get(kind) or {}
    name = entry.get("lock_name") or f"community_stats_{kind}"
    locked = bool(config.get("enabled", True) and entry.get("enabled", True))
    return Job(name, progress=progress, locked=locked)
