# Part of invenio-stats-dashboard (MIT License).
"""The aggregation engine in one process: catch-up, re-runs, recompute, stops, flags.

The engine is family-independent; these tests run it with the test family
of ``agg_family`` (records series of the added basis) on a membership
history made through the RDM services (``agg_helpers``). Expected documents
come from the planned history (``agg_helpers.oracle``).
"""

import time
from datetime import datetime, timezone

import pytest
from invenio_search.engine import search

from invenio_stats_dashboard.aggregations import engine
from invenio_stats_dashboard.aggregations.runner import aggregate, registry_client
from invenio_stats_dashboard.demo import rdm
from invenio_stats_dashboard.services import events_log as log

import agg_family
from agg_common import travel
from agg_helpers import (
    D0,
    DAY,
    DELTA,
    SNAPSHOT,
    TODAY,
    at,
    bookmarks,
    history_fixture,
    oracle,
    read_all,
    reset,
    stepped_config,
    valid_through_bookmarks,
)
from fault_proxy import FaultProxy, is_node_stats

INTERVAL = 100
SERIES = [DELTA, SNAPSHOT]
pytestmark = pytest.mark.usefixtures("agg_test_family")
app_config = stepped_config(INTERVAL)
history = history_fixture(["alpha", "beta", "global"])


def run(history, **kwargs):
    kwargs.setdefault("community_ids", history["communities"])
    return aggregate(SERIES, **kwargs)


