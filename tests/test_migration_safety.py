# Part of invenio-stats-dashboard (MIT License).
"""The migration never hides, loses or double-counts an event, whatever happens to it.

Each test builds its own months (legacy, stock-mapped) from records created
under time travel, so the tests do not depend on each other's order. Expected
counts come from the planned events.
"""

import random
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone

import arrow
import pytest
import time_machine
from invenio_rdm_records.proxies import current_rdm_records_service
from invenio_search.proxies import current_search_client
from invenio_search.utils import prefix_index
from invenio_stats.proxies import current_stats

from invenio_stats_dashboard.cli import cli
from invenio_stats_dashboard.utils.usage_events import (
    BROWSER_UA,
    RecordTarget,
    expected_counts,
    plan_events,
)
from invenio_stats_dashboard.exceptions import TaskLockAcquisitionError
from invenio_stats_dashboard.proxies import current_event_reindexing_service
from invenio_stats_dashboard.services import events_log as log
from invenio_stats_dashboard.utils.jobs import configured_job, holder

from legacy_indices import index_legacy

LOCK = "community_stats_usage_events"
CREATED = datetime.now(timezone.utc) - timedelta(days=400)


def month_start(months_back):
    return arrow.utcnow().floor("month").shift(months=-months_back)


def alias(stem):
    return prefix_index(f"events-stats-{stem}")


def read_count(stem, month):
    """Events of ``month`` every reader sees, through the read alias."""
    start = arrow.get(month).floor("month")
    current_search_client.indices.refresh(index=f"{alias(stem)}*")
    return current_search_client.count(index=alias(stem), body={"query": {"range": {
        "timestamp": {"gte": start.format("YYYY-MM-DDTHH:mm:ss"),
                      "lt": start.shift(months=1).format("YYYY-MM-DDTHH:mm:ss")}}}})["count"]


@pytest.fixture(scope="module")
def service(services):
    return current_event_reindexing_service._get_current_object()


@pytest.fixture(scope="module")
def targets(services, make_record, communities):
    """Four records made long ago (their membership log entries are old too)."""
    with time_machine.travel(CREATED, tick=False):
        made = [make_record(community_id=communities["alpha"].id),
                make_record(files={"a.csv": b"1"}), make_record(), make_record()]
    resolve = current_rdm_records_service.record_cls.pid.resolve
    return [RecordTarget.from_record(resolve(m.id)) for m in made]


def legacy_month(targets, months_back, per_record=30, seed=1, stems=("record-view",)):
    """A legacy month of views of ``targets``; returns ``(month, expected count)``."""
    start = month_start(months_back)
    end = min(start.shift(months=1), arrow.utcnow().shift(minutes=-2))
    planned = plan_events([RecordTarget(t.recid, t.parent_recid, start.datetime, t.files)
                           for t in targets], per_record=per_record, start=start.datetime,
                          end=end.datetime - timedelta(seconds=1), seed=seed,
                          download_ratio=1.0)
    planned = {k: v if k in stems else [] for k, v in planned.items()}
    index_legacy(planned)
    month = start.format("YYYY-MM")
    return month, expected_counts(planned)[("record-view", month)]


def live_view(target, when):
    """One view through the real pipeline (queue and our indexer)."""
    current_stats.publish("record-view", [{
        "timestamp": arrow.get(when).naive.isoformat(), "recid": target.recid,
        "parent_recid": target.parent_recid, "via_api": False,
        "session_id": f"live-{time.monotonic_ns()}", "user_agent": BROWSER_UA,
        "ip_address": "8.8.8.8", "referrer": None}])
    entry = current_stats.events["record-view"]
    return entry.cls(**entry.params).run()


def forget_history(recid):
    """What a lost or never-run backfill leaves: no log document for ``recid``."""
    log.refresh()  # documents written in the last seconds are not searchable yet
    current_search_client.delete_by_query(index=log.alias_name(), refresh=True, body={
        "query": {"term": {"record_id": recid}}})


