# Part of invenio-stats-dashboard (MIT License).
"""Membership semantics (counting-rules M1–M5) and reconciling the log with RDM.

The truth about membership lives in InvenioRDM: a published, non-deleted
record version belongs to ``global`` and to every community of its *parent*
(M2, M5). Every writer — service components after a commit, and the backfill —
computes that desired state and writes only the differences against the
log's current state (M4: no-ops write nothing).

A pair the log has never seen belongs to history before the log existed (the
package was installed later, or the backfill has not reached it). If the
caller knows the pair was *in* just before the change (``before``), the log is
first given the ``added`` event the backfill would have written, dated at the
version's membership start; only then is the change itself recorded.
"""

from dataclasses import dataclass, field

import arrow

from . import events_log as log
from .events_log import ADDED, GLOBAL, REMOVED


@dataclass
class VersionState:
    """What the log needs to know about one record version."""

    record_id: str
    parent_id: str
    created: str
    published: str | None = None
    deleted_date: str | None = None  # set when the version is deleted (tombstoned)
    communities: set = field(default_factory=set)  # the parent's communities
    starts: dict = field(default_factory=dict)  # community -> membership start

    @property
    def members_of(self):
        """Communities (with ``global``) the version is in now (M1–M3, M5)."""
        if self.deleted_date:
            return set()
        return {GLOBAL, *self.communities}

    def start(self, community_id):
        """When the version entered ``community_id`` (backfill dating)."""
        return self.starts.get(community_id) or self.created


def from_record(record):
    """:class:`VersionState` of an RDM record API object (database truth)."""
    deleted = None
    if record.deletion_status.is_deleted:
        tombstone = record.tombstone
        deleted = log.iso((tombstone and tombstone.removal_date) or log.utcnow())
    return VersionState(
        record_id=record["id"],
        parent_id=record.parent["id"],
        created=log.iso(record.created),
        published=record.metadata.get("publication_date"),
        deleted_date=deleted,
        communities=set(record.parent.communities.ids),
    )


def from_search_hit(source):
    """:class:`VersionState` of a record document of the records index."""
    deleted = None
    if source.get("deletion_status", "P") != "P":
        deleted = log.iso((source.get("tombstone") or {}).get("removal_date")
                          or source.get("updated"))
    return VersionState(
        record_id=source["id"],
        parent_id=source["parent"]["id"],
        created=log.iso(source["created"]),
        published=(source.get("metadata") or {}).get("publication_date"),
        deleted_date=deleted,
        communities=set(((source.get("parent") or {}).get("communities") or {}).get("ids") or []),
    )


def plan_changes(versions, states, before=None, now=None, no_additions=frozenset()):
    """Log documents that bring the log in line with ``versions``.

    :param states: ``{(record_id, community_id): PairState}`` (the log now).
    :param before: ``{record_id: set(community ids)}`` membership just before
        the change being recorded, when known (see module docstring).
    :param now: instant of the change (default: now).
    :param no_additions: communities that cannot gain members (deleted ones, M3).
    :returns: ``(actions, summary)`` where summary counts added/removed/backfilled.
    """
    now = log.iso(now or log.utcnow())
    before = before or {}
    actions, summary = [], {"added": 0, "removed": 0, "backfilled": 0}
    by_record = {}
    for (record_id, community), state in states.items():
        by_record.setdefault(record_id, {})[community] = state
    for v in versions:
        current = by_record.get(v.record_id, {})
        desired = v.members_of
        known_before = before.get(v.record_id, set())
        for community in sorted(set(current) | desired | known_before):
            state = current.get(community)
            is_in = state.event_type == ADDED if state else False
            if state is None and community in known_before:
                start = v.start(community)
                if arrow.get(start) < arrow.get(now):
                    actions.append(_event(v, community, ADDED, start))
                    summary["backfilled"] += 1
                    is_in = True
            wanted = community in desired
            if wanted and not is_in and community not in no_additions:
                actions.append(_event(v, community, ADDED, now))
                summary["added"] += 1
            elif is_in and not wanted:
                actions.append(_event(v, community, REMOVED, now))
                summary["removed"] += 1
    return actions, summary


def _event(v, community, event_type, when):
    return log.make_event(v.record_id, community, event_type, when, created=v.created,
                          published=v.published, deleted_date=v.deleted_date)


def backfill_changes(versions, states, only=None):
    """Historical documents for versions whose pairs the log has never seen.

    Used by the backfill: a pair with any log document is left alone (re-runs
    add nothing); a new pair gets ``added`` at its membership start and, for a
    deleted version, ``removed`` at the deletion instant.
    """
    actions, summary = [], {"added": 0, "removed": 0, "backfilled": 0}
    for v in versions:
        communities = {GLOBAL, *v.communities}
        for community in sorted(communities):
            if only is not None and community not in only:
                continue
            if (v.record_id, community) in states:
                continue
            start = v.start(community)
            if v.deleted_date and arrow.get(v.deleted_date) <= arrow.get(start):
                continue  # deleted before it could join: never a member
            actions.append(_event(v, community, ADDED, start))
            summary["added"] += 1
            if v.deleted_date:
                actions.append(_event(v, community, REMOVED, v.deleted_date))
                summary["removed"] += 1
    return actions, summary
