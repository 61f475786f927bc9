# Part of invenio-stats-dashboard (MIT License).
"""Aggregation runs in other processes: SIGKILL, concurrent runs, lost cluster, scale-out.

Runs are real ``invenio community-stats aggregate`` processes and real Celery
workers (``agg_child``), with the test family; the membership history is made
through the RDM services and the expected documents come from the plan
(``agg_helpers.oracle``), so "the same documents as an uninterrupted run"
means: equal to the oracle, field by field.
"""

import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from invenio_search.proxies import current_search_client

from invenio_stats_dashboard.aggregations import documents as docs
from invenio_stats_dashboard.aggregations.series import get
from invenio_stats_dashboard.cli import cli
from invenio_stats_dashboard.utils.jobs import holder, list_locks

from agg_helpers import (
    DELTA,
    SNAPSHOT,
    TODAY,
    TYPES,
    bookmarks,
    history_fixture,
    overlapping,
    read_all,
    reset,
    spans,
    stepped_config,
    valid_through_bookmarks,
)
from fault_proxy import FaultProxy

CHILD = str(Path(__file__).with_name("agg_child.py"))
INTERVAL = 100
pytestmark = pytest.mark.usefixtures("agg_test_family")
app_config = stepped_config(INTERVAL)
history = history_fixture(["global", "alpha", "beta"])


@pytest.fixture()
def env(child_env, monkeypatch):
    """Children: a one-second lease, small catch-up steps, a slow family."""
    for key, value in {"STATS_DASHBOARD_LOCK_LEASE": "1",
                       "COMMUNITY_STATS_CATCHUP_INTERVAL": str(INTERVAL),
                       "AGG_TEST_FAMILY_DELAY": "0.004"}.items():
        monkeypatch.setenv(f"INVENIO_{key}", value)
    return monkeypatch


def community_args(history):
    return [a for c in history["communities"] for a in ("--community-id", c)]


def aggregate_argv(history, *extra):
    return [sys.executable, CHILD, "invenio", "community-stats", "aggregate", "--force",
            "--no-show-progress", *TYPES, *community_args(history), *extra]


def start_until(history, ready, **streams):
    """A catching-up run in another process, returned once ``ready()`` (while it runs)."""
    proc = subprocess.Popen(aggregate_argv(history, "--until-caught-up"), text=True,
                            **streams)
    deadline = time.monotonic() + 120
    while not ready():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    return proc


def written():
    """Documents of both series, searchable now."""
    aliases = [docs.alias_name(get(name)) for name in (DELTA, SNAPSHOT)]
    existing = [a for a in aliases if current_search_client.indices.exists_alias(name=a)]
    if not existing:
        return 0
    current_search_client.indices.refresh(index=",".join(existing))
    return current_search_client.count(index=",".join(existing))["count"]


def wait_until_unlocked(timeout=10):
    deadline = time.monotonic() + timeout
    while any(n.startswith("agg:") or n == "community_stats_aggregation"
              for n in list_locks()):
        assert time.monotonic() < deadline, list_locks()
        time.sleep(0.1)


