# Part of invenio-stats-dashboard (MIT License).
"""Family ``records`` (added basis): one sweep over the membership transitions.

For community ``c`` (``global`` is a community like any other in the log)
and day ``D``, each record version touched on ``D`` is compared at the day's
start and end through its *transitions* (``events_log``: duplicates and
no-op documents change nothing, M4): out → in is **added**, in → out
**removed**, same at both ends but changed within → one of each (R1).
Deletion and restoration are transitions of the log like any other (M3),
so a record removed and later deleted is removed once.

Parents follow R1 at parent level (R4a): a parent is added when it goes from
no version in ``c`` to one (or has a stay within the day), its files classes
are those of its versions in the day's added set (removed: removed set).
Uploaders are the distinct owners of the added records (R4). A subcount item
is the same computation over the versions carrying the value (S2–S5).

``_snapshot`` (stored, not indexed) says how the day changes what a snapshot
counts and a delta cannot: distinct parents per files class (and per item)
and distinct uploaders of the members, at the day's end minus at its start.
It is computed from the touched entities only: every version of a touched
parent and, for a touched owner, a witness among their other records
(``owners.py``).

Work goes by batches of days (never splitting a day) of at most ``BATCH``
touched records, so memory is bounded by one batch and the number of
queries by the number of batches, not days.
"""

from collections import defaultdict
from datetime import datetime, timezone

from ..services import events_log as log
from . import documents as docs
from .record_metrics import (
    CLASSES,
    DeltaTally,
    by_item,
    classes_of,
    fetch,
    fetch_versions,
    key_readers,
    zero_delta,
)
from .owners import Witnesses
from .subcounts import blocks

BATCH = 2000  # touched records per batch of days (a day is never split)
COMPOSITE_PAGE = 1000  # (day, record) buckets per page of the touched-records walk
IN = log.ADDED


def readers_of(ctx):
    """Readers of the configured records subcounts."""
    return key_readers(blocks(ctx.subcount_configs, "records"))


def _ms(day):
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp() * 1000)


def first_day(ctx, series, community_id):
    """The day of the community's first membership change, or None."""
    if not ctx.alias_exists(log.alias_name()):
        return None
    res = log.search_log({"size": 0, "query": {"bool": {"filter": [
        {"term": {"community_id": community_id}}, {"term": {"event_type": IN}}]}},
        "aggs": {"first": {"min": {"field": "event_date"}}}}, ctx.client)
    value = res["aggregations"]["first"]["value"]
    if value is None:
        return None
    return datetime.fromtimestamp(value / 1000, timezone.utc).date()


def compute(ctx, series, community_id, days):
    """Yield ``(day, body)`` for every day of ``days``, in order."""
    readers = readers_of(ctx)
    computed = _computed(ctx, community_id, readers, days[0], days[-1])
    upcoming = next(computed, None)
    for day in days:
        if upcoming is not None and upcoming[0] == day:
            yield upcoming
            upcoming = next(computed, None)
        else:
            yield day, _with_snapshot(zero_delta(readers), [0, 0], 0, {})


def _computed(ctx, community_id, readers, first, last):
    witnesses = Witnesses(ctx, community_id, lambda ids: _history(ctx, ids, community_id))
    for batch in _batches(_touched(ctx, community_id, first, last)):
        sweep = Sweep(ctx, community_id, readers, batch, witnesses)
        for day, record_ids in batch:
            yield day, sweep.body(day, record_ids)
        sweep.carry()


def _touched(ctx, community_id, first, last):
    """``(day, {record ids with a log document that day})`` in day order (composite, exact)."""
    if not ctx.alias_exists(log.alias_name()):
        return
    query = {"bool": {"filter": [
        {"term": {"community_id": community_id}},
        {"range": {"event_date": {"gte": _ms(first), "lt": _ms(last + docs.DAY),
                                  "format": "epoch_millis"}}}]}}
    sources = [{"day": {"date_histogram": {"field": "event_date", "calendar_interval": "1d"}}},
               {"record": {"terms": {"field": "record_id"}}}]
    after, day, ids = None, None, set()
    while True:
        agg = {"composite": {"size": COMPOSITE_PAGE, "sources": sources}}
        if after:
            agg["composite"]["after"] = after
        res = log.search_log({"size": 0, "query": query, "aggs": {"t": agg}},
                             ctx.client)["aggregations"]["t"]
        for bucket in res["buckets"]:
            bucket_day = datetime.fromtimestamp(bucket["key"]["day"] / 1000, timezone.utc).date()
            if bucket_day != day and ids:
                yield day, ids
                ids = set()
            day = bucket_day
            ids.add(bucket["key"]["record"])
        after = res.get("after_key")
        if not res["buckets"] or not after:
            break
    if ids:
        yield day, ids


def _batches(touched):
    batch, size = [], 0
    for day, ids in touched:
        if batch and size + len(ids) > BATCH:
            yield batch
            batch, size = [], 0
        batch.append((day, ids))
        size += len(ids)
    if batch:
        yield batch


def _history(ctx, record_ids, community_id):
    """``{record_id: [(epoch ms, type), ...]}``: real transitions in ``community_id``."""
    pairs = log.documents_by_pair(record_ids, ctx.client, [community_id])
    return {record_id: [(log.epoch_ms(t.event_date), t.event_type) for t in log.transitions(hits)]
            for (record_id, _c), hits in pairs.items()}


