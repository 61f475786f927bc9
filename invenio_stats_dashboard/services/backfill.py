# Part of invenio-stats-dashboard (MIT License).
"""``community-events generate``: reconcile the whole log with the database.

Walks the published record versions in the database (deleted ones included)
in pages of ``COMMUNITY_STATS_BACKFILL_PAGE_SIZE`` ordered by (created, id).
Per page: the database's evidence (:mod:`.history`, a fixed number of SQL
queries), one read of the log for the page's records, and the documents
:mod:`.membership` finds missing. The first run writes the history from
before installation; later runs repair writes the live components lost; on a
complete log a run writes nothing. After each written page a bookmark records
the last ``created`` instant: an interrupted run resumes there, a completed
run clears it. Runs of the same scope are not mutually excluded (see the job
protocol); two at once write the same documents (deterministic ids).
"""

import hashlib
import json
from dataclasses import dataclass, field

import arrow
from flask import current_app
from invenio_search.proxies import current_search_client

from ..aggregations.bookmarks import CommunityEventBookmarkAPI
from . import events_log as log
from . import history
from .membership import reconcile


@dataclass
class Scope:
    """Which records and communities a run (or a count) covers."""

    record_ids: list = field(default_factory=list)
    community_ids: list = field(default_factory=list)  # may include ``global``
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

    @property
    def only(self):
        """Communities whose pairs are reconciled (``None``: all, with ``global``)."""
        return set(self.community_ids) if self.community_ids else None

    def query(self, resume_from=None):
        """SQL query of the scope's versions: ``(id, created)`` rows."""
        from invenio_db import db
        from invenio_rdm_records.records.models import RDMRecordMetadata as R

        query = db.session.query(R.id, R.created).filter(R.json.isnot(None))
        if self.record_ids:
            query = query.filter(R.json["id"].as_string().in_(sorted(self.record_ids)))
        real = [c for c in self.community_ids if c != log.GLOBAL]
        if real and log.GLOBAL not in self.community_ids:
            query = query.filter(R.parent_id.in_(_parents_with_history(real)))
        if self.start_date:
            query = query.filter(R.created >= _naive(arrow.get(self.start_date).floor("day")))
        if self.end_date:
            query = query.filter(R.created <= _naive(arrow.get(self.end_date).ceil("day")))
        if resume_from is not None:
            query = query.filter(R.created >= _naive(resume_from))
        return query


def _naive(when):
    return arrow.get(when).to("utc").naive


def _parents_with_history(community_ids):
    """Parents in ``community_ids`` now, or once (an accepted request for them)."""
    from invenio_rdm_records.records.models import (
        RDMParentCommunity as M2M,
        RDMRecordMetadata as R,
    )
    from invenio_requests.records.models import RequestMetadata as Q
    from sqlalchemy import select, union

    accepted = select(Q.json["topic"]["record"].as_string()).where(
        Q.json["status"].as_string() == "accepted",
        Q.json["type"].as_string().in_(history.INCLUSION_REQUEST_TYPES),
        Q.json["receiver"]["community"].as_string().in_(community_ids))
    return union(
        select(M2M.record_id).where(M2M.community_id.in_(community_ids)),
        select(R.parent_id).where(R.json["id"].as_string().in_(accepted)),
    )


@dataclass
class ScanReport:
    """What a scan found and (when writing) wrote."""

    total_records: int = 0
    records_processed: int = 0
    records_needing_events: int = 0
    events_needed: int = 0
    events_written: int = 0
    existing_events: int = 0
    approximated_pairs: int = 0
    #: community -> {records (in it now), pairs, records_missing_events (pairs to
    #: write), events_needed, approximated}
    community_breakdown: dict = field(default_factory=dict)


def scan(scope, write=False, progress=None, page_size=None, client=None):
    """Walk the scope's versions; count (and with ``write``, write) what the log misses.

    :param progress: callable ``(done, total)`` called after every page.
    """
    from invenio_rdm_records.records.models import RDMRecordMetadata as R
    from sqlalchemy import and_, or_

    client = client or current_search_client
    page_size = page_size or current_app.config.get("COMMUNITY_STATS_BACKFILL_PAGE_SIZE", 500)
    log.refresh(client)  # the reader must see every document written so far
    bookmarks = CommunityEventBookmarkAPI(client)
    report = ScanReport()
    base = scope.query(bookmarks.get_bookmark(scope.key) if write else None)
    report.total_records = base.count()
    after = None
    while True:
        query = base
        if after is not None:
            query = query.filter(or_(R.created > after[0],
                                     and_(R.created == after[0], R.id > after[1])))
        rows = query.order_by(R.created, R.id).limit(page_size).all()
        if not rows:
            break
        versions = history.load([row.id for row in rows])
        plans, _written = reconcile(versions, client, only=scope.only, write=write)
        _account(report, plans)
        if write:
            report.events_written += sum(len(p.actions) for p in plans)
            bookmarks.set_bookmark(scope.key, arrow.get(rows[-1].created, tzinfo="UTC"))
        report.records_processed += len(rows)
        if progress:
            progress(report.records_processed, report.total_records)
        if len(rows) < page_size:
            break
        after = (rows[-1].created, rows[-1].id)
    if write:
        bookmarks.clear_bookmark(scope.key)
        log.refresh(client)
    return report


def _account(report, plans):
    report.records_needing_events += len({p.record_id for p in plans if p.actions})
    for p in plans:
        report.events_needed += len(p.actions)
        report.existing_events += p.documents
        report.approximated_pairs += p.approximated
        row = report.community_breakdown.setdefault(p.community_id, {
            "records": 0, "pairs": 0, "records_missing_events": 0, "events_needed": 0,
            "approximated": 0})
        row["records"] += p.in_db
        row["pairs"] += 1
        row["records_missing_events"] += bool(p.actions)
        row["events_needed"] += len(p.actions)
        row["approximated"] += p.approximated
