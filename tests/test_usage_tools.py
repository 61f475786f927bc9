# Part of invenio-stats-dashboard (MIT License).
"""usage-events generate / generate-background / re-enrich / cleanup-old-indices /
remove-backup-aliases.

Runs after ``test_usage_migration`` (file order) on months of 2023, which no
other module uses. Expected counts come from the request and the database,
not from the command's output.
"""

import time

import pytest
from invenio_rdm_records.proxies import current_rdm_records_service
from invenio_rdm_records.records.models import RDMRecordMetadata
from invenio_search.proxies import current_search_client
from invenio_search.utils import prefix_index

from invenio_stats_dashboard.cli import cli
from invenio_stats_dashboard.proxies import current_event_reindexing_service
from invenio_stats_dashboard.utils.process_manager import ProcessManager
from legacy_indices import create_stock_months

JAN, FEB = "2023-01", "2023-02"


def run(app, *args, input=None):
    return app.test_cli_runner().invoke(cli, list(args), input=input)


def count(stem, month):
    name = prefix_index(f"events-stats-{stem}-{month}")
    if not current_search_client.indices.exists(index=name):
        return 0
    current_search_client.indices.refresh(index=name)
    return current_search_client.count(index=name)["count"]


def oldest_records(n):
    """Oracle: the ``n`` oldest live record versions and whether each has files."""
    record_cls = current_rdm_records_service.record_cls
    picked = []
    for row in RDMRecordMetadata.query.all():
        if not row.data or "id" not in row.data:
            continue
        record = record_cls(row.data, model=row)
        if record.deletion_status.is_deleted:
            continue
        picked.append((row.created, row.data["id"], bool(record.files.enabled and len(record.files))))
    return [(recid, has) for _, recid, has in sorted(picked)[:n]]


@pytest.fixture(scope="module")
def generated(services, records):
    """Three views per record for the 4 oldest records in January 2023."""
    current_search_client.indices.refresh(index=prefix_index("rdmrecords-records"))
    create_stock_months([JAN, FEB])  # legacy months: InvenioRDM's stock mapping
    picked = oldest_records(4)
    with_files = sum(1 for _, has in picked if has)
    assert 0 < with_files < 4  # both kinds are exercised
    before = count("record-view", JAN), count("file-download", JAN)
    result = run(services, "usage-events", "generate", "--max-records", "4",
                 "--events-per-record", "3", "--event-start-date", "2023-01-01",
                 "--event-end-date", "2023-01-31", "--yes-i-know")
    assert result.exit_code == 0, result.output
    return {"views": 4 * 3, "downloads": 3 * with_files, "before": before,
            "output": result.output}


def test_generate_indexes_exactly_the_requested_events(generated):
    assert count("record-view", JAN) - generated["before"][0] == generated["views"], generated["output"]
    assert count("file-download", JAN) - generated["before"][1] == generated["downloads"]
    assert f"Indexed: {generated['views'] + generated['downloads']} events" in generated["output"]


def test_generate_prompt_dry_run_and_bad_input(services, generated):
    before = count("record-view", JAN)
    result = run(services, "usage-events", "generate", "--max-records", "1",
                 "--event-start-date", "2023-01-01", "--event-end-date", "2023-01-31", input="n\n")
    assert result.exit_code == 0 and "Operation cancelled by user." in result.output
    result = run(services, "usage-events", "generate", "--max-records", "2",
                 "--events-per-record", "2", "--dry-run")
    assert result.exit_code == 0 and "Generated: 4 views" in result.output
    result = run(services, "usage-events", "generate", "--event-start-date", "2023-02-30",
                 "--yes-i-know")
    assert result.exit_code == 1 and "Malformed --event-start-date" in result.output
    result = run(services, "usage-events", "generate", "--event-start-date", "2023-02-02",
                 "--event-end-date", "2023-02-01", "--yes-i-know")
    assert result.exit_code == 1 and "is after" in result.output
    assert count("record-view", JAN) == before  # nothing written by any of these


