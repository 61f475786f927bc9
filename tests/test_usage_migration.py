# Part of invenio-stats-dashboard (MIT License).
"""Migration of legacy usage events into enriched -v2.0.0 indices (past months).

The membership log is written by hand with chosen dates, so the expected
``community_ids`` of every event is computed independently here (a linear
scan of those changes), not by the code under test.
"""

import random
import subprocess
from collections import Counter
import time
from datetime import timedelta

import arrow
import pytest
from invenio_search.proxies import current_search_client
from invenio_search.utils import prefix_index
from opensearchpy import helpers

from invenio_stats_dashboard.cli import cli
from invenio_stats_dashboard.utils.usage_events import (
    RecordTarget,
    expected_counts,
    plan_events,
)
from invenio_stats_dashboard.proxies import current_event_reindexing_service
from invenio_stats_dashboard.services import events_log as log

from legacy_indices import assert_stock, index_legacy
from oracles import wipe_log

ROBOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
FILE_TYPES = {"a.csv": "csv", "b.TXT": "txt", "c.tar.gz": "gz"}
MONTHS = [arrow.utcnow().shift(months=-k).floor("month") for k in (4, 3, 2)]
RANGE = f"{MONTHS[0].format('YYYY-MM')}:{MONTHS[-1].format('YYYY-MM')}"


@pytest.fixture(scope="module")
def data(services, make_record, communities):
    from invenio_rdm_records.proxies import current_rdm_records_service

    alpha, beta = communities["alpha"].id, communities["beta"].id
    rich = dict(resource_type="publication-article", languages=["eng", "fra"],
                rights=["cc-by-4.0"], funders=["00k4n6c32"], creators_affiliations=["01ggx4157"])
    made = {"r1": make_record(**rich), "r2": make_record(files={"a.csv": b"1,2"}),
            "r3": make_record(files={"b.TXT": b"x"}), "r4": make_record(files={"c.tar.gz": b"z"})}
    ids = {k: v.id for k, v in made.items()}
    m0, m1, m2 = MONTHS
    changes = {  # chosen membership history: (record, community) -> [(instant, type)]
        (ids["r1"], alpha): [(m0.shift(days=-30), "added"), (m1.shift(days=14), "removed"),
                             (m2, "added")],
        (ids["r2"], beta): [(m0.shift(days=9), "added")],
    }
    wipe_log()
    actions = [log.make_event(r, c, t, when.isoformat())
               for (r, c), items in changes.items() for when, t in items]
    actions += [log.make_event(r, "global", "added", m0.shift(days=-60).isoformat())
                for r in ids.values()]
    log.write(actions)
    resolve = current_rdm_records_service.record_cls.pid.resolve
    targets = [RecordTarget.from_record(resolve(rid), created=m0.datetime) for rid in ids.values()]
    planned = plan_events(targets, per_record=60, start=m0.datetime,
                          end=(m2.shift(months=1).datetime - timedelta(seconds=1)), seed=11,
                          download_ratio=1.0)
    robots = set()  # every 7th event comes from a crawler: flagged, kept, migrated as such
    for event_type, events in planned.items():
        for event in events[::7]:
            event["user_agent"] = ROBOT_UA
            robots.add((event_type, event["recid"], event["timestamp"][:19]))
    index_legacy(planned)  # stock-mapped months, as before installation
    per_record = Counter((t, e["timestamp"][:7], e["recid"]) for t, events in planned.items()
                         for e in events)
    assert min(per_record.values()) > 5
    return {"ids": ids, "changes": changes, "expected": expected_counts(planned),
            "per_record": per_record, "robots": robots,
            "alpha": alpha, "beta": beta}


def expected_communities(changes, recid, timestamp):
    """Independent oracle: communities whose latest change at or before t is 'added'."""
    t = arrow.get(timestamp)
    members = []
    for (r, c), items in changes.items():
        state = None
        for when, event_type in sorted(items):
            if when <= t:
                state = event_type
        if r == recid and state == "added":
            members.append(c)
    return sorted(members)