def test_rerun_of_a_finished_month_never_hides_it(service, targets, child_env, monkeypatch):
    """Item 1: --fresh-start on a finished month, killed at random points: always readable."""
    from invenio_stats_dashboard.cli.common import invenio_argv

    month, expected = legacy_month(targets, 5, per_record=40, seed=5)
    assert service.reindex_events(event_types=["view"], month_filter=month)["completed"]
    assert read_count("record-view", month) == expected
    monkeypatch.setenv("INVENIO_STATS_DASHBOARD_LOCK_LEASE", "1")
    # Throttled copies (about 16 s per run): every kill lands mid-run, even on an idle machine.
    monkeypatch.setenv("INVENIO_STATS_DASHBOARD_REINDEXING_REQUESTS_PER_SECOND", "10")
    argv = invenio_argv("usage-events", "migrate", "-e", "view", "-m", month,
                        "--batch-size", "2", "--fresh-start")
    rng, seen, mid_run = random.Random(3), [], 0
    for _ in range(3):
        while holder(LOCK) is not None:
            time.sleep(0.05)
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while holder(LOCK) is None and proc.poll() is None:  # the app starts, then the run
            time.sleep(0.01)
        deadline = time.monotonic() + rng.uniform(0.1, 2.0)
        while time.monotonic() < deadline and proc.poll() is None:
            seen.append(read_count("record-view", month))
        proc.kill()
        proc.wait()
        mark = service.reindexing_bookmark_api.get_bookmark(f"view-{month}-reindexing")
        mid_run += not (mark or {}).get("completed")
        seen.append(read_count("record-view", month))
    assert mid_run == 3 and len(seen) > 10 and set(seen) == {expected}, (mid_run, seen)
    while holder(LOCK) is not None:
        time.sleep(0.05)
    assert service.reindex_events(event_types=["view"], month_filter=month)["completed"]
    assert read_count("record-view", month) == expected


def test_failure_after_the_freeze_unblocks_and_keeps_every_event(service, targets):
    """Items 2 and 5: a month whose record has no log history fails after the freeze.

    The stock index is unblocked and keeps serving, an event routed live to the
    enriched index meanwhile is read too, nothing is stamped "in no community"
    for good; once the backfill ran, the next run completes.
    """
    from invenio_stats_dashboard.proxies import current_community_stats_service

    month, expected = legacy_month(targets, 4, seed=7)
    lost = targets[2].recid
    forget_history(lost)
    try:
        _fail_then_complete(service, targets, month, expected, lost)
    finally:  # a failure here must not leave the module's other tests without history
        current_community_stats_service.generate_record_community_events(recids=[lost])


def _fail_then_complete(service, targets, month, expected, lost):
    """The test's body, run while ``lost`` has no log history."""
    from invenio_stats_dashboard.proxies import current_community_stats_service

    late = arrow.get(month).shift(days=3, hours=5)

    def late_event(event_type, m, processed):  # a late event for this month, mid-run
        if not late_event.done:
            late_event.done = True
            assert live_view(targets[0], late)[0] == 1
    late_event.done = False

    report = service.reindex_events(event_types=["view"], month_filter=month,
                                    batch_size=5, progress=late_event)
    result = report["event_types"]["view"]["months"][month]
    assert not result["completed"] and late_event.done, result
    assert "no history in the community events log" in result["errors"][0]
    assert lost in result["errors"][0]
    source = prefix_index(f"events-stats-record-view-{month}")
    settings = current_search_client.indices.get_settings(index=source)[source]["settings"]
    assert settings["index"].get("blocks", {}).get("write") in (None, "false")
    assert read_count("record-view", month) == expected + 1  # the late event included
    assert not (service.reindexing_bookmark_api.get_bookmark(
        f"view-{month}-reindexing") or {}).get("completed")

    current_community_stats_service.generate_record_community_events(recids=[lost])
    report = service.reindex_events(event_types=["view"], month_filter=month, batch_size=5)
    assert report["completed"], report
    assert read_count("record-view", month) == expected + 1
    target = f"{source}-v2.0.0"
    current_search_client.indices.refresh(index=target)
    assert current_search_client.count(index=target)["count"] == expected + 1


