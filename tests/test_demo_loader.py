# Part of invenio-stats-dashboard (MIT License).
"""The demo loader: any seed loads, and the history it draws is the documented one."""

import itertools
from datetime import datetime, timezone

import pytest

from invenio_stats_dashboard.demo.history import (
    BULK_COMMUNITY,
    COMMUNITIES,
    plan_history,
    plan_usage_events,
)
from invenio_stats_dashboard.utils.usage_events import RecordTarget

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=timezone.utc)


def test_seed_42_draws_the_documented_data_set():
    """docs/demo.md's seed-42 figures (the loader's summary before its history
    was drawn up front): records, versions, membership changes, deletions, events.

    Record ids do not matter to the planner, so stand-ins are enough.
    """
    history = plan_history(300, 42, NOW)
    ids = itertools.count()
    targets = [
        RecordTarget(f"r{n}-{i}", f"p{n}", when,
                     [{"bucket_id": f"b{n}-{i}", "file_id": f"f{next(ids)}", "key": key,
                       "size": len(content)}
                      for key, content in (history.records[n].files or {}).items()])
        for n, i, when in history.versions
    ]
    planned = plan_usage_events(targets, 50_000, 42, NOW)

    records = history.records
    assert len(records) == 300
    assert sum(1 for r in records if r.files) == 189
    assert len(history.versions) == 328
    assert sum(len(r.homes) for r in records if r.by_owner) == 159  # direct adds
    assert sum(len(r.homes) for r in records if not r.by_owner) == 108  # accepted requests
    assert (sum(r.removed for r in records), sum(r.re_added for r in records)) == (8, 1)
    assert len(history.bulk_add) == 10
    assert (len(history.deletions), sum(r for _, r in history.deletions)) == (6, 1)
    assert (len(planned["record-view"]), len(planned["file-download"])) == (38_048, 11_867)


def _expected_communities(history):
    """Each record's communities after loading, from the plan alone."""
    expected = {}
    for record in history.records:
        homes = set(record.homes)
        if record.removed and not record.re_added:
            homes.discard(record.homes[0])
        expected[record.n] = homes
    positions = {pos: (n, i) for pos, (n, i, _) in enumerate(history.versions)}
    for pos in history.bulk_add:
        expected[positions[pos][0]].add(BULK_COMMUNITY)
    return expected


# Seeds whose first records include a depositor's record that is removed from a
# community and added again (seeds 1234-1239 with 130 records failed on that).
@pytest.mark.parametrize("seed,records", [(21, 6), (105, 5), (7, 8)])
def test_loader_readds_a_depositor_record_the_way_it_first_joined(services, seed, records):
    from invenio_communities.proxies import current_communities
    from invenio_rdm_records.proxies import current_rdm_records_service

    from invenio_stats_dashboard.demo.loader import load

    history = plan_history(records, seed, NOW)
    assert any(r.re_added and not r.by_owner for r in history.records)

    loaded = load(records, 200, seed, now=NOW)

    summary = loaded.summary
    assert summary["records"] == records
    assert summary["records"] + summary.get("new_versions", 0) == len(history.versions)
    assert summary["re_adds"] == sum(r.re_added for r in history.records)
    expected = _expected_communities(history)
    resolve_community = current_communities.service.record_cls.pid.resolve
    slug_of = {str(resolve_community(slug).id): slug for slug, _, _ in COMMUNITIES}
    resolve = current_rdm_records_service.record_cls.pid.resolve
    for pos, (n, i, _) in enumerate(history.versions):
        if i == 0:  # the parent's communities, through the first version
            parent = resolve(loaded.version_ids[pos]).parent
            got = {slug_of[str(c)] for c in parent.communities.ids}
            assert got == expected[n], (n, history.records[n])