def all_docs(index):
    return {h["_id"]: h["_source"] for h in helpers.scan(
        current_search_client, index=index, query={"query": {"match_all": {}}})}


#: Groups of one record (every record has more than 5 events a month), two in flight.
SMALL = {"batch_size": 5, "parallel_groups": 2}


@pytest.fixture()
def service(services):
    return current_event_reindexing_service._get_current_object()


def test_migration_copies_and_enriches_every_event(data, service):
    months = {m.format("YYYY-MM") for m in MONTHS}
    assert sum(n for (t, m), n in data["expected"].items() if m in months) > 3 * 2 * 30
    report = service.reindex_events(month_filter=RANGE, fresh_start=True, **SMALL)
    assert report["completed"] and report["total_errors"] == 0, report
    robots_seen = 0
    for (event_type, month), count in data["expected"].items():
        stem = "record-view" if event_type == "record-view" else "file-download"
        source = prefix_index(f"events-stats-{stem}-{month}")
        target = f"{source}-v2.0.0"
        assert current_search_client.count(index=target)["count"] == count  # nothing lost
        assert_stock(source)  # migrated from InvenioRDM's stock mapping, left untouched
        result = report["event_types"]["view" if stem == "record-view" else "download"]["months"][month]
        assert result["batches"] >= 3 and result["completed"]
        src, dst = all_docs(source), all_docs(target)
        assert set(src) == set(dst)  # same ids: nothing duplicated or invented
        for _id, doc in dst.items():
            assert doc["timestamp"] == src[_id]["timestamp"]
            robot = (event_type, doc["recid"], doc["timestamp"][:19]) in data["robots"]
            assert doc["is_robot"] is robot, doc
            robots_seen += robot
            assert doc["community_ids"] == expected_communities(
                data["changes"], doc["recid"], doc["timestamp"]), (doc["recid"], doc["timestamp"])
            if doc["recid"] == data["ids"]["r1"]:
                assert doc["resource_type"]["id"] == "publication-article"
                assert sorted(lang["id"] for lang in doc["languages"]) == ["eng", "fra"]
                assert doc["funders"][0]["id"] == "00k4n6c32"
                assert doc["affiliations"][0]["id"] == "01ggx4157"
                assert doc["access_status"] == "metadata-only"  # no files
            if stem == "file-download":
                assert doc["file_types"] == [FILE_TYPES[doc["file_key"]]]
        # The read alias moved atomically to the enriched index.
        alias = prefix_index(f"events-stats-{stem}")
        assert current_search_client.indices.exists_alias(name=alias, index=target)
        assert not current_search_client.indices.exists_alias(name=alias, index=source)
    assert any(expected_communities(data["changes"], data["ids"]["r1"], m.shift(days=20)) == []
               for m in MONTHS)  # the removal interval is really exercised
    assert robots_seen == len(data["robots"]) > 10


def test_interrupted_run_resumes_from_its_bookmark(data, services, service):
    first = service.reindex_events(event_types=["view"], month_filter=RANGE, fresh_start=True,
                                   max_batches=2, **SMALL)
    assert not first["completed"]
    months = first["event_types"]["view"]["months"]
    # Batches are record groups in recid order; batch size 5 < any record's
    # events in a month, so each group is one record.
    per_record = data["per_record"]
    first_two = {m: sum(per_record[("record-view", m, r)] for r in sorted(data["ids"].values())[:2])
                 for m in months}
    assert all(r["interrupted"] and r["processed"] == first_two[m] for m, r in months.items())
    status = services.test_cli_runner().invoke(cli, ["usage-events", "status"])
    second_recid = sorted(data["ids"].values())[1]
    assert status.exit_code == 0 and f"in progress  after record {second_recid}" in status.output
    second = service.reindex_events(event_types=["view"], month_filter=RANGE, max_batches=1000,
                                    **SMALL)
    assert second["completed"]
    for month, r in second["event_types"]["view"]["months"].items():
        assert r["processed"] == data["expected"][("record-view", month)] - first_two[month]