def test_generate_background_job(services, generated, child_env, tmp_path):
    before = count("record-view", FEB)
    result = run(services, "usage-events", "generate-background", "--max-records", "2",
                 "--events-per-record", "2", "--event-start-date", "2023-02-01",
                 "--event-end-date", "2023-02-28", "--yes-i-know", "--pid-dir", str(tmp_path))
    assert result.exit_code == 0 and "usage-event-generation" in result.output, result.output
    job = ProcessManager("usage-event-generation", tmp_path)
    deadline = time.monotonic() + 180
    while (status := job.status() or {}).get("running", True):
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
    assert status["status"] == "finished", "".join(job.read_log(100))
    assert count("record-view", FEB) - before == 4


def test_reenrich_cli(services, generated):
    service = current_event_reindexing_service._get_current_object()
    report = service.reindex_events(month_filter=JAN)
    assert report["completed"], report
    result = run(services, "usage-events", "re-enrich", "-m", JAN, "--dry-run")
    assert result.exit_code == 0 and result.output.count("current") == 2, result.output
    result = run(services, "usage-events", "re-enrich", "-m", JAN)  # nothing out of date
    assert result.exit_code == 0 and "already done" in result.output
    result = run(services, "usage-events", "re-enrich", "-m", JAN, "-e", "view", "--fresh-start")
    views = count("record-view", JAN)
    assert result.exit_code == 0 and f"re-enriched {views} events" in result.output, result.output
    result = run(services, "usage-events", "re-enrich", "-m", "2023-13")
    assert result.exit_code == 1 and "Malformed month" in result.output
    result = run(services, "usage-events", "re-enrich", "-m", "1999-01")
    assert result.exit_code == 1 and "No enriched event indices" in result.output


def test_cleanup_old_indices_deletes_only_verified_months(services, generated):
    service = current_event_reindexing_service._get_current_object()
    if not service.reindexing_bookmark_api.get_bookmark(f"view-{JAN}-reindexing"):
        assert service.reindex_events(month_filter=JAN)["completed"]
    # February: stock index, an enriched twin that misses an event, no completed bookmark.
    feb = prefix_index(f"events-stats-record-view-{FEB}")
    assert count("record-view", FEB) > 0
    current_search_client.indices.create(index=f"{feb}-v2.0.0", ignore=[400])
    alias = prefix_index("events-stats-record-view")
    current_search_client.indices.refresh(index=alias)
    reads_before = current_search_client.count(index=alias)["count"]
    jan = prefix_index(f"events-stats-record-view-{JAN}")

    result = run(services, "usage-events", "cleanup-old-indices", "-e", "view", "--dry-run")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    at = lines.index(f"  {jan} → {jan}-v2.0.0")
    assert "[OK] Would delete" in lines[at + 1]
    at = lines.index(f"  {feb} → {feb}-v2.0.0")
    assert "[WARNING] Kept: migration not completed" in lines[at + 1]
    assert current_search_client.indices.exists(index=jan)

    result = run(services, "usage-events", "cleanup-old-indices", "-e", "view")
    assert result.exit_code == 0 and "[OK] Deleted successfully" in result.output
    assert not current_search_client.indices.exists(index=jan)
    assert current_search_client.indices.exists(index=feb)
    current_search_client.indices.refresh(index=alias)
    assert current_search_client.count(index=alias)["count"] == reads_before  # reads unchanged
    current_search_client.indices.delete(index=f"{feb}-v2.0.0")


def test_remove_backup_aliases(services):
    alias = prefix_index("events-stats-record-view")
    backup = f"{alias}-2023-03-backup"
    current_search_client.indices.create(index=backup, body={"aliases": {alias: {}}})
    try:
        result = run(services, "usage-events", "remove-backup-aliases", "--dry-run")
        assert result.exit_code == 0 and f"Would remove {alias} from {backup}" in result.output
        assert current_search_client.indices.exists_alias(name=alias, index=backup)
        result = run(services, "usage-events", "remove-backup-aliases")
        assert result.exit_code == 0 and f"[OK] Removed {alias} from {backup}" in result.output
        assert not current_search_client.indices.exists_alias(name=alias, index=backup)
        result = run(services, "usage-events", "remove-backup-aliases")
        assert "No backup index has aliases" in result.output
    finally:
        current_search_client.indices.delete(index=backup, ignore=[404])


