# Part of invenio-stats-dashboard (MIT License).
"""Oracles and helpers shared by the membership-log tests."""

from collections import Counter

from invenio_rdm_records.proxies import current_rdm_records_service
from invenio_rdm_records.records.models import RDMRecordMetadata
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
    log.refresh()
    found, after = Counter(), None
    body = {"size": 1000, "sort": [{"_id": "asc"}], "query": {"match_all": {}}}
    while True:
        if after:
            body["search_after"] = after
        hits = current_search_client.search(index=log.alias_name(), body=body)["hits"]["hits"]
        for h in hits:
            s = h["_source"]
            found[(s["record_id"], s["community_id"], s["event_type"])] += 1
        if len(hits) < 1000:
            return found
        after = hits[-1]["sort"]


def wipe_log():
    current_search_client.delete_by_query(index=log.alias_name(),
                                          body={"query": {"match_all": {}}}, refresh=True)