def test_cancel_mid_month_stops_cleanly_and_resumes(data, service):
    """A cancel request mid-month: the run stops with a bookmark and resumes from it."""
    from invenio_stats_dashboard.utils.jobs import request_cancel

    first = MONTHS[0].format("YYYY-MM")

    def cancel(event_type, month, processed):  # after the first finished group
        request_cancel("community_stats_usage_events")

    report = service.reindex_events(event_types=["view"], month_filter=first,
                                    fresh_start=True, progress=cancel, **SMALL)
    result = report["event_types"]["view"]["months"][first]
    assert not report["completed"] and report["health_issues"] == ["cancelled"]
    assert result["interrupted"] and not result["completed"]
    # Two groups were in flight when the check failed: both finished, both bookmarked.
    recids = sorted(data["ids"].values())
    per_record = data["per_record"]
    done = sum(per_record[("record-view", first, r)] for r in recids[:2])
    assert result["processed"] == done
    mark = service.reindexing_bookmark_api.get_bookmark(f"view-{first}-reindexing")
    assert mark["last_record_id"] == recids[1] and not mark["completed"]
    report = service.reindex_events(event_types=["view"], month_filter=first, **SMALL)
    assert report["completed"]
    rest = report["event_types"]["view"]["months"][first]["processed"]
    assert rest == data["expected"][("record-view", first)] - done  # only the remainder


def test_low_memory_threshold_stops_before_copying(data, service):
    first = MONTHS[1].format("YYYY-MM")
    report = service.reindex_events(event_types=["view"], month_filter=first,
                                    fresh_start=True, max_memory_percent=0.001, **SMALL)
    result = report["event_types"]["view"]["months"][first]
    assert not report["completed"] and "memory" in report["health_issues"][0], report
    assert result["interrupted"] and result["processed"] == 0
    assert service.reindex_events(event_types=["view"], month_filter=first, **SMALL)["completed"]


def test_bad_months_are_rejected(services):
    result = services.test_cli_runner().invoke(cli, ["usage-events", "migrate", "-m", "2024-13"])
    assert result.exit_code == 1 and "Malformed month '2024-13'" in result.output


def month_counts(months):
    """Events each month shows through the read aliases (what every reader sees)."""
    counts = {}
    for event_type, stem in (("record-view", "record-view"), ("file-download", "file-download")):
        alias = prefix_index(f"events-stats-{stem}")
        current_search_client.indices.refresh(index=f"{alias}*")
        for month in months:
            start = arrow.get(month).floor("month")
            counts[(event_type, month)] = current_search_client.count(index=alias, body={
                "query": {"range": {"timestamp": {
                    "gte": start.format("YYYY-MM-DDTHH:mm:ss"),
                    "lt": start.shift(months=1).format("YYYY-MM-DDTHH:mm:ss")}}}})["count"]
    return counts


def reset_to_legacy(service, months):
    """Back to before the migration: no enriched index, no bookmark, stock indices read."""
    for month in months:
        for event_type, stem in (("view", "record-view"), ("download", "file-download")):
            source = prefix_index(f"events-stats-{stem}-{month}")
            current_search_client.indices.delete(index=f"{source}-v2.0.0", ignore=[404])
            current_search_client.indices.put_alias(index=source,
                                                    name=prefix_index(f"events-stats-{stem}"))
            current_search_client.indices.put_settings(
                index=source, body={"index.blocks.write": None})
            service.reindexing_bookmark_api.delete_bookmark(f"{event_type}-{month}-reindexing")


def wait_for_lock_release(name="community_stats_usage_events", timeout=30):
    """A killed holder's lock expires by itself within its lease."""
    from invenio_stats_dashboard.utils.jobs import holder

    deadline = time.monotonic() + timeout
    while holder(name) is not None:
        assert time.monotonic() < deadline, "a killed run's lock did not expire"
        time.sleep(0.1)