def test_sigkill_at_random_points_then_rerun_gives_the_uninterrupted_documents(history, env):
    """X2: killed 5 times mid-run, without any clean-up; the sixth run finishes."""
    reset()
    expected = history["expected"]
    rng = random.Random(11)
    kills = []
    for left in range(5, 0, -1):
        done = written()
        goal = done + rng.uniform(0.2, 0.8) * (len(expected) - done) / (left + 1)
        wait_until_unlocked()
        proc = subprocess.Popen(aggregate_argv(history, "--until-caught-up"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 180
        while written() < goal and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.kill()  # SIGKILL: no clean-up of any kind
        proc.wait()
        kills.append(written())
        assert valid_through_bookmarks(expected)  # every bookmark promises only final days
    assert all(0 < n < len(expected) for n in kills), kills  # every kill landed mid-run
    wait_until_unlocked()
    done = subprocess.run(aggregate_argv(history, "--until-caught-up"), capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert read_all() == expected
    assert bookmarks() == {(s, c): TODAY for s in (DELTA, SNAPSHOT)
                           for c in history["communities"]}


def test_a_killed_runs_locks_stop_blocking_within_the_lease(history, env):
    """G21: the lease (1 s here, STATS_DASHBOARD_LOCK_LEASE) — not 24 hours."""
    reset()
    proc = start_until(history, lambda: any(n.startswith("agg:") for n in list_locks()),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    held = sorted(list_locks())
    assert "community_stats_aggregation" in held
    proc.kill()
    proc.wait()
    killed_at = time.monotonic()
    assert any(holder(n) for n in held)  # still there right after the kill ...
    wait_until_unlocked(timeout=5)  # ... and gone within the lease (plus Redis' expiry)
    assert time.monotonic() - killed_at < 2.5
    done = subprocess.run(aggregate_argv(history, "--until-caught-up"), capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert read_all() == history["expected"]


def test_two_concurrent_runs_never_compute_a_unit_twice_at_once(history, env):
    """With the run lock off, the chain locks alone keep two runs apart."""
    reset()
    env.setenv("INVENIO_STATS_DASHBOARD_LOCK_CONFIG", "{'enabled': False}")
    procs = [subprocess.Popen(aggregate_argv(history, "--until-caught-up"),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    seen = spans()
    assert len({s["pid"] for s in seen}) == 2  # both runs computed something
    assert overlapping(seen) == []
    assert read_all() == history["expected"]


def test_a_second_run_is_skipped_while_the_first_holds_the_run_lock(history, env):
    reset()
    first = start_until(history, lambda: holder("community_stats_aggregation") is not None,
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    second = subprocess.run(aggregate_argv(history), capture_output=True, text=True,
                            timeout=300)
    assert second.returncode == 1
    errors = [line for line in second.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "another instance running" in errors[0], second.stderr
    assert first.wait(timeout=600) == 0
    assert read_all() == history["expected"]


def test_cluster_lost_mid_run_one_error_line_then_the_next_run_completes(
        history, services, create_app, app_config):
    """Every request refused (503) after a while: one message, bookmarks safe, resumable."""
    reset()
    expected = history["expected"]
    seen = []

    def refuse_later(method, path):
        if "_bulk" in path:
            seen.append(path)
        if len(seen) > 6:
            return 503, {"error": {"type": "unavailable", "reason": "node left"},
                         "status": 503}
        return None

    with FaultProxy(refuse_later) as proxy:
        app = create_app(**{**app_config,
                            "SEARCH_HOSTS": [{"host": "127.0.0.1", "port": proxy.port}],
                            "SEARCH_CLIENT_CONFIG": {"timeout": 60, "max_retries": 0},
                            "COMMUNITY_STATS_SCHEDULED_AGG_TASKS_ENABLED": True})
        with app.app_context():  # the command runs on the proxied app
            result = app.test_cli_runner().invoke(
                cli, ["aggregate", "--until-caught-up", "--no-show-progress", *TYPES,
                      *community_args(history)])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert lines[0].startswith("Error: aggregation stopped: search cluster unavailable: ")
    assert "Traceback" not in result.output
    found = read_all()
    assert found and len(found) < len(expected)
    assert valid_through_bookmarks(expected)
    runner = services.test_cli_runner()
    again = runner.invoke(cli, ["aggregate", "--force", "--until-caught-up",
                                "--no-show-progress", *TYPES, *community_args(history)])
    assert again.exit_code == 0, again.output
    assert read_all() == expected


def test_a_catch_up_on_two_celery_workers_gives_the_single_process_documents(
        history, services, env):
    """Scale-out: the task queues one helper; both workers take communities."""
    reset()
    cfg = services.config
    env.setenv("INVENIO_CELERY_TASK_ALWAYS_EAGER", "False")
    env.setenv("INVENIO_CELERY_RESULT_BACKEND", cfg["CELERY_RESULT_BACKEND"])
    env.setenv("INVENIO_AGG_TEST_FAMILY_DELAY", "0.01")
    celery = services.extensions["invenio-celery"].celery
    celery.control.purge()
    workers = [subprocess.Popen(
        [sys.executable, CHILD, "celery", "worker", "--pool=solo", "--concurrency=1",
         f"--hostname=aggtest{n}@%h", "--loglevel=WARNING", "--without-gossip",
         "--without-mingle", "--without-heartbeat"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for n in (1, 2)]
    try:
        task = celery.send_task(
            "invenio_stats_dashboard.tasks.aggregation_tasks.aggregate_community_record_stats",
            kwargs={"aggregations": [DELTA, SNAPSHOT],
                    "community_ids": history["communities"], "workers": 2,
                    "until_caught_up": True})
        report = task.get(timeout=600)
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            try:
                w.wait(timeout=30)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait()
    assert all(r["status"] == "success" for r in report["results"]), report
    assert report["caught_up"]
    by_worker = {info["worker"] for r in report["results"]
                 for info in r["communities"].values()}
    assert len(by_worker) == 2, by_worker  # both processes took communities
    assert len({s["pid"] for s in spans()}) == 2
    assert overlapping(spans()) == []
    assert read_all() == history["expected"]


def test_sigterm_stops_cleanly_with_one_error_line(history, env):
    """A stopping worker or ``processes cancel`` (SIGTERM): the run stops between days."""
    reset()
    proc = start_until(history, lambda: written() >= 200,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.terminate()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, out + err
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert errors == ["Error: aggregation stopped: cancelled; bookmarks are at the last "
                      "complete day: run again to continue"], err
    assert 0 < written() < len(history["expected"])
    assert valid_through_bookmarks(history["expected"])
    assert not any(n.startswith("agg:") for n in list_locks())  # released, not expired


def test_refused_bulks_are_retried_with_their_documents(history, services, create_app,
                                                        app_config):
    """G20: bulk requests refused now and then — busy (429) or too large (413) — are
    sent again with the same documents (a 413 split in halves): the run succeeds and
    writes exactly the documents of an undisturbed run."""
    reset()
    bulks = []

    def refuse_some(method, path):
        if "_bulk" not in path:
            return None
        bulks.append(path)
        if len(bulks) in (2, 5):
            return 429, {"error": {"type": "rejected_execution_exception",
                                   "reason": "queue full"}, "status": 429}
        if len(bulks) == 3:
            return 413, {"error": {"type": "content_too_long_exception",
                                   "reason": "request too large"}, "status": 413}
        return None

    with FaultProxy(refuse_some) as proxy:
        app = create_app(**{**app_config,
                            "SEARCH_HOSTS": [{"host": "127.0.0.1", "port": proxy.port}],
                            "SEARCH_CLIENT_CONFIG": {"timeout": 60, "max_retries": 0}})
        with app.app_context():
            result = app.test_cli_runner().invoke(
                cli, ["aggregate", "--force", "--until-caught-up", "--no-show-progress", *TYPES,
                      *[a for c in history["communities"] for a in ("--community-id", c)]])
    assert result.exit_code == 0, (result.output, result.stderr)
    refused = [r for r in proxy.requests if r[2]]
    assert len(refused) == 3 and len(bulks) > 5
    assert read_all() == history["expected"]
