# Part of invenio-stats-dashboard (MIT License).
"""Membership history as the database tells it (counting rules M1–M5).

Both writers of the log — the live components after a commit and
``community-events generate`` — date every change with this module, so a
history gets the same documents (same instants, same ids) whichever path
writes it, whether it happened before the package was installed or after.

Evidence (InvenioRDM 13), per published record version and its parent:

* **publication**: the record row's ``created`` — exact;
* **deletion / restoration**: every change of ``deletion_status`` among the
  record's versioned rows (SQLAlchemy-Continuum, ``rdm_records_metadata_version``),
  at that row's ``updated`` — exact; without such rows, the tombstone's
  removal date;
* **a parent's stay in a community** begins at the ``accepted`` event of an
  inclusion or submission request (``request_events``) — exact. The request
  row's ``updated`` moves whenever the request is edited later, so it is used
  only when the event is missing, as an estimate. The current stay is the
  parent–community row (``rdm_parents_community``) and the request it names;
* **nothing dates a removal, or an addition made without a request** (bulk
  add, import): such a change is dated at the **parent's last update**, the
  latest instant the database allows — exact when that change was the
  parent's last modification, later than the truth otherwise. A stay that a
  later accepted request follows ends 1 ms before that request's acceptance.
  When the log saw another version of the parent leave, ``membership``
  dates the end by that document instead (``alive``/``siblings`` below).

Estimated instants are flagged (``exact=False``). Parents are not versioned
in InvenioRDM 13: a stay that began without a request and ended before the
log existed leaves no trace and cannot be reconstructed.
"""

from dataclasses import dataclass, field
from datetime import timedelta

import arrow

from .events_log import ADDED, GLOBAL, REMOVED

#: Request types whose acceptance adds the topic record's parent to the receiver.
INCLUSION_REQUEST_TYPES = ("community-inclusion", "community-submission",
                           "community-transfer")
MS = timedelta(milliseconds=1)


@dataclass(frozen=True)
class Bound:
    """An interval end: an instant (UTC, milliseconds) and whether evidence dates it."""

    instant: object  # aware datetime
    exact: bool = True