def test_sigkill_at_random_points_loses_and_duplicates_nothing(data, services, child_env,
                                                             monkeypatch, service):
    """SIGKILL the migration 5 times at random points; every month stays readable."""
    from invenio_stats_dashboard.cli.common import invenio_argv

    monkeypatch.setenv("INVENIO_STATS_DASHBOARD_LOCK_LEASE", "1")
    argv = invenio_argv("usage-events", "migrate", "--batch-size", "2", "-m", RANGE)
    months = sorted(m.format("YYYY-MM") for m in MONTHS)
    expected = {k: v for k, v in data["expected"].items() if k[1] in months}

    targets = ",".join(prefix_index(f"events-stats-{stem}-{month}-v2.0.0")
                       for month in months for stem in ("record-view", "file-download"))
    total = sum(expected.values())

    def migrated():
        return current_search_client.count(index=targets, ignore_unavailable=True)["count"]

    def unfinished():  # month/type pairs whose bookmark is not marked completed
        return sum(not (service.reindexing_bookmark_api.get_bookmark(
            f"{t}-{month}-reindexing") or {}).get("completed")
            for month in months for t in ("view", "download"))

    reset_to_legacy(service, months)
    assert month_counts(months) == expected
    subprocess.run(argv + ["--fresh-start", "--max-batches", "1"], check=False,
                   capture_output=True, timeout=300)
    rng = random.Random(5)
    kills, views = [], []
    for left in range(5, 0, -1):
        done = migrated()
        goal = done + rng.uniform(0.2, 0.8) * (total - done) / (left + 1)  # a random point ahead
        wait_for_lock_release()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while migrated() < goal and proc.poll() is None and time.monotonic() < deadline:
            views.append(month_counts(months))  # readers, while it runs
        proc.kill()  # SIGKILL: no cleanup of any kind
        proc.wait()
        # A server-side copy in flight may still finish after the kill; the
        # run itself must not have: some month is not marked complete.
        kills.append((migrated(), unfinished()))
        views.append(month_counts(months))  # and right after the kill
    assert all(n > 0 and left > 0 for n, left in kills), kills  # every kill landed mid-run
    assert views and all(v == expected for v in views)  # every event, exactly once, always
    wait_for_lock_release()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    for (event_type, month), count in data["expected"].items():
        stem = "record-view" if event_type == "record-view" else "file-download"
        source = prefix_index(f"events-stats-{stem}-{month}")
        assert set(all_docs(f"{source}-v2.0.0")) == set(all_docs(source))
        assert current_search_client.count(index=f"{source}-v2.0.0")["count"] == count
    assert month_counts(months) == expected
    status = services.test_cli_runner().invoke(cli, ["usage-events", "status"])
    assert status.exit_code == 0 and "completed" in status.output