def test_a_failing_month_keeps_its_source_and_is_retried(services, records):
    """An event the enriched mapping rejects fails its month; fixed, the next run completes."""
    service = current_event_reindexing_service._get_current_object()
    month = "2022-05"
    source = prefix_index(f"events-stats-file-download-{month}")
    target = f"{source}-v2.0.0"
    recid = records["one_file"].id
    current_search_client.indices.create(index=source, body={  # a loosely mapped legacy month
        "mappings": {"properties": {"size": {"type": "keyword"}}}})
    events = [{"timestamp": f"{month}-0{d}T10:00:00", "recid": recid, "file_key": "x.csv",
               "size": str(d), "is_robot": False, "unique_id": f"u{d}"} for d in range(1, 6)]
    events[2]["size"] = "not a number"  # the enriched mapping has size: long
    for n, event in enumerate(events):
        current_search_client.index(index=source, id=f"bad-{n}", body=event)
    current_search_client.indices.refresh(index=source)
    try:
        report = service.reindex_events(event_types=["download"], month_filter=month)
        result = report["event_types"]["download"]["months"][month]
        assert not report["completed"] and report["total_errors"] >= 1
        assert not result["completed"] and "failed on the server" in result["errors"][0]
        assert current_search_client.count(index=source)["count"] == 5  # untouched
        alias = prefix_index("events-stats-file-download")
        current_search_client.indices.refresh(index=f"{alias}*")
        in_month = {"query": {"range": {"timestamp": {"gte": f"{month}-01T00:00:00", "lt": f"{month}-28T00:00:00"}}}}
        # Readers still see the month exactly once: the stock index serves it, the
        # enriched one joins the alias filtered to live writes (it has none).
        assert current_search_client.count(index=alias, body=in_month)["count"] == 5
        assert current_search_client.indices.get_alias(index=target, name=alias)[target][
            "aliases"][alias]["filter"]
        mark = service.reindexing_bookmark_api.get_bookmark(f"download-{month}-reindexing")
        assert not (mark or {}).get("completed")

        current_search_client.update(index=source, id="bad-2", body={"doc": {"size": "3"}},
                                     refresh=True)
        report = service.reindex_events(event_types=["download"], month_filter=month)
        assert report["completed"] and report["total_errors"] == 0, report
        assert current_search_client.count(index=target)["count"] == 5
        assert current_search_client.indices.exists_alias(name=alias, index=target)
    finally:
        for index in (source, target):
            current_search_client.indices.delete(index=index, ignore=[404])


def test_validation_really_fails(services, generated):
    """Counts and sampled fields: a missing or altered event is reported."""
    service = current_event_reindexing_service._get_current_object()
    source = prefix_index(f"events-stats-record-view-{FEB}")
    target = f"{source}-v2.0.0"
    current_search_client.indices.delete(index=target, ignore=[404])
    service.reindexing_bookmark_api.delete_bookmark(f"view-{FEB}-reindexing")
    assert service.reindex_events(event_types=["view"], month_filter=FEB)["completed"]
    assert service.validate_enriched_data(source, target)["success"]
    ids = [h["_id"] for h in current_search_client.search(index=target, body={"size": 2})[
        "hits"]["hits"]]
    current_search_client.delete(index=target, id=ids[0], refresh=True)
    current_search_client.update(index=target, id=ids[1], refresh=True,
                                 body={"doc": {"visitor_id": "someone-else"}})
    result = service.validate_enriched_data(source, target, sample_size=1000)
    assert not result["success"]
    assert any("1 of" in e and "missing" in e for e in result["errors"])
    assert any(f"event {ids[1]}: field visitor_id differs" in e for e in result["errors"])


def test_migration_refuses_to_run_before_the_membership_log(services, generated):
    """Without step 3b every event would be stamped 'in no community': refuse, write nothing."""
    from invenio_stats_dashboard.services import events_log as log

    alias = log.alias_name()
    behind = list(current_search_client.indices.get_alias(name=alias))
    assert behind
    source = prefix_index(f"events-stats-record-view-{FEB}")
    target = f"{source}-v2.0.0"
    current_search_client.indices.delete(index=target, ignore=[404])
    current_search_client.indices.update_aliases(body={"actions": [
        {"remove": {"index": index, "alias": alias}} for index in behind]})
    try:
        result = run(services, "usage-events", "migrate", "-m", FEB, "--fresh-start")
        assert result.exit_code == 1, result.output
        assert "community events log is empty" in result.output
        assert not current_search_client.indices.exists(index=target)  # nothing written
    finally:
        current_search_client.indices.update_aliases(body={"actions": [
            {"add": {"index": index, "alias": alias}} for index in behind]})