def test_a_refused_bulk_is_retried_then_requeued_never_lost(services, targets):
    """Item 2: events the cluster refuses (a write-blocked month) go back to the queue."""
    from invenio_stats_dashboard.search_indices.event_builders import EnrichedEventsIndexer

    month, expected = legacy_month(targets, 7, per_record=2, seed=11)
    source = prefix_index(f"events-stats-record-view-{month}")
    current_search_client.indices.put_settings(index=source, body={"index.blocks.write": True})
    entry = current_stats.events["record-view"]
    try:
        when = arrow.get(month).shift(days=2)
        current_stats.publish("record-view", [{
            "timestamp": when.shift(minutes=n).naive.isoformat(), "recid": targets[1].recid,
            "parent_recid": targets[1].parent_recid, "via_api": False,
            "session_id": f"blocked-{n}", "user_agent": BROWSER_UA,
            "ip_address": "8.8.8.8", "referrer": None} for n in range(4)])
        indexer = entry.cls(**entry.params)
        assert isinstance(indexer, EnrichedEventsIndexer)
        indexer.retries = 1
        assert indexer.run() == (0, 0)
        assert read_count("record-view", month) == expected
    finally:
        current_search_client.indices.put_settings(index=source,
                                                   body={"index.blocks.write": None})
    assert entry.cls(**entry.params).run()[0] == 4  # requeued, processed once more
    assert read_count("record-view", month) == expected + 4
    current_search_client.indices.refresh(index=source)
    requeued = [h["_source"] for h in current_search_client.search(index=source, body={
        "query": {"range": {"timestamp": {"gte": when.format("YYYY-MM-DDTHH:mm:ss"),
                                          "lt": when.shift(hours=1).format("YYYY-MM-DDTHH:mm:ss")}}},
        "size": 100})["hits"]["hits"]]
    assert len(requeued) == 4
    assert all(d["country"] == "US" and d["is_robot"] is False and d["visitor_id"]
               for d in requeued)  # preprocessed exactly once


def test_months_created_after_the_migration_are_enriched_live(services, service, targets):
    """Item 4: a month our indexer created is 'enriched live': not migrated, re-enriched."""
    start = month_start(9)
    month = start.format("YYYY-MM")
    for n in range(3):
        assert live_view(targets[0], start.shift(days=1, hours=n))[0] == 1
    rows = [r for r in service.count_total_events(["view"], month)]
    assert [r["state"] for r in rows] == ["enriched live"]
    report = service.reindex_events(event_types=["view"], month_filter=month)
    assert report["total_processed"] == 0 and report["completed"]
    index = prefix_index(f"events-stats-record-view-{month}")
    assert not current_search_client.indices.exists(index=f"{index}-v2.0.0")
    assert [s.enriched_index for s in service.enriched_months("view", month)] == [index]
    assert service.enrichment_is_current("view", month)
    original = service.subcount_configs
    try:
        service.subcount_configs = {k: v for k, v in original.items() if k != "resource_types"}
        assert not service.enrichment_is_current("view", month)
        report = service.reenrich_events(event_types=["view"], month_filter=month)
        assert report["event_types"]["view"]["months"][month]["processed"] == 3
        current_search_client.indices.refresh(index=index)
        docs = current_search_client.search(index=index)["hits"]["hits"]
        assert len(docs) == 3 and all("resource_type" not in d["_source"] for d in docs)
        assert service.enrichment_is_current("view", month)
    finally:
        service.subcount_configs = original


