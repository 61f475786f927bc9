# Part of invenio-stats-dashboard (MIT License).
"""Oracles and helpers shared by the membership-log tests."""

from collections import Counter

from invenio_rdm_records.proxies import current_rdm_records_service
from invenio_rdm_records.records.models import RDMRecordMetadata
from invenio_search.engine import search
from invenio_search.proxies import current_search_client

from invenio_stats_dashboard.services import events_log as log


def oracle_pairs():
    """``Counter((record_id, community, type))`` the backfill must produce, from the DB."""
    expected = Counter()
    record_cls = current_rdm_records_service.record_cls
    for row in RDMRecordMetadata.query.all():
        if not row.data or "id" not in row.data:
            continue
        record = record_cls(row.data, model=row)
        members = {"global", *record.parent.communities.ids}
        for community in members:
            expected[(row.data["id"], community, "added")] += 1
            if record.deletion_status.is_deleted:
                expected[(row.data["id"], community, "removed")] += 1
    return expected


def log_pairs():
    """``Counter((record_id, community, type))`` of every log document."""
    log.refresh()
    found = Counter()
    for h in search.helpers.scan(current_search_client, index=log.alias_name(),
                                 query={"query": {"match_all": {}}}):
        s = h["_source"]
        found[(s["record_id"], s["community_id"], s["event_type"])] += 1
    return found


def wipe_log(query=None):
    """Delete log documents (all, or those matching ``query``): history before installation."""
    log.refresh()
    current_search_client.delete_by_query(
        index=log.alias_name(), body={"query": query or {"match_all": {}}}, refresh=True)
