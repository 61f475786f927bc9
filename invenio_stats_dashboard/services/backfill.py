# Part of invenio-stats-dashboard (MIT License).
"""Backfill of the membership log for records that predate it (seed step 3b).

Streams the records index (every published version, deleted ones included)
in ``search_after`` pages sorted by (created, id); for each page it reads the
log once for all the page's records and the accepted inclusion requests once
from the database, then writes only pairs the log has never seen
(``membership.backfill_changes``): re-runs add nothing. After each written page
a bookmark records the last ``created`` instant, so an interrupted run resumes
there; a completed run clears it.
"""

import hashlib
import json
from dataclasses import dataclass, field

import arrow
from flask import current_app
from invenio_search.proxies import current_search_client
from ..search_indices.names import records_index

from ..aggregations.bookmarks import CommunityEventBookmarkAPI
from . import events_log as log
from .membership import backfill_changes, from_search_hit

SOURCE_FIELDS = ["id", "created", "updated", "parent.id", "parent.communities.ids",
                 "metadata.publication_date", "deletion_status", "tombstone.removal_date"]
ACCEPTING_REQUESTS = ("community-inclusion", "community-submission")


@dataclass
class Scope:
    """Which records and communities a backfill (or count) covers."""

    record_ids: list = field(default_factory=list)
    community_ids: list = field(default_factory=list)
    start_date: str | None = None  # inclusive day, on record ``created``
    end_date: str | None = None  # inclusive day

    @property
    def key(self):
        """Bookmark key of this scope (``global`` when unrestricted)."""
        if not (self.record_ids or self.community_ids or self.start_date or self.end_date):
            return "global"
        raw = json.dumps([sorted(self.record_ids), sorted(self.community_ids),
                          self.start_date, self.end_date])
        return "scope-" + hashlib.sha1(raw.encode()).hexdigest()[:16]

    def query(self, after_created=None):
        """Records-index query for this scope."""
        filters = []
        if self.record_ids:
            filters.append({"terms": {"id": sorted(self.record_ids)}})
        if self.community_ids:
            filters.append({"terms": {"parent.communities.ids": sorted(self.community_ids)}})
        created = {}
        if self.start_date:
            created["gte"] = arrow.get(self.start_date).floor("day").isoformat()
        if self.end_date:
            created["lte"] = arrow.get(self.end_date).ceil("day").isoformat()
        if after_created:
            created["gte"] = max(created.get("gte", after_created), after_created)
        if created:
            filters.append({"range": {"created": created}})
        return {"bool": {"filter": filters}} if filters else {"match_all": {}}


@dataclass
class ScanReport:
    """What a scan found and (when writing) wrote."""

    total_records: int = 0
    records_processed: int = 0
    records_needing_events: int = 0
    events_needed: int = 0
    events_written: int = 0
    existing_events: int = 0
    community_breakdown: dict = field(default_factory=dict)  # id -> counts


def accept_times(record_ids):
    """``{(record_id, community_id): accepted instant}`` from inclusion requests."""
    from invenio_db import db
    from invenio_requests.records.models import RequestMetadata

    if not record_ids:
        return {}
    topic = RequestMetadata.json["topic"]["record"].as_string()
    rows = db.session.query(topic, RequestMetadata.json, RequestMetadata.updated).filter(
        topic.in_(list(record_ids)),
        RequestMetadata.json["status"].as_string() == "accepted",
        RequestMetadata.json["type"].as_string().in_(ACCEPTING_REQUESTS),
    )
    times = {}
    for record_id, data, updated in rows:
        community = (data.get("receiver") or {}).get("community")
        if community:
            times[(record_id, community)] = log.iso(updated)
    return times


def scan(scope, write=False, progress=None, page_size=None, client=None):
    """Walk the scope's records; count (and with ``write``, create) missing events.

    :param progress: callable ``(done, total)`` called after every page.
    """
    client = client or current_search_client
    page_size = page_size or current_app.config.get(
        "COMMUNITY_STATS_BACKFILL_PAGE_SIZE", 500)
    only = set(scope.community_ids) if scope.community_ids else None
    bookmarks = CommunityEventBookmarkAPI(client)
    index = records_index()
    report = ScanReport()
    resume_from = bookmarks.get_bookmark(scope.key) if write else None
    query = scope.query(resume_from.isoformat() if resume_from else None)
    report.total_records = client.count(index=index, body={"query": query})["count"]
    body = {"query": query, "size": page_size, "_source": SOURCE_FIELDS,
            "sort": [{"created": "asc"}, {"id": "asc"}]}
    while True:
        hits = client.search(index=index, body=body)["hits"]["hits"]
        if not hits:
            break
        versions = [from_search_hit(h["_source"]) for h in hits]
        starts = accept_times([v.record_id for v in versions])
        for v in versions:
            v.starts = {c: max(t, v.created) for (r, c), t in starts.items()
                        if r == v.record_id}
        states = log.latest_states([v.record_id for v in versions], client)
        actions, _summary = backfill_changes(versions, states, only)
        _account(report, versions, states, actions, only)
        if write and actions:
            report.events_written += log.write(actions, client, refresh=False)
        report.records_processed += len(hits)
        if write:
            bookmarks.set_bookmark(scope.key, versions[-1].created)
        if progress:
            progress(report.records_processed, report.total_records)
        if len(hits) < page_size:
            break
        body["search_after"] = hits[-1]["sort"]
    if write:
        bookmarks.clear_bookmark(scope.key)
        log.refresh(client)
    return report


def _account(report, versions, states, actions, only):
    needing = {a["_source"]["record_id"] for a in actions}
    report.records_needing_events += len(needing)
    report.events_needed += len(actions)
    page_ids = {v.record_id for v in versions}
    report.existing_events += sum(
        1 for (r, c) in states if (only is None or c in only) and r in page_ids
    )
    for v in versions:
        for community in {log.GLOBAL, *v.communities}:
            if only is not None and community not in only:
                continue
            row = report.community_breakdown.setdefault(
                community, {"records": 0, "records_missing_events": 0, "events_needed": 0})
            row["records"] += 1
            if (v.record_id, community) not in states:
                row["records_missing_events"] += 1
    for action in actions:
        src = action["_source"]
        report.community_breakdown[src["community_id"]]["events_needed"] += 1