def test_a_retroactive_membership_change_makes_reenrich_revisit_the_month(
        services, service, targets, communities):
    """Item 5: the backfill writes history dated long ago; re-enrich restamps those events."""
    month, expected = legacy_month(targets, 6, seed=13)
    assert service.reindex_events(event_types=["view"], month_filter=month)["completed"]
    index = prefix_index(f"events-stats-record-view-{month}-v2.0.0")
    recid = targets[0].recid  # in alpha since CREATED

    def stamped():
        current_search_client.indices.refresh(index=index)
        hits = current_search_client.search(index=index, body={
            "query": {"term": {"recid": recid}}, "size": 1000})["hits"]["hits"]
        return {tuple(h["_source"]["community_ids"]) for h in hits}

    assert stamped() == {(communities["alpha"].id,)}
    state = service.enriched_months("view", month)[0]
    assert service.membership_changes(state) == []
    # The log loses the record and the backfill writes it again: dated at
    # creation, written now (retroactive). The stamps happen to be right, but
    # the month must be revisited for exactly that record.
    forget_history(recid)
    from invenio_stats_dashboard.proxies import current_community_stats_service

    current_community_stats_service.generate_record_community_events(recids=[recid])
    assert service.membership_changes(state) == [recid]
    runner = services.test_cli_runner()
    dry = runner.invoke(cli, ["usage-events", "re-enrich", "-e", "view", "-m", month, "--dry-run"])
    assert "membership changed for 1 records" in dry.output, dry.output
    report = service.reenrich_events(event_types=["view"], month_filter=month)
    result = report["event_types"]["view"]["months"][month]
    per_record = current_search_client.count(index=index, body={
        "query": {"term": {"recid": recid}}})["count"]
    assert result["completed"] and result["processed"] == per_record < expected
    assert result["scope"] == "1 changed records"
    assert stamped() == {(communities["alpha"].id,)}
    assert service.membership_changes(service.enriched_months("view", month)[0]) == []


def test_one_run_at_a_time(services, service, targets):
    """Item 6: migrate, --async and re-enrich refuse while another run holds the lock."""
    month, _ = legacy_month(targets, 8, per_record=3, seed=17)
    runner = services.test_cli_runner()
    with configured_job("usage_events"):
        result = runner.invoke(cli, ["usage-events", "migrate", "-m", month])
        assert result.exit_code == 1 and "another run holds lock" in result.output
        result = runner.invoke(cli, ["usage-events", "migrate", "--async", "-m", month])
        assert result.exit_code == 0  # queued; the task reports that it was skipped
        from invenio_stats_dashboard.tasks.usage_reindexing_tasks import (
            reindex_usage_events_with_metadata,
        )

        skipped = reindex_usage_events_with_metadata.delay(months=[month]).get()
        assert skipped["skipped"] and "another run holds lock" in skipped["error"]
        with pytest.raises(TaskLockAcquisitionError):
            service.reenrich_events()
    assert service.count_total_events(["view"], month)[0]["state"] == "not started"
    assert service.reindex_events(event_types=["view"], month_filter=month)["completed"]
    with configured_job("usage_events"):  # now that a migrated month exists to re-enrich
        result = runner.invoke(cli, ["usage-events", "re-enrich", "-m", month])
        assert result.exit_code == 1 and "another run holds lock" in result.output


def test_a_cancelled_copy_is_a_failure(services, service, targets):
    """Item 6: a server-side copy cancelled under the run does not count as done."""
    month, expected = legacy_month(targets[:1], 10, per_record=300, seed=19)
    done, cancelled = threading.Event(), []
    client = current_search_client._get_current_object()  # used outside the app context

    def cancel_it():
        while not done.is_set():
            tasks = client.tasks.list(actions="*reindex", detailed=True)
            for node in tasks.get("nodes", {}).values():
                for task_id, task in node.get("tasks", {}).items():
                    if f"{month}-v2.0.0" in task.get("description", ""):
                        client.tasks.cancel(task_id=task_id)
                        cancelled.append(task_id)
                        return
            time.sleep(0.05)

    thread = threading.Thread(target=cancel_it)
    thread.start()
    try:
        report = service.reindex_events(event_types=["view"], month_filter=month,
                                        batch_size=100, requests_per_second=20)
    finally:
        done.set()
        thread.join()
    result = report["event_types"]["view"]["months"][month]
    assert cancelled and expected > 200
    assert not result["completed"] and "cancelled" in result["errors"][0], result
    mark = service.reindexing_bookmark_api.get_bookmark(f"view-{month}-reindexing")
    assert mark is None or not mark.get("last_record_id")  # not moved past the group
    assert read_count("record-view", month) == expected
    assert service.reindex_events(event_types=["view"], month_filter=month)["completed"]
    assert read_count("record-view", month) == expected