def test_catch_up_gives_the_oracle_and_reruns_change_nothing(history):
    reset()
    expected = oracle(history["changes"])
    steps = 0
    while True:  # one catch-up step (INTERVAL days per series and community) per run
        report = run(history)
        steps += 1
        assert all(r["status"] == "success" for r in report["results"]), report
        for r in report["results"]:
            assert all(i["days"] <= INTERVAL for i in r["communities"].values())
        if report["caught_up"]:
            break
        assert steps < 20
    assert steps == -(-((TODAY - D0).days + 1) // INTERVAL)  # ceil(days / interval)
    first = read_all(stamps=True)
    assert {k: v for k, v in read_all().items()} == expected
    assert bookmarks() == {(s, c): TODAY for s in SERIES for c in history["communities"]}
    # X1: the same run again, and a whole recompute, give the same documents
    report = run(history, until_caught_up=True)
    assert report["caught_up"] and read_all() == expected
    run(history, ignore_bookmark=True)
    assert read_all() == expected
    again = read_all(stamps=True)
    assert {k: {f: v for f, v in d.items() if f != "timestamp" and f != "updated_timestamp"}
            for k, d in again.items()} == {
        k: {f: v for f, v in d.items() if f != "timestamp" and f != "updated_timestamp"}
        for k, d in first.items()}
    doc = first[(DELTA, "global", D0)]
    assert (doc["period_start"], doc["period_end"]) == (f"{D0}T00:00:00", f"{D0}T23:59:59")
    assert first[(SNAPSHOT, "global", D0)]["snapshot_date"] == f"{D0}T00:00:00"


def test_late_data_recompute_rewrites_those_days_and_rederives_snapshots(
        history, identities, communities, make_record):
    """``--ignore-bookmark --start-date D --end-date D``: the delta of D only; snapshots from D on."""
    reset()
    run(history, until_caught_up=True)
    before = read_all(stamps=True)
    late = D0 + 100 * DAY  # a record joins beta on that day, after the aggregation ran
    with travel(at(100, hour=23)):
        record = make_record()
        agg_family.count_only([record.id], replace=False)
        history["changes"] += [("global", late, "added")]  # other tests see it too
        rdm.add_to_community(identities["owner"], record.id, history["beta"])
        history["changes"] += [(history["beta"], late, "added")]
    log.refresh()
    expected = oracle(history["changes"])
    time.sleep(1.1)  # a new second: rewritten documents get a new timestamp
    report = aggregate(SERIES, [history["beta"], "global"], late.isoformat(),
                       late.isoformat(), ignore_bookmark=True)
    assert all(r["status"] == "success" for r in report["results"]), report
    after = read_all(stamps=True)
    for key, doc in after.items():
        name, community, day = key
        rewritten = community in (history["beta"], "global") and (
            day == late if name == DELTA else day >= late)
        assert (doc["timestamp"] != before[key]["timestamp"]) == rewritten, key
    assert read_all() == expected
    assert bookmarks() == {(s, c): TODAY for s in SERIES for c in history["communities"]}


def test_an_interrupted_recompute_is_finished_by_the_next_plain_run(history):
    """The bookmarks go back to the first rewritten day before anything is written."""
    reset()
    run(history, until_caught_up=True)
    expected = oracle(history["changes"])
    calls = []

    def stop_later():  # the run is cancelled during the second unit of global's delta
        calls.append(1)
        return "cancelled" if len(calls) > 40 else None

    start = D0 + 10 * DAY
    engine_guard = engine.GUARD_SECONDS
    engine.GUARD_SECONDS = 0  # ask at every day (the default asks once a second)
    try:
        report = aggregate(SERIES, ["global"], start.isoformat(), None, ignore_bookmark=True,
                           stop=stop_later)
    finally:
        engine.GUARD_SECONDS = engine_guard
    assert report["stopped"] == "cancelled"
    marks = bookmarks()
    assert start < marks[(DELTA, "global")] < TODAY
    assert marks[(SNAPSHOT, "global")] == start  # lowered before the delta rewrote a day
    assert valid_through_bookmarks(expected)
    report = run(history, until_caught_up=True)  # plain: no dates, no --ignore-bookmark
    assert report["caught_up"] and read_all() == expected


def test_past_years_rewritten_are_flagged_for_the_cache(history):
    """G23: every run that rewrote a past year flags it, scheduled catch-up included."""
    reset()
    registry = registry_client()
    run(history, until_caught_up=True)
    past = {y for y in range(D0.year, TODAY.year)}
    assert past  # the history spans two calendar years
    flags = {k.decode() for k in registry.scan_iter(match="*_agg_updated_*")}
    assert flags == {f"{c}_agg_updated_{y}" for c in history["communities"] for y in past}
    for key in flags:
        registry.delete(key)
    run(history)  # an hourly run: today only
    assert not list(registry.scan_iter(match="*_agg_updated_*"))
    assert registry.get("global_first_run") == b"in_progress"
    assert not list(registry.scan_iter(match="*_agg_running"))  # in-progress flags are gone


def test_a_health_threshold_crossed_mid_run_stops_at_the_last_complete_day(
        history, create_app, app_config, monkeypatch):
    """The heap reading goes over the threshold after a while: clean stop, then resume."""
    monkeypatch.setattr(engine, "HEALTH_SECONDS", 0.0)  # checked at every unit (a short run)
    reset()
    expected = oracle(history["changes"])
    readings = []

    def heap_rises(method, path):
        if not is_node_stats(path):
            return None
        readings.append(path)
        if len(readings) <= 3:
            return None  # the real cluster answers the first checks
        return 200, {"nodes": {"n1": {"jvm": {"mem": {"heap_used_percent": 97}}}}}

    with FaultProxy(heap_rises) as proxy:
        app = create_app(**{**app_config,
                            "SEARCH_HOSTS": [{"host": "127.0.0.1", "port": proxy.port}],
                            "SEARCH_CLIENT_CONFIG": {"timeout": 60},
                            "STATS_DASHBOARD_REINDEXING_MAX_MEMORY_PERCENT": 100,
                            "STATS_DASHBOARD_REINDEXING_MAX_HEAP_PERCENT": 90})
        with app.app_context():
            report = run(history, until_caught_up=True)
    assert report["stopped"].startswith("health check: OpenSearch heap 97% above 90%")
    assert {r["status"] for r in report["results"]} == {"stopped"}
    written = read_all()
    assert written and len(written) < len(expected)
    assert valid_through_bookmarks(expected)
    report = run(history, until_caught_up=True)
    assert report["caught_up"] and read_all() == expected


def test_opt_in_disabled_communities_get_nothing_until_enabled(history, services):
    """§8.4: without explicit ids only enabled communities (and global) are aggregated."""
    from invenio_stats_dashboard.services.community_dashboards import set_dashboard_enabled

    reset()
    expected = oracle(history["changes"])
    set_dashboard_enabled(history["alpha"], True)
    set_dashboard_enabled(history["beta"], False)
    try:
        report = aggregate(SERIES, until_caught_up=True)
        assert set(report["results"][0]["communities"]) >= {history["alpha"], "global"}
        assert history["beta"] not in report["results"][0]["communities"]
        found = read_all()
        assert {c for _, c, _ in found} == {history["alpha"], "global"}
        assert not any(c == history["beta"] for _, c in bookmarks())
        set_dashboard_enabled(history["beta"], True)
        aggregate(SERIES, until_caught_up=True)
        found = read_all()
        beta = {k: v for k, v in found.items() if k[1] == history["beta"]}
        assert beta == {k: v for k, v in expected.items() if k[1] == history["beta"]}
        assert min(d for _, _, d in beta) == D0 + 80 * DAY  # its first event
    finally:
        set_dashboard_enabled(history["alpha"], False)
        set_dashboard_enabled(history["beta"], False)


def test_an_unhealthy_start_writes_nothing(history, create_app, app_config):
    reset()
    with FaultProxy(lambda m, p: (200, {"nodes": {"n1": {"jvm": {"mem": {
            "heap_used_percent": 99}}}}}) if is_node_stats(p) else None) as proxy:
        app = create_app(**{**app_config,
                            "SEARCH_HOSTS": [{"host": "127.0.0.1", "port": proxy.port}],
                            "SEARCH_CLIENT_CONFIG": {"timeout": 60},
                            "STATS_DASHBOARD_REINDEXING_MAX_MEMORY_PERCENT": 100})
        with app.app_context():
            report = run(history, until_caught_up=True)
    assert report["stopped"].startswith("health check")
    assert read_all() == {} and bookmarks() == {}


def test_when_now_is_given_every_document_gets_that_instant(history):
    reset()
    ctx = engine.Context(now=datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc))
    assert (ctx.now, ctx.today.isoformat()) == ("2030-01-02T03:04:05", "2030-01-02")
    assert engine.unavailable(search.exceptions.ConnectionError("N/A", "refused", None))