def test_async_task_clear_bookmarks_and_progress(data, services, service):
    from invenio_stats_dashboard.tasks.usage_reindexing_tasks import get_reindexing_progress

    runner = services.test_cli_runner()
    result = runner.invoke(cli, ["usage-events", "migrate", "--async", "-e", "view",
                                 "-m", RANGE, "--fresh-start", "--batch-size", "7"])
    assert result.exit_code == 0 and "Task started with ID:" in result.output
    progress = get_reindexing_progress.delay().get()
    views = [r for r in progress["counts"] if r["event_type"] == "view"
             and r["month"] in {m.format("YYYY-MM") for m in MONTHS}]
    assert views and all(r["state"] == "completed" and r["remaining_count"] == 0 for r in views)
    # The progress task reports the real health check: the same answer (and
    # reason) as asking the service directly on this healthy test cluster.
    assert set(progress["health"]) >= {"is_healthy", "reason"}
    assert progress["health"]["is_healthy"] is service.check_health_conditions()["is_healthy"]
    month = MONTHS[0].format("YYYY-MM")
    result = runner.invoke(cli, ["usage-events", "clear-bookmarks", "-e", "view", "-m", month,
                                 "--confirm"])
    assert result.exit_code == 0 and f"view-{month}-reindexing" in result.output
    assert service.reindexing_bookmark_api.get_bookmark(f"view-{month}-reindexing") is None
    # The form upstream's setup guide writes (options upstream itself rejects).
    assert service.reindexing_bookmark_api.get_bookmark(f"view-{MONTHS[1].format('YYYY-MM')}-reindexing")
    result = runner.invoke(cli, ["usage-events", "clear-bookmarks", "--months",
                                 MONTHS[1].format("YYYY-MM"), "--event-types", "view",
                                 "--fresh-start", "--confirm"])
    assert result.exit_code == 0 and "Cleared 1 bookmark(s)" in result.output, result.output
    result = runner.invoke(cli, ["usage-events", "clear-bookmarks", "-m", "2024-99", "--confirm"])
    assert result.exit_code == 1 and "Malformed month" in result.output


def test_current_month_switchover_keeps_events_written_meanwhile(data, services, service):
    """Events indexed while the current month is migrated all end up in the new index."""
    import threading
    from datetime import datetime

    from invenio_rdm_records.proxies import current_rdm_records_service
    from invenio_stats.proxies import current_stats

    from invenio_stats_dashboard.utils.usage_events import BROWSER_UA

    recid = data["ids"]["r3"]
    record = current_rdm_records_service.record_cls.pid.resolve(recid)
    month_start = arrow.utcnow().floor("month")
    planned = plan_events([RecordTarget.from_record(record, created=month_start.datetime)],
                          per_record=40, start=month_start.datetime,
                          end=arrow.utcnow().shift(minutes=-5).datetime, seed=3)
    planned["file-download"] = []
    month = month_start.format("YYYY-MM")
    stock_name = prefix_index(f"events-stats-record-view-{month}")
    # This test owns the current month of views: whatever another test of the
    # module left there (a live event, an earlier switch) goes first.
    for name in current_search_client.indices.get(index=f"{stock_name}*", ignore=[404]):
        if name != "error" and name != "status":
            current_search_client.indices.delete(index=name)
    service.reindexing_bookmark_api.delete_bookmark(f"view-{month}-reindexing")
    index_legacy(planned)  # the month began before installation
    target = f"{stock_name}-v2.0.0"
    stop, written = threading.Event(), []
    app = services._get_current_object() if hasattr(services, "_get_current_object") else services

    def writer():
        with app.app_context():
            n = 0
            while not stop.is_set():
                event = {"timestamp": datetime.utcnow().isoformat(), "recid": recid,
                         "parent_recid": record.parent["id"], "via_api": False,
                         "session_id": f"live-{n}", "user_agent": BROWSER_UA,
                         "ip_address": "8.8.8.8", "referrer": None}
                current_stats.publish("record-view", [event])
                entry = current_stats.events["record-view"]
                written.append(entry.cls(**entry.params).run()[0])
                n += 1
                time.sleep(0.05)

    thread = threading.Thread(target=writer)
    thread.start()
    def wait_for_more(count, timeout=60):
        """Until the writer has written ``count`` more events (a loaded machine is slow)."""
        target_len, deadline = len(written) + count, time.monotonic() + timeout
        while len(written) < target_len and time.monotonic() < deadline:
            time.sleep(0.05)

    try:
        wait_for_more(5)  # events before the migration starts
        report = service.reindex_events(event_types=["view"], month_filter=month)
        wait_for_more(5)  # and after the switch, through the alias
    finally:
        stop.set()
        thread.join()
    assert report["completed"], report
    assert sum(written) >= 10
    current_search_client.indices.refresh(index=target)
    legacy = len(planned["record-view"])
    assert current_search_client.count(index=target)["count"] == legacy + sum(written)
    # The stock name is now a write alias of the enriched index; reads see it too.
    alias = current_search_client.indices.get_alias(name=stock_name)
    assert list(alias) == [target] and alias[target]["aliases"][stock_name]["is_write_index"]
    assert current_search_client.indices.exists_alias(
        name=prefix_index("events-stats-record-view"), index=target)