def test_settings_apply_to_one_call_only(services, service, targets):
    """Item 8: a batch size given to one run does not leak into the next."""
    default = service.batch_size
    one, n_one = legacy_month(targets, 11, per_record=6, seed=23)
    two, n_two = legacy_month(targets, 12, per_record=6, seed=29)
    first = service.reindex_events(event_types=["view"], month_filter=one, batch_size=7)
    assert first["event_types"]["view"]["months"][one]["batches"] >= 3  # 24 events / 7
    second = service.reindex_events(event_types=["view"], month_filter=two)
    assert second["event_types"]["view"]["months"][two]["batches"] == 1  # all in one group
    assert service.batch_size == default == services.config[
        "STATS_DASHBOARD_REINDEXING_BATCH_SIZE"]


def test_current_month_kill_after_switch_and_delete_old(services, service, targets):
    """Items 7 and 13: --delete-old-indices on the current month keeps its enriched index;
    a run killed between the switch and its bookmark is completed by the next one."""
    start = arrow.utcnow().floor("month")
    if arrow.utcnow() < start.shift(minutes=10):
        pytest.skip("too close to the month's start for events before now")
    month, expected = legacy_month(targets, 0, per_record=5, seed=31)
    report = service.reindex_events(event_types=["view"], month_filter=month,
                                    delete_old_indices=True)
    assert report["completed"], report
    stock = prefix_index(f"events-stats-record-view-{month}")
    target = f"{stock}-v2.0.0"
    assert current_search_client.indices.exists_alias(name=stock)  # now an alias of...
    assert list(current_search_client.indices.get_alias(name=stock)) == [target]
    assert read_count("record-view", month) == expected  # ...the index that was kept
    # The exact state a kill after the switch's _aliases call leaves: bookmark incomplete.
    marks = service.reindexing_bookmark_api
    marks.set_bookmark(f"view-{month}-reindexing", last_record_id=targets[-1].recid)
    runner = services.test_cli_runner()
    status = runner.invoke(cli, ["usage-events", "status"])
    assert "switched, not marked complete" in status.output, status.output
    report = service.reindex_events(event_types=["view"], month_filter=month)
    result = report["event_types"]["view"]["months"][month]
    assert result["completed"] and result.get("finished_switch")
    assert marks.get_bookmark(f"view-{month}-reindexing")["completed"]
    status = runner.invoke(cli, ["usage-events", "status"])
    line = next(l for l in status.output.splitlines() if l.startswith(f"view     {month}"))
    assert "completed" in line


def test_cancelling_a_background_migration_stops_it_cleanly(services, service, targets,
                                                           child_env, tmp_path):
    """The job protocol: `processes cancel` asks the run to stop at its next group
    (SIGTERM becomes a cancel request); the lock is released, the bookmark kept,
    the month still served by its stock index, and the next run completes it."""
    from invenio_stats_dashboard.utils.process_manager import ProcessManager

    month, expected = legacy_month(targets, 13, per_record=60, seed=37)
    pid_dir = ["--pid-dir", str(tmp_path)]
    runner = services.test_cli_runner()
    started = runner.invoke(cli, ["usage-events", "migrate-background", "-e", "view", "-m", month,
                                  "--batch-size", "2", *pid_dir])
    assert started.exit_code == 0, started.output
    job = ProcessManager("event-migration", tmp_path)
    deadline = time.monotonic() + 60
    while holder(LOCK) is None and time.monotonic() < deadline:  # the run has begun
        time.sleep(0.01)
    assert holder(LOCK) is not None
    cancel = runner.invoke(cli, ["processes", "cancel", "event-migration", *pid_dir])
    assert cancel.exit_code == 0, cancel.output
    assert job.status()["status"] == "cancelled"
    assert holder(LOCK) is None  # released by the run itself, not left to expire
    log = "".join(job.read_log(200) or [])
    assert "Traceback" not in log
    mark = service.reindexing_bookmark_api.get_bookmark(f"view-{month}-reindexing")
    assert not (mark or {}).get("completed")
    assert read_count("record-view", month) == expected
    assert service.reindex_events(event_types=["view"], month_filter=month)["completed"]
    assert read_count("record-view", month) == expected