def test_usage_deltas_wait_for_the_migration_not_for_legacy_indices_to_go(history, records):
    """G19: an unmigrated month fails the usage delta with the command to run; once
    migrated, the legacy index left in place (until clean-up) does not block it."""
    from invenio_rdm_records.proxies import current_rdm_records_service

    from invenio_stats_dashboard.aggregations.runner import check_preconditions
    from invenio_stats_dashboard.aggregations.series import get
    from invenio_stats_dashboard.utils.usage_events import RecordTarget, plan_events
    from invenio_stats_dashboard.exceptions import UsageEventsNotMigratedError
    from invenio_stats_dashboard.proxies import current_event_reindexing_service
    from legacy_indices import index_legacy

    month = datetime(2023, 3, 1, tzinfo=timezone.utc)
    record = current_rdm_records_service.record_cls.pid.resolve(records["one_file"].id)
    planned = plan_events([RecordTarget.from_record(record, created=month)], per_record=5,
                          start=month, end=month.replace(day=28), seed=3)
    index_legacy(planned)
    ctx, usage = engine.Context(), get("community-usage-delta-agg")
    with pytest.raises(UsageEventsNotMigratedError, match="view 2023-03.*usage-events migrate"):
        check_preconditions(ctx, usage)
    check_preconditions(ctx, get(SNAPSHOT))  # the records series do not wait
    report = current_event_reindexing_service.reindex_events(month_filter="2023-03")
    assert report["completed"], report
    check_preconditions(ctx, usage)  # the stock month is still there, and migrated