def _state(history, instant):
    """In (True) or out at ``instant``: the last transition strictly before it."""
    state = False
    for when, kind in history:
        if when >= instant:
            break
        state = kind == IN
    return state


class Sweep:
    """Everything one batch of days needs, read once."""

    def __init__(self, ctx, community_id, readers, batch, witnesses):
        """Read metadata, versions of the touched parents and their transitions."""
        self.ctx, self.community_id, self.readers = ctx, community_id, readers
        self.witnesses = witnesses
        touched = set().union(*(ids for _day, ids in batch))
        infos = fetch(ctx, touched, readers)
        infos.update(fetch_versions(ctx, {i.parent for i in infos.values()}, readers))
        self.infos = infos
        self.known = set(infos) | touched
        self.history = _history(ctx, self.known, community_id)
        self.versions = defaultdict(list)
        self.owned = defaultdict(list)
        for info in infos.values():
            self.versions[info.parent].append(info)
            if info.owner is not None:
                self.owned[info.owner].append(info.id)
        self.start, self.end = _ms(batch[0][0]), _ms(batch[-1][0] + docs.DAY)
        self._outside = None

    def _flags(self, record_id, d0, d1):
        """``(in at start, in at end, changed within)`` of one version on the day."""
        history = self.history.get(record_id, [])
        return (_state(history, d0), _state(history, d1),
                any(d0 <= when < d1 for when, _k in history))

    def body(self, day, record_ids):
        """The delta body of ``day`` (``record_ids``: touched that day)."""
        d0, d1 = _ms(day), _ms(day + docs.DAY)
        tally = DeltaTally(self.readers)
        flags = {}

        def flag(record_id):
            if record_id not in flags:
                flags[record_id] = self._flags(record_id, d0, d1)
            return flags[record_id]

        changed, parents, owners = [], set(), set()
        for record_id in sorted(record_ids):
            info = self.infos.get(record_id)
            start, end, within = flag(record_id)
            if info is None or not within:
                continue  # no metadata (purged), or only no-op documents
            changed.append(info)
            parents.add(info.parent)
            if start != end and info.owner is not None:
                owners.add(info.owner)
            if not start and end or start == end:
                tally.record("added", info)
            if start and not end or start == end:
                tally.record("removed", info)

        hidden_parents, hidden_items = [0, 0], defaultdict(lambda: [0, 0])
        for parent in sorted(parents):
            versions = self.versions[parent]
            self._parent(tally, versions, flag, d0, d1, None, hidden_parents)
            for item, carrying in sorted(by_item(versions).items()):
                self._parent(tally, carrying, flag, d0, d1, item, hidden_items[item])
        uploaders = sum(self._owner_change(owner, flag) for owner in sorted(owners))
        return _with_snapshot(tally.body(), hidden_parents, uploaders, hidden_items)

    def _parent(self, tally, versions, flag, d0, d1, item, hidden):
        """R1 at parent level over ``versions`` (all, or those carrying ``item``)."""
        marks = [(v, *flag(v.id)) for v in versions]
        has_start = any(start for _v, start, _e, _w in marks)
        has_end = any(end for _v, _s, end, _w in marks)
        flipped = has_start == has_end and self._flips(versions, d0, d1, has_start)
        if not has_start and has_end or flipped:
            tally.parent("added", classes_of(
                v for v, start, end, within in marks if (not start and end) or (
                    start == end and within)), item)
        if has_start and not has_end or flipped:
            tally.parent("removed", classes_of(
                v for v, start, end, within in marks if (start and not end) or (
                    start == end and within)), item)
        at_start = classes_of(v for v, start, _e, _w in marks if start)
        at_end = classes_of(v for v, _s, end, _w in marks if end)
        for n, cls in enumerate(CLASSES):
            hidden[n] += (cls in at_end) - (cls in at_start)

    def _flips(self, versions, d0, d1, has_start):
        """Whether the parent left (or entered) and came back (or left) within the day."""
        moments = sorted({when for v in versions for when, _k in self.history.get(v.id, [])
                          if d0 <= when < d1})
        for moment in moments:
            has = any(_state(self.history.get(v.id, []), moment + 1) for v in versions)
            if has != has_start:
                return True
        return False

    def _owner_change(self, owner, flag):
        """+1/−1/0: the owner has a member at the day's end and not at its start, or the reverse."""
        starts = any(flag(r)[0] for r in self.owned[owner])
        ends = any(flag(r)[1] for r in self.owned[owner])
        if starts == ends or self._outside_member(owner):
            return 0  # unchanged, or another record of theirs is in all day long
        return int(ends) - int(starts)

    def _outside_member(self, owner):
        """Whether a record of ``owner`` untouched in this batch is in the community."""
        if self._outside is None:  # settled in bulk for every owner the batch knows
            self._outside = self.witnesses.outside(set(self.owned), self.known, self.start,
                                                   _state)
        return self._outside.get(owner, False)

    def carry(self):
        """Hand this batch's members over as witnesses for the next batches."""
        self.witnesses.carry(self.owned, self.known, self.end, _state, self.history)


def _with_snapshot(body, parents, uploaders, items):
    """Add the hidden ``_snapshot`` (zeros left out of the item list)."""
    body["_snapshot"] = {
        "parents": {"metadata_only": parents[0], "with_files": parents[1]},
        "uploaders": uploaders,
        "subcounts": [{"key": key, "id": value, "metadata_only": change[0],
                       "with_files": change[1]}
                      for (key, value), change in sorted(items.items()) if any(change)],
    }
    return body