def bound(value, exact=True):
    """:class:`Bound` of a datetime or ISO string, truncated to milliseconds."""
    when = arrow.get(value).to("utc").datetime
    return Bound(when.replace(microsecond=when.microsecond // 1000 * 1000), exact)


@dataclass(frozen=True)
class Change:
    """One transition of a (version, community) pair."""

    community_id: str
    event_type: str
    instant: object
    exact: bool


@dataclass
class VersionHistory:
    """What the database says about one record version's memberships."""

    record_id: str
    uuid: str
    parent_uuid: str
    created: object  # publication of the version
    published: str | None  # metadata publication date
    deleted: Bound | None  # start of the current deletion; None while live
    parent_updated: Bound  # the estimate for undated changes
    communities: set = field(default_factory=set)  # the parent's communities now
    changes: dict = field(default_factory=dict)  # community -> [Change], oldest first
    alive: list = field(default_factory=list)  # [(Bound, Bound or None)]: published, not deleted
    siblings: tuple = ()  # row ids of every published version of the parent (this one too)

    def is_in(self, community_id):
        """Whether the version is in ``community_id`` now (M1)."""
        items = self.changes.get(community_id)
        return bool(items) and items[-1].event_type == ADDED


def _status(value):
    return str(getattr(value, "value", value))


def load(record_uuids):
    """:class:`VersionHistory` of each published version (record row ids), in order."""
    evidence = _Evidence(record_uuids)
    return [evidence.history(uuid) for uuid in evidence.order]


def parent_versions(parent_uuids):
    """Row ids of the published versions of ``parent_uuids`` (by creation)."""
    from invenio_db import db
    from invenio_rdm_records.records.models import RDMRecordMetadata as R

    if not parent_uuids:
        return []
    rows = db.session.query(R.id).filter(R.parent_id.in_(list(parent_uuids)),
                                         R.json.isnot(None)).order_by(R.created, R.id)
    return [row.id for row in rows]


class _Evidence:
    """Every row the histories of a batch of versions need: one query per kind."""

    def __init__(self, record_uuids):
        from invenio_db import db
        from invenio_rdm_records.records.models import RDMRecordMetadata as R

        uuids = list(dict.fromkeys(record_uuids))
        self.versions = {row.id: row for row in db.session.query(
            R.id, R.json["id"].as_string().label("recid"), R.parent_id, R.created,
            R.updated, R.deletion_status,
            R.json["tombstone"]["removal_date"].as_string().label("removal_date"),
            R.json["metadata"]["publication_date"].as_string().label("publication_date"),
        ).filter(R.id.in_(uuids), R.json.isnot(None))} if uuids else {}
        self.order = [u for u in uuids if u in self.versions]
        parents = {row.parent_id for row in self.versions.values()}
        self._load_parents(db, parents)
        self._load_rows(db)

    def _load_parents(self, db, parents):
        from invenio_rdm_records.records.models import (
            RDMParentCommunity as M2M,
            RDMParentMetadata as P,
            RDMRecordMetadata as R,
        )

        self.parent_updated, self.current, self.stays, self.versions_of = {}, {}, {}, {}
        if not parents:
            return
        self.parent_updated = {row.id: bound(row.updated, exact=False) for row in
                               db.session.query(P.id, P.updated).filter(P.id.in_(parents))}
        rows = db.session.query(R.id, R.json["id"].as_string().label("recid"),
                                R.parent_id).filter(R.parent_id.in_(parents),
                                                    R.json.isnot(None)).all()
        siblings = {row.recid: row.parent_id for row in rows}
        self.versions_of = {}
        for row in rows:
            self.versions_of.setdefault(row.parent_id, []).append(str(row.id))
        for row in db.session.query(M2M.record_id, M2M.community_id, M2M.request_id).filter(
                M2M.record_id.in_(parents)):
            self.current.setdefault(row.record_id, {})[str(row.community_id)] = row.request_id
        requests = self._accepted_requests(db, siblings)
        accepts = {}  # parent -> community -> [Bound]
        for request_id, (recid, community, start) in requests.items():
            if recid in siblings and community:
                accepts.setdefault(siblings[recid], {}).setdefault(community, []).append(start)
        starts = {rid: start for rid, (_, _, start) in requests.items()}
        for parent in parents:
            self.stays[parent] = _stays(self.parent_updated[parent], self.current.get(parent, {}),
                                        accepts.get(parent, {}), starts)
        communities = {c for stays in self.stays.values() for c in stays}
        self.deleted_communities = _deleted_communities(db, communities)

    def _accepted_requests(self, db, siblings):
        """``{request id: (topic recid, receiver community, accepted Bound)}``."""
        from invenio_requests.records.models import RequestEventModel as E, RequestMetadata as Q
        from sqlalchemy import func, or_

        named = {rid for by in self.current.values() for rid in by.values() if rid}
        topic = Q.json["topic"]["record"].as_string()
        rows = db.session.query(
            Q.id, topic.label("recid"), Q.json["receiver"]["community"].as_string().label("c"),
            Q.updated,
        ).filter(
            Q.json["status"].as_string() == "accepted",
            Q.json["type"].as_string().in_(INCLUSION_REQUEST_TYPES),
            or_(topic.in_(list(siblings)), Q.id.in_(list(named))),
        ).all()
        if not rows:
            return {}
        events = dict(db.session.query(E.request_id, func.min(E.created)).filter(
            E.request_id.in_([row.id for row in rows]), E.type == "L",
            E.json["payload"]["event"].as_string() == "accepted",
        ).group_by(E.request_id).all())
        return {row.id: (row.recid, row.c,
                         bound(events[row.id]) if row.id in events
                         else bound(row.updated, exact=False))
                for row in rows}

    def _load_rows(self, db):
        from invenio_rdm_records.records.models import RDMRecordMetadata
        from sqlalchemy_continuum import version_class

        V = version_class(RDMRecordMetadata)
        self.rows = {}
        if not self.versions:
            return
        for row in db.session.query(V.id, V.deletion_status, V.updated).filter(
                V.id.in_(list(self.versions))).order_by(V.id, V.transaction_id):
            self.rows.setdefault(row.id, []).append((_status(row.deletion_status), row.updated))

    def history(self, uuid):
        """The :class:`VersionHistory` of one loaded version."""
        v = self.versions[uuid]
        alive, deleted = _alive(v, self.rows.get(uuid, []))
        changes = {GLOBAL: _changes(GLOBAL, alive)}
        for community, stays in self.stays.get(v.parent_id, {}).items():
            pieces = _intersect(alive, stays)
            gone = self.deleted_communities.get(community)
            if gone is not None:  # M3: a deleted community gains no member
                pieces = [p for p in pieces if p[0].instant < gone]
            if pieces:
                changes[community] = _changes(community, pieces)
        return VersionHistory(
            record_id=v.recid, uuid=str(uuid), parent_uuid=str(v.parent_id),
            created=bound(v.created).instant, published=v.publication_date, deleted=deleted,
            parent_updated=self.parent_updated[v.parent_id],
            communities=set(self.current.get(v.parent_id, {})), changes=changes,
            alive=alive, siblings=tuple(sorted(self.versions_of.get(v.parent_id, ()))),
        )


def _stays(parent_updated, current, accepts, starts):
    """``{community: [(start, end or None)]}``: the parent's stays (see module doc)."""
    stays = {}
    for community in set(accepts) | set(current):
        earlier = sorted(accepts.get(community, []), key=lambda b: b.instant)
        now = None
        if community in current:
            now = starts.get(current[community]) or parent_updated
            earlier = [b for b in earlier if b.instant < now.instant]
        intervals = []
        for i, start in enumerate(earlier):
            following = earlier[i + 1] if i + 1 < len(earlier) else now
            end = (following.instant - MS if following is not None
                   else max(parent_updated.instant, start.instant + MS))
            if end > start.instant:
                intervals.append((start, Bound(end, exact=False)))
        if now is not None:
            intervals.append((now, None))
        stays[community] = intervals
    return stays


def _deleted_communities(db, community_ids):
    """``{community id: deletion instant}`` of (soft-)deleted communities."""
    from invenio_communities.communities.records.models import CommunityMetadata as C
    from invenio_communities.communities.records.systemfields.deletion_status import (
        CommunityDeletionStatusEnum,
    )

    if not community_ids:
        return {}
    rows = db.session.query(
        C.id, C.json["tombstone"]["removal_date"].as_string().label("removal_date"), C.updated,
    ).filter(C.id.in_(list(community_ids)),
             C.deletion_status != CommunityDeletionStatusEnum.PUBLISHED)
    return {str(r.id): bound(r.removal_date or r.updated).instant for r in rows}


def _alive(version, rows):
    """Intervals during which the version is published and not deleted, and its deletion."""
    intervals, start = [], bound(version.created)
    for status, updated in rows:
        if status != "P" and start is not None:
            if bound(updated).instant > start.instant:
                intervals.append((start, bound(updated)))
            start = None
        elif status == "P" and start is None:
            start = bound(updated)
    deleted_now = _status(version.deletion_status) != "P"
    if deleted_now and start is not None:  # versioned rows do not show the deletion
        end = bound(version.removal_date) if version.removal_date else bound(version.updated, False)
        if end.instant > start.instant:
            intervals.append((start, end))
        start = None
    elif not deleted_now and start is None:  # nor the restoration
        start = bound(version.updated, exact=False)
    if start is not None:
        intervals.append((start, None))
        return intervals, None
    if intervals:
        return intervals, intervals[-1][1]
    return intervals, bound(version.removal_date or version.updated, bool(version.removal_date))


def _intersect(first, second):
    """Intersection of two interval lists (each sorted, disjoint)."""
    out = []
    for s1, e1 in first:
        for s2, e2 in second:
            start = s1 if (s1.instant, s1.exact) >= (s2.instant, s2.exact) else s2
            ends = [e for e in (e1, e2) if e is not None]
            end = min(ends, key=lambda e: (e.instant, not e.exact)) if ends else None
            if end is None or end.instant > start.instant:
                out.append((start, end))
    return sorted(out, key=lambda i: i[0].instant)


def _changes(community, intervals):
    out = []
    for start, end in intervals:
        out.append(Change(community, ADDED, start.instant, start.exact))
        if end is not None:
            out.append(Change(community, REMOVED, end.instant, end.exact))
    return out

