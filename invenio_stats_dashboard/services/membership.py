# Part of invenio-stats-dashboard (MIT License).
"""Reconciling the membership log with the database (counting rules M1–M5).

One procedure serves the live components (after every commit, for the
parents that changed) and ``community-events generate`` (for every record):
for each (version, community) pair it compares the log's state — through the
transitions reader, so no-op documents count for nothing — with the state the
database has now (:mod:`.history`), and writes

* for a pair the log has never seen: its whole history, dated from the
  database's evidence (history before installation, or a write that was lost);
* for a pair whose state differs: the one missing transition, dated at the
  database's instant for the pair's latest change — or 1 ms after the log's
  latest document for the pair when that instant is not later (the log
  cannot express a change before its own latest state), an estimate;
* nothing otherwise (M4). Deletion flags on documents are brought in line too.

Before that, an unseen pair's estimated stay ends are dated by the log's
documents of the parent's other versions (:func:`refine_with_siblings`).

A pair's **approximated** flag: its history in the log rests on an estimate —
a document to be written at an estimated instant, or one written after the
fact (``timestamp`` more than :data:`LIVE_WINDOW` after ``event_date``) at an
instant the database does not date exactly.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import arrow

from . import events_log as log
from . import history as hist
from .events_log import ADDED, REMOVED

#: A document written later than this after its ``event_date`` is a reconstruction.
LIVE_WINDOW = timedelta(hours=1)


@dataclass
class PairPlan:
    """What reconciling one (version, community) pair needs."""

    record_id: str
    community_id: str
    in_db: bool
    documents: int  # log documents of the pair now
    actions: list = field(default_factory=list)
    approximated: bool = False


def plan_version(version, hits_by_community, only=None):
    """``(pair plans, flag updates)`` for one :class:`~.history.VersionHistory`.

    :param hits_by_community: the version's log documents per community, oldest first.
    :param only: communities to consider (``None``: all).
    """
    plans, touched = [], []
    for community in sorted(set(version.changes) | set(hits_by_community)):
        if only is not None and community not in only:
            continue
        hits = hits_by_community.get(community, [])
        touched.extend(hits)
        changes = version.changes.get(community, [])
        pair = PairPlan(version.record_id, community, version.is_in(community), len(hits))
        missing = changes if not hits else _missing(version, community, hits, changes)
        pair.actions = [_event(version, change) for change in missing]
        pair.approximated = (any(not c.exact for c in missing)
                             or _estimated(hits, changes))
        plans.append(pair)
    deleted = version.deleted.instant if version.deleted else None
    return plans, log.deletion_updates(touched, deleted)


def _missing(version, community, hits, changes):
    """The transition that brings a pair the log has seen to the database's state."""
    steps = log.transitions(hits)
    in_log = bool(steps) and steps[-1].event_type == ADDED
    in_db = bool(changes) and changes[-1].event_type == ADDED
    if in_log == in_db:
        return []
    latest = changes[-1] if changes else None
    when, exact = ((latest.instant, latest.exact) if latest
                   else (version.parent_updated.instant, False))
    last_ms = log.epoch_ms(hits[-1]["_source"]["event_date"])
    if log.epoch_ms(when) <= last_ms:
        when = datetime.fromtimestamp(last_ms // 1000, timezone.utc)
        when, exact = when + timedelta(milliseconds=last_ms % 1000) + hist.MS, False
    return [hist.Change(community, ADDED if in_db else REMOVED, when, exact)]


def _estimated(hits, changes):
    """Whether a reconstructed document of the pair is not dated by evidence."""
    exact = {(c.event_type, log.epoch_ms(c.instant)) for c in changes if c.exact}
    for hit in hits:
        src = hit["_source"]
        written, when = src.get("timestamp"), src["event_date"]
        if written is None or arrow.get(written) - arrow.get(when) <= LIVE_WINDOW:
            continue  # written live
        if (src["event_type"], log.epoch_ms(when)) not in exact:
            return True
    return False


def _event(version, change):
    return log.make_event(
        version.record_id, change.community_id, change.event_type, change.instant,
        created=version.created, published=version.published,
        deleted_date=version.deleted.instant if version.deleted else None,
    )


def refine_with_siblings(versions, docs, client=None):
    """Date the estimated stay ends of unseen pairs by what the log says of the siblings.

    A parent's stays are shared by its versions. The database dates the end of
    a stay only by an estimate (the next acceptance - 1 ms, or the parent's last
    update); a sibling the log saw leave the community while it stayed alive
    (not a deletion) dates it. Without this, a version published while its
    parent was out of a community got a stay there once the parent came back
    (M5). ``versions`` are updated in place; ``docs`` gains the siblings' documents.
    """
    needy = [v for v in versions
             if any((v.record_id, c) not in docs and _estimated_end(changes)
                    for c, changes in v.changes.items())]
    if not needy:
        return
    by_uuid = {v.uuid: v for v in versions}
    missing = sorted({u for v in needy for u in v.siblings if u not in by_uuid})
    for extra in hist.load(missing) if missing else []:
        by_uuid[extra.uuid] = extra
    unread = [by_uuid[u].record_id for u in missing if u in by_uuid]
    if unread:
        docs.update(log.documents_by_pair(unread, client))
    for version in needy:
        changes = dict(version.changes)
        for community, items in version.changes.items():
            if (version.record_id, community) in docs or not _estimated_end(items):
                continue
            timeline = _parent_timeline(version, community, by_uuid, docs)
            intervals = []
            for start, end in _intervals(items):
                intervals.extend(_clip(start, end, timeline)
                                 if end is not None and not end.exact else [(start, end)])
            changes[community] = hist._changes(community, intervals)
        version.changes = {c: items for c, items in changes.items() if items}


def _estimated_end(changes):
    return any(c.event_type == REMOVED and not c.exact for c in changes)


def _intervals(changes):
    """``[(start Bound, end Bound or None)]`` of a pair's alternating changes."""
    out = []
    for change in changes:
        point = hist.Bound(change.instant, change.exact)
        if change.event_type == ADDED:
            out.append([point, None])
        elif out:
            out[-1][1] = point
    return [tuple(i) for i in out]


def _parent_timeline(version, community, by_uuid, docs):
    """``[(instant, in?, exact)]``: the parent's entries and exits in ``community``
    as the log saw them on the other versions (removals by deletion left out)."""
    points = []
    for uuid in version.siblings:
        sibling = by_uuid.get(uuid)
        if sibling is None or uuid == version.uuid:
            continue
        for step in log.transitions(docs.get((sibling.record_id, community), [])):
            when = hist.bound(step.event_date).instant
            if step.event_type == REMOVED and not _alive_at(sibling.alive, when):
                continue  # the sibling was deleted, not the parent removed
            points.append((when, step.event_type == ADDED, _written_live(step.hit)))
    return sorted(points, key=lambda p: (p[0], p[1]))


def _alive_at(alive, when):
    return any(s.instant <= when and (e is None or when < e.instant) for s, e in alive)


def _written_live(hit):
    src = hit["_source"]
    written = src.get("timestamp")
    return written is not None and arrow.get(written) - arrow.get(src["event_date"]) <= LIVE_WINDOW


def _clip(start, end, timeline):
    """``[start, end)`` within the parent's logged presence (unknown counts as in)."""
    inside = True
    for when, entered, _exact in timeline:
        if when > start.instant:
            break
        inside = entered
    pieces, open_ = [], start if inside else None
    for when, entered, exact in timeline:
        if when <= start.instant or when >= end.instant:
            continue
        if entered and open_ is None:
            open_ = hist.Bound(when, exact)
        elif not entered and open_ is not None:
            if when > open_.instant:
                pieces.append((open_, hist.Bound(when, exact)))
            open_ = None
    if open_ is not None:
        pieces.append((open_, end))
    return pieces


def reconcile(versions, client=None, only=None, write=True):
    """Plan (and with ``write``, apply) the log's repair for ``versions``.

    Returns ``(pair plans, number of documents written)``.
    """
    docs = log.documents_by_pair([v.record_id for v in versions], client)
    refine_with_siblings(versions, docs, client)
    by_record = {}
    for (record_id, community), hits in docs.items():
        by_record.setdefault(record_id, {})[community] = hits
    plans, actions = [], []
    for version in versions:
        pairs, flags = plan_version(version, by_record.get(version.record_id, {}), only)
        plans.extend(pairs)
        actions.extend(a for p in pairs for a in p.actions)
        actions.extend(flags)
    written = log.write(actions, client) if write and actions else 0
    return plans, written


def reconcile_parents(parent_uuids, client=None):
    """Live path: bring the log in line for every version of these parents.

    Returns ``{"added": n, "removed": m}`` documents written.
    """
    versions = hist.load(hist.parent_versions(parent_uuids))
    # Another process (web worker, Celery) may have written this parent's last
    # change a moment ago: reading a stale log would miss it and write nothing.
    # One refresh per reconcile; writes themselves never refresh.
    log.refresh(client)
    plans, _written = reconcile(versions, client)
    summary = {ADDED: 0, REMOVED: 0}
    for plan in plans:
        for action in plan.actions:
            summary[action["_source"]["event_type"]] += 1
    return summary