def test_stale_server_side_copies_are_cancelled(services, generated):
    """A copy left running by a killed client is cancelled before its month resumes."""
    from invenio_stats_dashboard.services.usage_reindexing.server_side import cancel_stale_copies

    source = prefix_index(f"events-stats-record-view-{JAN}-v2.0.0")
    if not current_search_client.indices.exists(index=source):
        source = prefix_index(f"events-stats-record-view-{FEB}")
    scratch = prefix_index("scratch-stale-copy")
    task = current_search_client.reindex(  # throttled to 1 event/s: still running below
        body={"source": {"index": source, "size": 1}, "dest": {"index": scratch}},
        wait_for_completion=False, requests_per_second=1)["task"]
    try:
        assert cancel_stale_copies(current_search_client, prefix_index("elsewhere")) == 0
        assert cancel_stale_copies(current_search_client, scratch) == 1
        deadline = time.monotonic() + 30
        while not current_search_client.tasks.get(task_id=task).get("completed"):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        status = current_search_client.tasks.get(task_id=task)
        assert status["task"]["status"].get("canceled") or status.get("response", {}).get(
            "canceled"), status
    finally:
        current_search_client.indices.delete(index=scratch, ignore=[404])


def test_search_errors_are_one_line(services):
    """A failure inside a command is one 'Error: …' line and exit 1, not a traceback."""
    bookmarks = current_event_reindexing_service.reindexing_bookmark_api
    bookmarks.set_bookmark("view-2021-07-reindexing", last_record_id="x")  # index exists
    month = prefix_index("events-stats-record-view-2021-07")
    current_search_client.indices.create(index=month)
    current_search_client.indices.close(index=bookmarks.index)  # reading it fails
    try:
        result = run(services, "usage-events", "status")
    finally:
        current_search_client.indices.open(index=bookmarks.index, wait_for_active_shards=1)
        current_search_client.indices.delete(index=month, ignore=[404])
        bookmarks.delete_bookmark("view-2021-07-reindexing")
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "search cluster: 400" in errors[0], result.output
    assert "Traceback" not in result.output


def test_migrate_with_delete_old_indices(services, records):
    """--delete-old-indices: the stock index goes once its month is validated; reads stay."""
    month = "2022-07"
    source = prefix_index(f"events-stats-record-view-{month}")
    recid = records["rich"].id
    for day in (1, 2, 3):
        current_search_client.index(index=source, id=f"old-{day}", body={
            "timestamp": f"{month}-0{day}T08:00:00", "recid": recid, "is_robot": False,
            "unique_id": f"ui_{recid}", "visitor_id": f"v{day}"})
    current_search_client.index(index=source, id="old-unknown", body={  # purged record
        "timestamp": f"{month}-04T08:00:00", "recid": "nope0-00000", "is_robot": False})
    current_search_client.indices.refresh(index=source)
    current_search_client.indices.refresh(index=prefix_index("rdmrecords-records"))
    try:
        result = run(services, "usage-events", "migrate", "-e", "view", "-m", month,
                     "--delete-old-indices")
        assert result.exit_code == 0, result.output
        assert "warning: 1 record(s) not in the records index" in result.output
        assert "nope0-00000" in result.output
        assert not current_search_client.indices.exists(index=source)
        alias = prefix_index("events-stats-record-view")
        target = f"{source}-v2.0.0"
        assert current_search_client.indices.exists_alias(name=alias, index=target)
        current_search_client.indices.refresh(index=target)
        docs = [h["_source"] for h in current_search_client.search(
            index=target, body={"size": 10, "query": {"term": {"recid": recid}}})["hits"]["hits"]]
        assert len(docs) == 3 and all(d["resource_type"]["id"] == "publication-article"
                                      for d in docs)
        unknown = current_search_client.get(index=target, id="old-unknown")["_source"]
        assert unknown["community_ids"] == [] and "resource_type" not in unknown
        status = run(services, "usage-events", "status")
        line = next(x for x in status.output.splitlines() if x.startswith(f"view     {month}"))
        assert line.split()[2:6] == ["4", "4", "0", "completed"], line
    finally:
        for index in (source, f"{source}-v2.0.0"):
            current_search_client.indices.delete(index=index, ignore=[404])
