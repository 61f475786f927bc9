# Part of invenio-stats-dashboard (MIT License).
"""The aggregation commands (cli.md §2): output, and refusal of bad input without writes.

With the test family (``agg_family``) on the history of ``agg_helpers``;
expected values come from the planned history.
"""

import json
import sys
import time
from pathlib import Path

import pytest
from invenio_communities.proxies import current_communities
from invenio_search.proxies import current_search_client
from invenio_search.utils import prefix_index

from invenio_stats_dashboard.cli import cli
from invenio_stats_dashboard.utils.jobs import JobLock, holder
from invenio_stats_dashboard.utils.process_manager import ProcessManager

from agg_helpers import (
    D0,
    DAY,
    DELTA,
    SNAPSHOT,
    TODAY,
    TYPES,
    bookmarks,
    history_fixture,
    read_all,
    reset,
)

CHILD = str(Path(__file__).with_name("agg_child.py"))
pytestmark = pytest.mark.usefixtures("agg_test_family")
history = history_fixture()


def run(app, *args, **kwargs):
    return app.test_cli_runner().invoke(cli, list(args), **kwargs)


def one_error(result):
    """Exit 1 and exactly one line of error output, starting with ``Error:``."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 1, result.output
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def nothing_written():
    client = current_search_client
    assert not client.indices.get(index=prefix_index("stats-community-records-*"),
                                  ignore_unavailable=True, allow_no_indices=True)
    assert bookmarks() == {}
    return True


def dashboard_enabled(community_id):
    record = current_communities.service.record_cls.pid.resolve(community_id)
    return (record.get("custom_fields") or {}).get("stats:dashboard_enabled")


@pytest.mark.parametrize("args, message", [
    ([], "pass --force"),
    (["--force", "--start-date", "2024-13-01"], "Malformed start date '2024-13-01'"),
    (["--force", "--start-date", "2024-02-01", "--end-date", "2024-01-01"],
     "The start date is after the end date."),
    (["--force", "--community-id", "no-such-community"],
     "Unknown community id or slug: no-such-community."),
    (["--force", "--aggregation-type", "community-records-delta-nope-agg"],
     "Unknown aggregator(s): community-records-delta-nope-agg"),
])
def test_aggregate_refuses_bad_input_and_writes_nothing(history, services, args, message):
    reset()
    for command in ("aggregate", "aggregate-background"):
        result = run(services, command, *args)
        assert message in one_error(result)
    assert nothing_written()


def test_aggregate_prints_the_report_and_a_bar_per_series_and_community(history, services):
    reset()
    result = run(services, "aggregate", "--force", "--until-caught-up", *TYPES,
                 "--community-id", history["alpha_slug"], "--community-id", "global")
    assert result.exit_code == 0, result.output
    assert "COMMUNITY STATS AGGREGATION" in result.stdout
    assert "AGGREGATION RESULTS" in result.stdout and "AGGREGATION SUMMARY" in result.stdout
    assert f"{DELTA}: success" in result.stdout and f"{SNAPSHOT}: success" in result.stdout
    for label in (f"delta-added {history['alpha_slug']}", "snapshot-added global"):
        assert label[:40] in result.stderr  # the progress bars
    found = read_all()
    assert found == {k: v for k, v in history["expected"].items()
                     if k[1] in (history["alpha"], "global")}
    queued = run(services, "aggregate", "--force", "--no-eager", *TYPES,
                 "--community-id", "global")  # Celery is eager in the test bed
    assert queued.exit_code == 0 and "Celery task: " in queued.stdout, queued.output


def test_status_shows_first_day_bookmark_days_behind_and_completeness(history, services):
    reset()
    end = TODAY - 10 * DAY
    result = run(services, "aggregate", "--force", "--until-caught-up", *TYPES,
                 "--end-date", end.isoformat(), "--community-id", history["alpha"])
    assert result.exit_code == 0, result.output
    status = run(services, "status", "-c", history["alpha_slug"], "-c", "global")
    assert status.exit_code == 0, status.output
    out = status.stdout
    assert "COMMUNITY AGGREGATION STATUS" in out
    assert f"Community: {history['alpha_slug']} ({history['alpha']})" in out
    assert "Community: global (global)" in out
    percent = round(100 * ((end - D0).days + 1) / ((TODAY - D0).days + 1))
    line = next(line for line in out.splitlines() if line.startswith("delta-added"))
    assert f"{percent:3d}%" in line and f"first {D0}" in line
    assert f"bookmark {end} (10d behind)" in line
    global_part = out.split("Community: global")[1]
    assert "[No data available] 0%" in global_part
    verbose = run(services, "status", "-v", "-c", history["alpha"])
    exact = 100 * ((end - D0).days + 1) / ((TODAY - D0).days + 1)
    assert f"{exact:.1f}%" in verbose.stdout and f"bookmark: {end} (10d behind)" in verbose.stdout
    assert "Unknown community id or slug: nope." in one_error(run(services, "status", "-c",
                                                                  "nope"))


def test_read_prints_the_documents_of_a_range(history, services):
    reset()
    run(services, "aggregate", "--force", "--until-caught-up", *TYPES,
        "--community-id", history["alpha"])
    first, last = D0 + 34 * DAY, D0 + 36 * DAY  # r2 joined alpha on D0 + 35
    result = run(services, "read", "--community-id", history["alpha_slug"], "--start-date",
                 first.isoformat(), "--end-date", last.isoformat(), "--query-type",
                 "community-record-delta-added")
    assert result.exit_code == 0, result.output
    header, body = result.stdout.split("\n", 1)
    assert header == (f"Reading [community-record-delta-added] stats for community "
                      f"{history['alpha_slug']} from {first} to {last}")
    documents = json.loads(body)
    assert [d["period_start"][:10] for d in documents] == [
        str(first), str(first + DAY), str(last)]
    assert [d["records"]["added"]["metadata_only"] for d in documents] == [0, 1, 0]
    both = run(services, "read", "--community-id", history["alpha"], "--start-date",
               str(first), "--end-date", str(first))
    data = json.loads(both.stdout.split("\n", 1)[1])
    assert data["community-record-snapshot-added"][0]["total_records"]["metadata_only"] == 1
    assert data["community-usage-delta"] == []
    empty = run(services, "read", "--community-id", history["alpha"], "--start-date",
                "2001-01-01", "--end-date", "2001-01-31")
    assert empty.exit_code == 0 and "No data found for the specified date range." in empty.stdout
    assert "Malformed end date" in one_error(run(services, "read", "--end-date", "soon"))


def test_clear_bookmarks_of_one_community_and_series(history, services):
    reset()
    run(services, "aggregate", "--force", "--until-caught-up", *TYPES, "--community-id",
        history["alpha"], "--community-id", "global")
    assert len(bookmarks()) == 4
    assert "Say what to clear" in one_error(run(services, "clear-bookmarks"))
    assert "Unknown aggregator" in one_error(run(services, "clear-bookmarks",
                                                 "--aggregation-type", "x-agg", "--confirm"))
    declined = run(services, "clear-bookmarks", "--all-communities", "--all-aggregation-types",
                   input="n\n")
    assert declined.exit_code == 0 and "Operation cancelled." in declined.stdout
    assert len(bookmarks()) == 4
    result = run(services, "clear-bookmarks", "--community-id", history["alpha_slug"],
                 "--aggregation-type", DELTA, "--confirm")
    assert result.exit_code == 0, result.output
    assert "Successfully cleared 1 bookmark(s)" in result.stdout
    assert set(bookmarks()) == {(SNAPSHOT, history["alpha"]), (DELTA, "global"),
                                (SNAPSHOT, "global")}
    result = run(services, "clear-bookmarks", "--all-communities", "--all-aggregation-types",
                 "--confirm")
    assert "Successfully cleared 3 bookmark(s)" in result.stdout and bookmarks() == {}
    # a fresh start: the next run rebuilds alpha's series from its first day
    run(services, "aggregate", "--force", *TYPES, "--community-id", history["alpha"])
    assert bookmarks()[(DELTA, history["alpha"])] == D0 + 364 * DAY  # one 365-day step


def test_clear_lock_lists_and_removes_locks(services):
    lock = JobLock("agg:test-series:test-community", lease=60)
    assert lock.acquire()
    try:
        listed = run(services, "clear-lock", "--list-locks")
        assert listed.exit_code == 0
        assert "lock:agg:test-series:test-community: " in listed.stdout
        dry = run(services, "clear-lock", "--lock-name", "agg:test-series:test-community",
                  "--dry-run")
        assert "Would clear lock" in dry.stdout and holder(lock.name) is not None
        done = run(services, "clear-lock", "--lock-name", "agg:test-series:test-community")
        assert done.exit_code == 0 and "Cleared lock" in done.stdout
        assert holder(lock.name) is None
        deadline = time.monotonic() + 30
        while not lock.lost.is_set():  # the holder notices at its next renewal
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        lock.release()
    missing = run(services, "clear-lock")
    assert missing.exit_code == 0 and "is not held" in missing.stdout


def test_enable_dashboards_by_slug_and_refusal_of_unknown_ids(history, services):
    assert not dashboard_enabled(history["alpha"]) and not dashboard_enabled(history["beta"])
    result = run(services, "enable-dashboards", history["alpha_slug"], "no-such-one")
    assert "Unknown community id or slug: no-such-one." in one_error(result)
    assert not dashboard_enabled(history["alpha"])  # nothing written
    try:
        result = run(services, "enable-dashboards", history["alpha_slug"], "-v")
        assert result.exit_code == 0, result.output
        assert "Enabled dashboards for 1" in result.stdout and dashboard_enabled(
            history["alpha"]) is True
        result = run(services, "enable-dashboards", "--record-threshold", "4")
        assert "Enabled dashboards for 1" in result.stdout  # alpha: r1, r2, r4, r7
        assert not dashboard_enabled(history["beta"])  # beta: r3, r6, r8 (3 < 4)
    finally:
        run(services, "enable-dashboards", "--disable", history["alpha"])
    assert dashboard_enabled(history["alpha"]) is False


def test_aggregate_background_runs_the_command_with_its_options(history, services, child_env,
                                                               monkeypatch, tmp_path):
    """The job is ``aggregate --eager`` plus the options (upstream dropped two of them).

    The child runs under the test-family launcher (``agg_child``), the same
    command line otherwise.
    """
    from invenio_stats_dashboard.cli import aggregation_cli

    reset()
    monkeypatch.setattr(aggregation_cli, "invenio_argv", lambda *a: [
        sys.executable, CHILD, "invenio", "community-stats", *a])
    result = run(services, "aggregate-background", "--force", "--until-caught-up", *TYPES,
                 "--community-id", history["beta"], "--pid-dir", str(tmp_path))
    assert result.exit_code == 0 and "Started aggregation in background" in result.stdout
    job = ProcessManager("aggregation", tmp_path)
    deadline = time.monotonic() + 300
    while (status := job.status() or {}).get("running", True):
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
    log_text = "".join(job.read_log(200))
    assert status["status"] == "finished", log_text
    assert "--aggregation-type" in status["command"] and "--until-caught-up" in status["command"]
    assert read_all() == {k: v for k, v in history["expected"].items()
                          if k[1] == history["beta"]}
    result = run(services, "aggregate-background", "--force", "--no-update-bookmark",
                 *TYPES, "--community-id", history["beta"], "--ignore-bookmark",
                 "--start-date", str(TODAY), "--pid-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    while (status := job.status() or {}).get("running", True):
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
    assert "--no-update-bookmark" in status["command"], status
