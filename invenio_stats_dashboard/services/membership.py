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


def reconcile(versions, client=None, only=None, write=True):
    """Plan (and with ``write``, apply) the log's repair for ``versions``.

    Returns ``(pair plans, number of documents written)``.
    """
    docs = log.documents_by_pair([v.record_id for v in versions], client)
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