def test_reenrichment_after_a_subcount_change_reaches_later_events(data, services, service):
    """G26: change COMMUNITY_STATS_SUBCOUNTS after migrating, re-enrich in place.

    Migrates the past months first (nothing to do when another test did). An
    event recorded after the migration goes through the live pipeline, and is
    re-enriched too.
    """
    from datetime import datetime

    from invenio_rdm_records.proxies import current_rdm_records_service
    from invenio_stats.proxies import current_stats

    from invenio_stats_dashboard.utils.usage_events import BROWSER_UA

    month = arrow.utcnow().format("YYYY-MM")
    months = [RANGE, month]
    assert service.reindex_events(month_filter=RANGE, **SMALL)["completed"]  # whatever ran before
    recid = data["ids"]["r1"]
    record = current_rdm_records_service.record_cls.pid.resolve(recid)
    current_stats.publish("record-view", [{  # recorded after the migration, via the write alias
        "timestamp": datetime.utcnow().isoformat(), "recid": recid,
        "parent_recid": record.parent["id"], "via_api": False, "session_id": "after-migration",
        "user_agent": BROWSER_UA, "ip_address": "8.8.8.8", "referrer": None}])
    entry = current_stats.events["record-view"]
    assert entry.cls(**entry.params).run()[0] == 1
    # 3 past months x 2 types, and the current month's views (migrated by the
    # switchover test, or enriched live when this test runs first).
    targets = [t for kind in ("view", "download") for t in service.get_enriched_indices(kind, months)]
    assert len(targets) >= 7, targets
    names = ",".join(targets)
    current_search_client.indices.refresh(index=names)
    before = current_search_client.count(index=names)["count"]

    def r1_events():
        current_search_client.indices.refresh(index=names)
        return [h["_source"] for h in helpers.scan(current_search_client, index=names, query={
            "query": {"term": {"recid": recid}}})]

    original = service.subcount_configs
    try:
        service.subcount_configs = {k: v for k, v in original.items() if k != "languages"}
        report = service.reenrich_events(month_filter=months, **SMALL)
        assert report["completed"] and report["total_errors"] == 0, report
        assert all(r["processed"] > 0 for t in report["event_types"].values()
                   for r in t["months"].values())  # every month was really rewritten
        docs = r1_events()
        assert docs and all("languages" not in d for d in docs)
        assert all(d["resource_type"]["id"] == "publication-article" for d in docs)
        again = service.reenrich_events(month_filter=months, **SMALL)  # same config: nothing to do
        assert again["total_processed"] == 0 and again["completed"]
    finally:
        service.subcount_configs = original
    report = service.reenrich_events(month_filter=months, max_batches=1, **SMALL)  # interrupted...
    assert not report["completed"]
    report = service.reenrich_events(month_filter=months, **SMALL)  # ...and resumed
    assert report["completed"] and report["total_errors"] == 0, report
    docs = r1_events()
    live = [d for d in docs if d["timestamp"][:7] == month and
            d["timestamp"] > arrow.utcnow().shift(minutes=-5).isoformat()[:19]]
    assert len(live) == 1  # the post-migration event, enriched like the others
    for doc in docs:
        assert sorted(lang["id"] for lang in doc["languages"]) == ["eng", "fra"]
        assert doc["community_ids"] == expected_communities(data["changes"], recid,
                                                            doc["timestamp"])
    assert current_search_client.count(index=names)["count"] == before  # nothing lost or added
    rows = [r for r in service.count_total_events() if r["state"] == "completed"]
    assert rows and all(service.enrichment_is_current(r["event_type"], r["month"]) for r in rows
                        if r["index"] in targets)
